"""Numbers spelled out as words, in English and Spanish (the vocabulary of the normalisers).

Pure functions from ``int`` to a lower-case string with words separated by single spaces (no hyphens, no
"and": "one hundred twenty three", as ASR transcripts such as LibriSpeech write them).

Spanish cardinals agree in gender where the grammar needs it and take the short form before a noun:
``es_cardinal(21)`` is "veintiuno", ``es_cardinal(21, apocope=True)`` "veintiún" (veintiún libros),
``es_cardinal(21, "f")`` "veintiuna" (veintiuna casas), ``es_cardinal(200, "f")`` "doscientas". The scale
word "millón" is masculine, so what multiplies it is always masculine and apocopated ("veintiún millones de
personas"), while thousands agree with the noun ("doscientas mil personas"). Spanish uses the long scale:
10**9 is "mil millones", 10**12 "un billón".

>>> en_cardinal(123456789)
'one hundred twenty three million four hundred fifty six thousand seven hundred eighty nine'
>>> es_cardinal(21000, "f")
'veintiuna mil'
"""

from __future__ import annotations

from typing import Literal

Gender = Literal["m", "f"]

# ---------------------------------------------------------------------------------------------- English

_EN_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_EN_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_EN_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (10**3, "thousand"))
_EN_ORDINAL_WORDS = {
    "one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
    "nine": "ninth", "twelve": "twelfth",
}
EN_MAX = 10**15 - 1


def _en_below_1000(n: int) -> list[str]:
    words: list[str] = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        words += [_EN_ONES[hundreds], "hundred"]
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words.append(_EN_TENS[tens])
        if ones:
            words.append(_EN_ONES[ones])
    elif rest or not words:
        words.append(_EN_ONES[rest])
    return words


def en_cardinal(n: int) -> str:
    """English cardinal, 0 ≤ |n| ≤ 10**15 − 1; negatives get "minus"."""
    if n < 0:
        return "minus " + en_cardinal(-n)
    if n > EN_MAX:
        raise ValueError(f"{n} is too large to spell out (max {EN_MAX})")
    words: list[str] = []
    for value, name in _EN_SCALES:
        count, n = divmod(n, value)
        if count:
            words += _en_below_1000(count) + [name]
    if n or not words:
        words += _en_below_1000(n)
    return " ".join(words)


def en_ordinal(n: int) -> str:
    """English ordinal: 21 → "twenty first", 100 → "one hundredth", 12 → "twelfth"."""
    words = en_cardinal(n).split()
    last = words[-1]
    if last in _EN_ORDINAL_WORDS:
        words[-1] = _EN_ORDINAL_WORDS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def en_year(n: int) -> str:
    """A year read as people say it: 1984 "nineteen eighty four", 1905 "nineteen oh five", 1900 "nineteen
    hundred", 2000 "two thousand", 2007 "two thousand seven", 2024 "twenty twenty four".

    Years outside 1000–9999, and round thousands, are read as cardinals.
    """
    if not 1000 <= n <= 9999 or n % 1000 == 0 or 2000 < n < 2010:
        return en_cardinal(n)
    century, rest = divmod(n, 100)
    if rest == 0:
        return f"{en_cardinal(century)} hundred"
    if rest < 10:
        return f"{en_cardinal(century)} oh {_EN_ONES[rest]}"
    return f"{en_cardinal(century)} {en_cardinal(rest)}"


def en_decade(n: int) -> str:
    """Plural of a year ending in 0: 1980 → "nineteen eighties", 1900 → "nineteen hundreds"."""
    words = en_year(n).split()
    last = words[-1]
    words[-1] = last[:-1] + "ies" if last.endswith("y") else last + "s"
    return " ".join(words)


def en_digits(digits: str) -> str:
    """Digits read one by one (the part after a decimal point): "05" → "zero five"."""
    return " ".join(_EN_ONES[int(d)] for d in digits)


# ---------------------------------------------------------------------------------------------- Spanish

_ES_BELOW_30 = (
    "cero uno dos tres cuatro cinco seis siete ocho nueve diez once doce trece catorce quince dieciséis "
    "diecisiete dieciocho diecinueve veinte veintiuno veintidós veintitrés veinticuatro veinticinco "
    "veintiséis veintisiete veintiocho veintinueve"
).split()
_ES_TENS = "_ _ _ treinta cuarenta cincuenta sesenta setenta ochenta noventa".split()
_ES_HUNDREDS = (
    "_ ciento doscientos trescientos cuatrocientos quinientos seiscientos setecientos ochocientos "
    "novecientos"
).split()
ES_MAX = 10**15 - 1


def _es_one_form(word: str, gender: Gender, apocope: bool) -> str:
    """Inflect a final "uno"/"veintiuno": una/veintiuna (f), un/veintiún (m before a noun)."""
    if not word.endswith("uno"):
        return word
    if gender == "f":
        return word[:-1] + "a"
    if apocope:
        return "veintiún" if word == "veintiuno" else word[:-1]
    return word


def _es_below_1000(n: int, gender: Gender, apocope: bool) -> list[str]:
    words: list[str] = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        if hundreds == 1:
            words.append("cien" if rest == 0 else "ciento")
        else:
            word = _ES_HUNDREDS[hundreds]
            words.append(word[:-2] + "as" if gender == "f" else word)
    if rest >= 30:
        tens, ones = divmod(rest, 10)
        words.append(_ES_TENS[tens])
        if ones:
            words += ["y", _ES_BELOW_30[ones]]
    elif rest or not words:
        words.append(_ES_BELOW_30[rest])
    words[-1] = _es_one_form(words[-1], gender, apocope)
    return words


def _es_below_million(n: int, gender: Gender, apocope: bool) -> list[str]:
    thousands, rest = divmod(n, 1000)
    words: list[str] = []
    if thousands == 1:
        words.append("mil")  # "mil", never "un mil"
    elif thousands:
        # The multiplier of "mil" takes the noun's gender; masculine "uno" is shortened before "mil".
        words += _es_below_1000(thousands, gender, apocope=True) + ["mil"]
    if rest or not words:
        words += _es_below_1000(rest, gender, apocope)
    return words


def es_cardinal(n: int, gender: Gender = "m", apocope: bool = False) -> str:
    """Spanish cardinal, 0 ≤ |n| ≤ 10**15 − 1.

    Args:
        gender: "f" when the number counts a feminine noun (una, veintiuna, doscientas).
        apocope: masculine short form before a noun (un, veintiún, treinta y un); "uno" when False.
    """
    if n < 0:
        return "menos " + es_cardinal(-n, gender, apocope)
    if n > ES_MAX:
        raise ValueError(f"{n} is too large to spell out (max {ES_MAX})")
    words: list[str] = []
    billions, n = divmod(n, 10**12)
    millions, n = divmod(n, 10**6)
    # "billón" and "millón" are masculine nouns: their multipliers are masculine and apocopated.
    if billions:
        words += ["un", "billón"] if billions == 1 else _es_below_million(billions, "m", True) + ["billones"]
    if millions:
        words += ["un", "millón"] if millions == 1 else _es_below_million(millions, "m", True) + ["millones"]
    if n or not words:
        words += _es_below_million(n, gender, apocope)
    return " ".join(words)


_ES_ORD_UNITS = "_ primero segundo tercero cuarto quinto sexto séptimo octavo noveno".split()
_ES_ORD_TENS = (
    "_ décimo vigésimo trigésimo cuadragésimo quincuagésimo sexagésimo septuagésimo octogésimo nonagésimo"
).split()
_ES_ORD_HUNDREDS = (
    "_ centésimo ducentésimo tricentésimo cuadringentésimo quingentésimo sexcentésimo septingentésimo "
    "octingentésimo noningentésimo"
).split()
_ES_ORD_TEENS = {11: "undécimo", 12: "duodécimo"}
ES_ORDINAL_MAX = 999


def es_ordinal(n: int, gender: Gender = "m", apocope: bool = False) -> str:
    """Spanish ordinal, 1–999: 1 "primero", 1 f "primera", 3 apocope "tercer", 21 "vigésimo primero",
    13 "decimotercero". Larger numbers are read as cardinals (as speakers usually do)."""
    if not 1 <= n <= ES_ORDINAL_MAX:
        return es_cardinal(n, gender, apocope)
    hundreds, rest = divmod(n, 100)
    words = [_ES_ORD_HUNDREDS[hundreds]] if hundreds else []
    tens, ones = divmod(rest, 10)
    if rest in _ES_ORD_TEENS:
        words.append(_ES_ORD_TEENS[rest])
    elif tens == 1 and ones:
        # 13–19 are written as one word: decimotercero, decimoctavo (the "o" of "décimo" merges).
        unit = _ES_ORD_UNITS[ones]
        words.append("decim" + unit if unit.startswith("o") else "decimo" + unit)
    else:
        if tens:
            words.append(_ES_ORD_TENS[tens])
        if ones:
            words.append(_ES_ORD_UNITS[ones])
    if gender == "f":
        words = [w[:-1] + "a" for w in words]
    elif apocope and words[-1].endswith(("primero", "tercero")):
        words[-1] = words[-1][:-1]  # primer, tercer, decimotercer before a masculine noun
    return " ".join(words)


def es_fraction(digits: str) -> str:
    """The part after a Spanish decimal comma: leading zeros as "cero", then the number ("05" → "cero
    cinco", "14" → "catorce"), as in "tres coma catorce"."""
    stripped = digits.lstrip("0")
    words = ["cero"] * (len(digits) - len(stripped))
    if stripped:
        words.append(es_cardinal(int(stripped)))
    return " ".join(words)
