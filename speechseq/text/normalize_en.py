"""English text expansion: abbreviations, currency, percentages, ordinals, years, times and numbers.

``expand`` rewrites everything that is not plain words into words and leaves case and punctuation alone;
``speechseq.text.normalize`` then lower-cases and strips punctuation. The order of the passes matters: a
pass must see the symbols that later passes would destroy ("$1.50" before decimals, "21st" before integers).

Year rule: a 4-digit number 1000–2099 written without a thousands separator is read as a year
("nineteen eighty four") when the word before it is a cue (in, since, from, until, by, of, during, year,
circa, a month name, ...), when it follows a "Month D," date, when it is followed by AD/BC/BCE/CE, when it
is part of a range "1990-1995", or when it is joined by and/or/to/through to a number just read as a year.
Decades "1980s" / "'80s" are always read as decades. Any other number is a cardinal ("1984 people" →
"one thousand nine hundred eighty four people").

>>> expand("Dr. Smith paid $1.50 on May 3rd, 1984.")
'doctor Smith paid one dollar fifty cents on May third, nineteen eighty four.'
"""

from __future__ import annotations

import re

from speechseq.text.number_words import (
    EN_MAX, en_cardinal, en_decade, en_digits, en_ordinal, en_year,
)

_TITLES = {  # expanded with or without a period when a capitalised name follows ("Mr Smith")
    "mr": "mister", "mrs": "missus", "ms": "miss", "dr": "doctor", "drs": "doctors", "prof": "professor",
    "rev": "reverend", "capt": "captain", "sgt": "sergeant", "lt": "lieutenant", "col": "colonel",
    "gen": "general", "maj": "major", "gov": "governor", "sen": "senator", "rep": "representative",
    "hon": "honorable", "mt": "mount", "ft": "fort",
}
_ABBREVIATIONS = {  # expanded only with their period
    "jr": "junior", "sr": "senior", "vs": "versus", "etc": "et cetera", "approx": "approximately",
    "co": "company", "corp": "corporation", "inc": "incorporated", "ltd": "limited", "esq": "esquire",
    "ave": "avenue", "blvd": "boulevard", "dept": "department", "est": "established", "fig": "figure",
    "e.g": "for example", "i.e": "that is", "a.m": "a m", "p.m": "p m",
}
_MONTHS = (
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec"
).split()
_YEAR_CUES = set(_MONTHS) | set(
    "in since from until till by of during year years circa c ca around before after between "
    "early late mid spring summer autumn fall winter born died".split()
)
_YEAR_LINKS = re.compile(r"\s*(?:and|or|to|through|until|-|–)\s*$", re.IGNORECASE)
_CURRENCIES = {  # symbol: (singular, plural, cent singular, cent plural)
    "$": ("dollar", "dollars", "cent", "cents"),
    "€": ("euro", "euros", "cent", "cents"),
    "£": ("pound", "pounds", "penny", "pence"),
}
_SCALE = r"(?:\s?(thousand|million|billion|trillion)\b)?"


def _cardinal_text(number: str) -> str:
    """Digits (commas allowed) as a cardinal; numbers too long to name are read digit by digit."""
    value = int(number.replace(",", ""))
    return en_cardinal(value) if value <= EN_MAX else en_digits(number.replace(",", ""))


def _expand_abbreviations(text: str) -> str:
    # "St." is "saint" before a capitalised name (St. Louis) and "street" otherwise (Main St.).
    text = re.sub(r"\bSt\.(?=\s+[A-Z])", "saint", text)
    text = re.sub(r"\bst\.", "street", text, flags=re.IGNORECASE)
    text = re.sub(r"\bno\.(?=\s*\d)", "number", text, flags=re.IGNORECASE)
    text = re.sub(r"#(?=\d)", "number ", text)
    for short, long in _TITLES.items():
        # Only the abbreviation ignores case: the name after an undotted title must be capitalised.
        text = re.sub(rf"(?i:\b{short})(?:\.|\b(?=\s+[A-Z]))", long, text)
    for short, long in _ABBREVIATIONS.items():
        text = re.sub(rf"(?i:\b{re.escape(short)})\.", long, text)
    return text.replace("&", " and ")


def _money(symbol: str, whole: str, frac: str | None, scale: str | None) -> str:
    unit, units, cent, cents = _CURRENCIES[symbol]
    if scale:  # "$1.5 million" → "one point five million dollars"
        amount = _cardinal_text(whole) + (f" point {en_digits(frac)}" if frac else "")
        return f"{amount} {scale} {units}"
    if frac is not None and len(frac) > 2:  # "$0.005" is not an amount in cents
        return f"{_cardinal_text(whole)} point {en_digits(frac)} {units}"
    value = int(whole.replace(",", ""))
    cent_value = int(frac.ljust(2, "0")) if frac else 0
    parts = []
    if value or not cent_value:
        parts.append(f"{_cardinal_text(whole)} {unit if value == 1 else units}")
    if cent_value:
        parts.append(f"{en_cardinal(cent_value)} {cent if cent_value == 1 else cents}")
    return " ".join(parts)


def _expand_currency(text: str) -> str:
    amount = r"(\d[\d,]*)(?:\.(\d+))?"
    text = re.sub(
        rf"([$€£])\s?{amount}{_SCALE}",
        lambda m: _money(m[1], m[2], m[3], m[4]), text,
    )
    # "100 €", "5£": the symbol after the amount (European style).
    return re.sub(rf"{amount}\s?([€£])", lambda m: _money(m[3], m[1], m[2], None), text)


def _expand_percent(text: str) -> str:
    return re.sub(r"(\d[\d,]*(?:\.\d+)?)\s?%", r"\1 percent", text)


def _expand_ordinals(text: str) -> str:
    return re.sub(
        r"\b(\d[\d,]*)(?:st|nd|rd|th)\b",
        lambda m: en_ordinal(int(m[1].replace(",", ""))), text, flags=re.IGNORECASE,
    )


def _expand_years(text: str) -> str:
    text = re.sub(r"\b(1\d|20)(\d)0'?s\b", lambda m: en_decade(int(m[1] + m[2] + "0")), text)
    text = re.sub(r"'([2-9])0s\b", lambda m: en_decade(1900 + 10 * int(m[1])).split(" ", 1)[1], text)
    year = r"(1\d{3}|20\d{2})"
    text = re.sub(rf"\b{year}\s?[-–]\s?{year}\b", lambda m: f"{en_year(int(m[1]))} to {en_year(int(m[2]))}", text)
    last_end = -1

    def read(match: re.Match[str]) -> str:
        nonlocal last_end
        before = text[max(0, match.start() - 40): match.start()]  # the cues are in the last few words
        previous = re.search(r"([A-Za-z]+)\.?\s+$", before)
        is_year = (
            (previous is not None and previous[1].lower() in _YEAR_CUES)
            or re.search(r"[A-Za-z]+\.?\s+\d{1,2}(?:st|nd|rd|th)?,\s*$", before) is not None
            or re.match(r"\s*(?:AD|BC|BCE|CE)\b", text[match.end():]) is not None
            or (last_end >= 0 and _YEAR_LINKS.match(text[last_end: match.start()]) is not None)
        )
        if not is_year:
            return match[0]
        last_end = match.end()
        return en_year(int(match[0]))

    return re.sub(rf"(?<![\d,.$€£]){year}\b(?![.,]\d|\s?%)", read, text)


def _expand_times(text: str) -> str:
    def read(match: re.Match[str]) -> str:
        hour, minute = int(match[1]), int(match[2])
        if minute == 0:
            return f"{en_cardinal(hour)} o'clock"
        if minute < 10:
            return f"{en_cardinal(hour)} oh {en_cardinal(minute)}"
        return f"{en_cardinal(hour)} {en_cardinal(minute)}"

    return re.sub(r"\b([01]?\d|2[0-3]):([0-5]\d)\b", read, text)


def _expand_numbers(text: str) -> str:
    text = re.sub(r"(\d)\s?[-–]\s?(?=\d)", r"\1 to ", text)  # ranges "10-20"
    text = re.sub(r"(?<![\w.])-(?=\d)", "minus ", text)
    text = re.sub(
        r"(\d[\d,]*)?\.(\d+)",
        lambda m: (_cardinal_text(m[1]) + " " if m[1] else "") + "point " + en_digits(m[2]), text,
    )
    return re.sub(r"\d+(?:,\d{3})+|\d+", lambda m: _cardinal_text(m[0]), text)


def expand(text: str) -> str:
    """Spell out abbreviations, money, percentages, ordinals, years, times and numbers as English words.

    Args:
        text: raw English text.

    Returns:
        text without digits or currency symbols; case and punctuation are kept for the caller to clean.
    """
    # Years before ordinals: the date rule needs "May 3rd, 1984" with its digits.
    for step in (_expand_abbreviations, _expand_currency, _expand_percent, _expand_years,
                 _expand_ordinals, _expand_times, _expand_numbers):
        text = step(text)
    return text
