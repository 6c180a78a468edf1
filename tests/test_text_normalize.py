"""Text normalisation (English, Spanish) and the number-to-words module, against hand-checked tables."""

from __future__ import annotations

import random
import re

import pytest

from speechseq.errors import SpeechSeqError
from speechseq.text import normalize
from speechseq.text.normalize import UnsupportedLanguageError
from speechseq.text.number_words import en_cardinal, en_ordinal, en_year, es_cardinal, es_ordinal

EN_CASES = [
    ("Dr. Smith paid $100", "doctor smith paid one hundred dollars"),
    ("$1.50", "one dollar fifty cents"),
    ("$0.05", "five cents"),
    ("$2.01", "two dollars one cent"),
    ("€20 and £3.20", "twenty euros and three pounds twenty pence"),
    ("It cost 5 €.", "it cost five euros"),
    ("$5 million", "five million dollars"),
    ("$1,000,000", "one million dollars"),
    ("3.5", "three point five"),
    ("pi is 3.14159", "pi is three point one four one five nine"),
    ("0.5 and .5", "zero point five and point five"),
    ("21st", "twenty first"),
    ("the 2nd, 3rd, 11th, 12th and 100th", "the second third eleventh twelfth and one hundredth"),
    ("50% of 3.5%", "fifty percent of three point five percent"),
    ("In 1984 he left.", "in nineteen eighty four he left"),
    ("1984 people", "one thousand nine hundred eighty four people"),
    ("since 2000, by 1905 and until 2024", "since two thousand by nineteen oh five and until twenty twenty four"),
    ("from 1990 to 1995", "from nineteen ninety to nineteen ninety five"),
    ("1990-1995", "nineteen ninety to nineteen ninety five"),
    ("July 4, 1776", "july four seventeen seventy six"),
    ("the 1980s and '90s", "the nineteen eighties and nineties"),
    ("St. Louis is on Main St.", "saint louis is on main street"),
    ("Mr. and Mrs. Jones vs. Ms Smith, etc.", "mister and missus jones versus miss smith et cetera"),
    ("No. 5 & #1", "number five and number one"),
    ("at 3:30 or 10:05 or 9:00", "at three thirty or ten oh five or nine o'clock"),
    ("-5 degrees, pages 10-20", "minus five degrees pages ten to twenty"),
    ("I don't 'like' it!", "i don't like it"),
    ("“Quoted” — text… OK?", "quoted text ok"),
    ("  Many   spaces\there ", "many spaces here"),
    ("123456789", "one hundred twenty three million four hundred fifty six thousand seven hundred eighty nine"),
]

ES_CASES = [
    ("21 casas", "veintiuna casas"),
    ("1 libro", "un libro"),
    ("200 personas", "doscientas personas"),
    ("un millón", "un millón"),
    ("1.000.000 personas", "un millón de personas"),
    ("200.000 personas", "doscientas mil personas"),
    ("21 mil casas y 21 mil libros", "veintiuna mil casas y veintiún mil libros"),
    ("21 millones de personas", "veintiún millones de personas"),
    ("31 días y 31 semanas", "treinta y un días y treinta y una semanas"),
    ("1 problema, 1 vez, 41 veces", "un problema una vez cuarenta y una veces"),
    ("501 canciones", "quinientas una canciones"),
    ("capítulo 1", "capítulo uno"),
    ("1 de los libros y 21 de las casas", "uno de los libros y veintiuna de las casas"),
    ("1.º", "primero"),
    ("1ª", "primera"),
    ("el 1.º de mayo", "el primero de mayo"),
    ("el 1.º piso y la 3.ª planta", "el primer piso y la tercera planta"),
    ("el 3er día", "el tercer día"),
    ("el 21.º siglo y la 13.ª edición", "el vigésimo primer siglo y la decimotercera edición"),
    ("100 €", "cien euros"),
    ("€100", "cien euros"),
    ("$1", "un dólar"),
    ("21 €", "veintiún euros"),
    ("£21", "veintiuna libras"),
    ("1,50 €", "un euro con cincuenta céntimos"),
    ("$1.50", "un dólar con cincuenta centavos"),
    ("0,99 €", "noventa y nueve céntimos"),
    ("1.000.000 €", "un millón de euros"),
    ("50 % y 3,5 %", "cincuenta por ciento y tres coma cinco por ciento"),
    ("3,14", "tres coma catorce"),
    ("-3 grados, 20 °C", "menos tres grados veinte grados celsius"),
    ("n.º 5", "número cinco"),
    ("Sr. García y Sra. López", "señor garcía y señora lópez"),
    ("Dr. y Dra. Pérez, ¿cómo está Ud.?", "doctor y doctora pérez cómo está usted"),
    ("¡El niño comió pingüino!", "el niño comió pingüino"),
    ("en 2001 hubo 2001 personas", "en dos mil uno hubo dos mil una personas"),
    ("el 1 de enero de 2021", "el uno de enero de dos mil veintiuno"),
    ("1984", "mil novecientos ochenta y cuatro"),
]


@pytest.mark.parametrize("raw, expected", EN_CASES)
def test_english_table(raw: str, expected: str) -> None:
    assert normalize(raw, "en") == expected


@pytest.mark.parametrize("raw, expected", ES_CASES)
def test_spanish_table(raw: str, expected: str) -> None:
    assert normalize(raw, "es") == expected


@pytest.mark.parametrize("lang, cases", [("en", EN_CASES), ("es", ES_CASES)])
def test_output_is_clean_and_idempotent(lang: str, cases: list[tuple[str, str]]) -> None:
    """Words only, lower case, single spaces; normalising twice changes nothing."""
    allowed = r"[a-z' ]+" if lang == "en" else r"[a-zñáéíóúü ]+"
    for raw, _ in cases:
        out = normalize(raw, lang)
        assert re.fullmatch(allowed, out), out
        assert normalize(out, lang) == out


def test_unknown_language_names_it() -> None:
    with pytest.raises(UnsupportedLanguageError, match="'fr'") as error:
        normalize("bonjour", "fr")
    assert isinstance(error.value, SpeechSeqError)
    assert normalize("Hello 2", "en-US") == "hello two"


# ----------------------------------------------------------------------------- number words, parsed back

_EN_VALUES = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
_EN_VALUES.update({w: 10 * i for i, w in enumerate(
    "twenty thirty forty fifty sixty seventy eighty ninety".split(), start=2)})
_EN_SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}

_ES_VALUES = {
    "cero": 0, "uno": 1, "un": 1, "una": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6,
    "siete": 7, "ocho": 8, "nueve": 9, "diez": 10, "once": 11, "doce": 12, "trece": 13, "catorce": 14,
    "quince": 15, "dieciséis": 16, "diecisiete": 17, "dieciocho": 18, "diecinueve": 19, "veinte": 20,
    "veintiuno": 21, "veintiún": 21, "veintiuna": 21, "veintidós": 22, "veintitrés": 23, "veinticuatro": 24,
    "veinticinco": 25, "veintiséis": 26, "veintisiete": 27, "veintiocho": 28, "veintinueve": 29,
    "treinta": 30, "cuarenta": 40, "cincuenta": 50, "sesenta": 60, "setenta": 70, "ochenta": 80,
    "noventa": 90, "cien": 100, "ciento": 100, "doscientos": 200, "doscientas": 200, "trescientos": 300,
    "trescientas": 300, "cuatrocientos": 400, "cuatrocientas": 400, "quinientos": 500, "quinientas": 500,
    "seiscientos": 600, "seiscientas": 600, "setecientos": 700, "setecientas": 700, "ochocientos": 800,
    "ochocientas": 800, "novecientos": 900, "novecientas": 900,
}


def _parse_en(words: str) -> int:
    """Independent reader of English number words (the inverse of en_cardinal)."""
    total = current = 0
    for word in words.split():
        if word == "hundred":
            current *= 100
        elif word in _EN_SCALES:
            total, current = total + current * _EN_SCALES[word], 0
        else:
            current += _EN_VALUES[word]
    return total + current


def _parse_es(words: str) -> int:
    """Independent reader of Spanish number words, long scale (the inverse of es_cardinal)."""
    total = group = current = 0
    for word in words.split():
        if word == "y":
            continue
        if word == "mil":
            group, current = group + (current or 1) * 1000, 0
        elif word in {"millón", "millones"}:
            total, group, current = total + (group + current) * 10**6, 0, 0
        elif word in {"billón", "billones"}:
            total, group, current = total + (group + current) * 10**12, 0, 0
        else:
            current += _ES_VALUES[word]
    return total + group + current


def test_cardinals_parse_back_to_their_value() -> None:
    rng = random.Random(0)
    numbers = list(range(0, 1200)) + [rng.randrange(10 ** rng.randint(4, 15)) for _ in range(3000)]
    for n in numbers:
        assert _parse_en(en_cardinal(n)) == n, (n, en_cardinal(n))
        for gender, apocope in (("m", False), ("m", True), ("f", False)):
            assert _parse_es(es_cardinal(n, gender, apocope)) == n, (n, es_cardinal(n, gender, apocope))


def test_spanish_cardinal_forms() -> None:
    assert es_cardinal(1) == "uno" and es_cardinal(1, apocope=True) == "un" and es_cardinal(1, "f") == "una"
    assert es_cardinal(21, apocope=True) == "veintiún"
    assert es_cardinal(100) == "cien" and es_cardinal(101) == "ciento uno"
    assert es_cardinal(1000) == "mil" and es_cardinal(1001, "f") == "mil una"
    assert es_cardinal(500_000, "f") == "quinientas mil"
    assert es_cardinal(21_000_000, "f") == "veintiún millones"  # millón is masculine whatever is counted
    assert es_cardinal(200_000_000, "f") == "doscientos millones"
    assert es_cardinal(10**9) == "mil millones" and es_cardinal(10**12) == "un billón"


def test_ordinals_and_years() -> None:
    assert [en_ordinal(n) for n in (1, 2, 3, 5, 9, 12, 20, 21, 100, 1000)] == [
        "first", "second", "third", "fifth", "ninth", "twelfth", "twentieth", "twenty first",
        "one hundredth", "one thousandth",
    ]
    assert [en_year(n) for n in (1066, 1900, 1905, 1984, 2000, 2007, 2010, 2024)] == [
        "ten sixty six", "nineteen hundred", "nineteen oh five", "nineteen eighty four", "two thousand",
        "two thousand seven", "twenty ten", "twenty twenty four",
    ]
    assert [es_ordinal(n) for n in (1, 3, 8, 11, 12, 13, 18, 20, 21, 100)] == [
        "primero", "tercero", "octavo", "undécimo", "duodécimo", "decimotercero", "decimoctavo",
        "vigésimo", "vigésimo primero", "centésimo",
    ]
    assert es_ordinal(21, "f") == "vigésima primera" and es_ordinal(3, apocope=True) == "tercer"
