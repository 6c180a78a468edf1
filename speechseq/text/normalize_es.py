"""Spanish text expansion: abbreviations, ordinals, currency, percentages and numbers with gender agreement.

``expand`` rewrites symbols and digits as words and leaves case and punctuation to
``speechseq.text.normalize``. Accents are kept.

Number format: "." followed by exactly three digits groups thousands ("1.500" = 1500); "," is the decimal
mark ("3,5" = tres coma cinco); a "." followed by one or two digits is also read as a decimal mark
("$1.50", the Latin American convention).

Gender and the short form of "uno" depend on the word after the number (``noun_gender``): a feminine noun
gives una/veintiuna/doscientas ("21 casas" → "veintiuna casas"); a masculine noun gives un/veintiún ("1
libro" → "un libro"); a function word or the end of the text gives the plain form ("capítulo 1" →
"capítulo uno", "1 de los libros" → "uno de los libros", "21 de las casas" → "veintiuna de las casas").
Round millions take "de" before a noun ("1.000.000 personas" → "un millón de personas"). A 4-digit number
after "en", "año", "de", "desde", "hasta" or "del" is a year and keeps the plain form ("en 2001" → "en dos
mil uno").

>>> expand("La Sra. López compró 21 casas por 200.000 € el 1.º de mayo.")
'La señora López compró veintiuna casas por doscientos mil euros el primero de mayo.'
"""

from __future__ import annotations

import re

from speechseq.text.number_words import ES_MAX, Gender, es_cardinal, es_fraction, es_ordinal

_ABBREVIATIONS = {  # expanded with their period (case-insensitive)
    "sr": "señor", "sra": "señora", "srta": "señorita", "sres": "señores", "sras": "señoras",
    "dr": "doctor", "dra": "doctora", "drs": "doctores", "dras": "doctoras", "ud": "usted", "uds": "ustedes",
    "vd": "usted", "vds": "ustedes", "dña": "doña", "lic": "licenciado", "lcda": "licenciada",
    "ing": "ingeniero", "prof": "profesor", "profa": "profesora", "etc": "etcétera",
    "aprox": "aproximadamente",
    "núm": "número", "tel": "teléfono", "pág": "página", "págs": "páginas", "avda": "avenida", "av": "avenida",
    "gral": "general", "admón": "administración", "depto": "departamento", "p. ej": "por ejemplo",
    "ee. uu": "estados unidos", "ee.uu": "estados unidos",
}
_CURRENCIES = {  # symbol: (singular, plural, gender, cent singular, cent plural)
    "€": ("euro", "euros", "m", "céntimo", "céntimos"),
    "$": ("dólar", "dólares", "m", "centavo", "centavos"),
    "£": ("libra", "libras", "f", "penique", "peniques"),
}
_FUNCTION_WORDS = set(
    "de del y e o u a al en con por para sin sobre entre hasta desde que como más menos es son era fue "
    "fueron ha han hay no ni se lo la las los el un una por ciento".split()
)
_SCALE_WORDS = {"mil", "millón", "millones", "billón", "billones"}
_MONTHS = set(
    "enero febrero marzo abril mayo junio julio agosto septiembre setiembre octubre noviembre diciembre".split()
)
_FEMININE_WORDS = set(
    "vez veces mujer mujeres noche noches clase clases calle calles flor flores llave llaves parte partes "
    "tarde tardes torre torres red redes fuente fuentes mano manos foto fotos moto motos radio leche gente "
    "muerte suerte imagen imágenes orden base bases frase frases nave naves nube nubes sal piel ley leyes "
    "voz voces luz luces cruz cruces paz nariz raíz raíces hora horas semana semanas".split()
)
_MASCULINE_IN_A = set(
    "día días mapa mapas problema problemas programa programas sistema sistemas tema temas idioma idiomas "
    "planeta planetas clima climas poema poemas dilema dilemas drama dramas esquema esquemas teorema "
    "teoremas diagrama diagramas telegrama telegramas síntoma síntomas sofá sofás papá papás tranvía "
    "tranvías mediodía mediodías cometa cometas pijama pijamas dálmata dálmatas".split()
)
_FEMININE_ENDINGS = (
    "a", "as", "ción", "ciones", "sión", "siones", "dad", "dades", "tad", "tades", "tud", "tudes",
    "umbre", "umbres", "ie", "ies", "triz", "trices",
)
_YEAR_CUES = {"en", "año", "desde", "hasta", "del"}  # and "de" after a month: "1 de mayo de 2001"
_NUMBER = r"\d{1,3}(?:\.\d{3})+(?!\d)|\d+"  # "1.000.000" or "1500": the integer part of an amount


def noun_gender(word: str) -> Gender | None:
    """Grammatical gender of the noun ``word`` (a heuristic), or None when it is not a noun a number can
    count (a function word or nothing). Feminine: a short list (vez, mano, noche, ...) and the endings -a,
    -ción, -dad, -tud, -umbre, ... except a list of masculines in -a (día, problema, mapa, ...)."""
    word = word.lower()
    if not word or not word.isalpha() or word in _FUNCTION_WORDS:
        return None
    if word in _FEMININE_WORDS:
        return "f"
    if word in _MASCULINE_IN_A:
        return "m"
    return "f" if word.endswith(_FEMININE_ENDINGS) else "m"


def _context_after(text: str, end: int) -> tuple[Gender, bool]:
    """Gender, and whether a noun follows, for a number ending at ``end``: "21 casas", "21 de las casas"."""
    words = re.findall(r"\w+", text[end: end + 60])
    if words and words[0].lower() in _SCALE_WORDS:
        if words[0].lower() != "mil":  # millón is masculine: "21 millones" → "veintiún millones"
            return "m", True
        gender, _ = _context_after(text, end + text[end:].lower().index("mil") + 3)
        return gender, True  # "21 mil casas" → "veintiuna mil", "21 mil libros" → "veintiún mil"
    if len(words) >= 2 and words[0].lower() == "de" and words[1].lower() in {"la", "las"}:
        return "f", False
    gender = noun_gender(words[0]) if words else None
    return (gender or "m"), gender is not None


def _integer(digits: str) -> int:
    return int(digits.replace(".", ""))


def _cardinal_text(digits: str, gender: Gender, before_noun: bool) -> str:
    """Integer digits (with "." groups) as words; round millions before a noun take "de"."""
    value = _integer(digits)
    if value > ES_MAX:
        return " ".join(es_cardinal(int(d)) for d in digits if d.isdigit())
    words = es_cardinal(value, gender, apocope=before_noun)
    if before_noun and value >= 10**6 and value % 10**6 == 0:
        words += " de"
    return words


def _expand_abbreviations(text: str) -> str:
    text = re.sub(r"(?i:\bn)\.?\s?[º°](?=\s*\d)", "número", text)  # "n.º 5", "nº 5"
    for short, long in sorted(_ABBREVIATIONS.items(), key=lambda item: -len(item[0])):
        text = re.sub(rf"(?i:\b{re.escape(short)})\.", long, text)
    return text.replace("&", " y ")


def _expand_ordinals(text: str) -> str:
    def read(match: re.Match[str]) -> str:
        suffix = match[2].lower().lstrip(".")
        gender: Gender = "f" if suffix in {"ª", "a", "ra", "da", "ta", "ma", "va", "na", "era"} else "m"
        # primero/tercero shorten before a masculine noun: "el 1.º piso" → "el primer piso".
        apocope = suffix == "er" or (gender == "m" and _context_after(text, match.end())[1])
        return es_ordinal(int(match[1]), gender, apocope=apocope)

    # 1.º 1º 1.ª 1ª 1.er 3er 2do 3ra 10mo; "°" (the degree sign, often typed for "º") only after a dot.
    suffixes = r"\.?[ºª]|\.°|\.?er|era|ero|ra|ro|do|da|to|ta|mo|ma|vo|va|no|na"
    return re.sub(rf"\b(\d+)({suffixes})(?!\w)", read, text)


def _money(symbol: str, whole: str, frac: str | None) -> str:
    unit, units, gender, cent, cents = _CURRENCIES[symbol]
    value = _integer(whole)
    cent_value = int(frac.ljust(2, "0")[:2]) if frac else 0
    parts = []
    if value or not cent_value:
        parts.append(f"{_cardinal_text(whole, gender, True)} {unit if value == 1 else units}")
    if cent_value:
        if parts:
            parts.append("con")
        parts.append(f"{es_cardinal(cent_value, 'm', apocope=True)} {cent if cent_value == 1 else cents}")
    return " ".join(parts)


def _expand_currency(text: str) -> str:
    amount = rf"({_NUMBER})(?:[,.](\d{{1,2}})(?!\d))?"
    text = re.sub(rf"(?:US)?([$€£])\s?{amount}", lambda m: _money(m[1], m[2], m[3]), text)
    return re.sub(rf"{amount}\s?([$€£])", lambda m: _money(m[3], m[1], m[2]), text)


def _decimal_text(whole: str, frac: str) -> str:
    return f"{_cardinal_text(whole, 'm', False)} coma {es_fraction(frac)}"


def _expand_units(text: str) -> str:
    """Percentages and degrees: "3,5 %" → "tres coma cinco por ciento", "20 °C" → "veinte grados celsius"."""

    def read(match: re.Match[str]) -> str:
        words = _decimal_text(match[1], match[2]) if match[2] else _cardinal_text(match[1], "m", False)
        return f"{words} por ciento"

    text = re.sub(rf"({_NUMBER})(?:,(\d+))?\s?%", read, text)
    text = re.sub(r"(\d)\s?°\s?C\b", r"\1 grados celsius", text)
    text = re.sub(r"(\d)\s?°\s?F\b", r"\1 grados fahrenheit", text)
    return re.sub(r"(\d)\s?°", r"\1 grados", text)


def _is_year(digits: str, previous_words: list[str]) -> bool:
    """A 4-digit number after a year cue: "en 2001", "del año 2001", "de mayo de 2001"."""
    previous = [w.lower() for w in previous_words[-2:]]
    if len(digits) != 4 or not previous:
        return False
    return previous[-1] in _YEAR_CUES or (previous[-1] == "de" and len(previous) == 2 and previous[0] in _MONTHS)


def _expand_numbers(text: str) -> str:
    """Negative signs, decimals, then integers in agreement with the noun after them."""
    text = re.sub(r"(?<![\w.,])-(?=\d)", "menos ", text)
    text = re.sub(rf"({_NUMBER}),(\d+)", lambda m: _decimal_text(m[1], m[2]), text)
    # A point before one or two digits is a decimal point as written in Latin America: "3.5" → "tres punto
    # cinco" (a point before three digits groups thousands).
    text = re.sub(
        r"(\d+)\.(\d{1,2})(?!\d)",
        lambda m: f"{es_cardinal(int(m[1]))} punto {es_fraction(m[2])}", text,
    )

    def read(match: re.Match[str]) -> str:
        digits = match[0]
        if _is_year(digits, re.findall(r"\w+", text[max(0, match.start() - 30): match.start()])):
            return es_cardinal(int(digits))  # a year keeps the plain form: "en 2001" → "dos mil uno"
        gender, before_noun = _context_after(text, match.end())
        return _cardinal_text(digits, gender, before_noun)

    return re.sub(_NUMBER, read, text)


def expand(text: str) -> str:
    """Spell out abbreviations, ordinals, money, percentages and numbers as Spanish words.

    Args:
        text: raw Spanish text.

    Returns:
        text without digits or currency symbols; case, accents and punctuation are kept for the caller.
    """
    for step in (_expand_abbreviations, _expand_ordinals, _expand_currency, _expand_units, _expand_numbers):
        text = step(text)
    return text
