"""Text normalisation for transcripts: numbers, money and abbreviations spelled out, lower case, no punctuation.

``normalize(text, lang)`` runs the language's expansion (``normalize_en.expand`` / ``normalize_es.expand``)
and then the shared clean-up: lower case, punctuation and symbols removed, whitespace collapsed. English keeps
apostrophes inside words ("don't", "o'clock"); Spanish keeps its accented letters (á é í ó ú ñ ü).

>>> normalize("Dr. Smith paid $100.")
'doctor smith paid one hundred dollars'
>>> normalize("¿Cuántas? 21 casas, 1 libro y 200 personas.", "es")
'cuántas veintiuna casas un libro y doscientas personas'
"""

from __future__ import annotations

import re
import unicodedata
from typing import Callable

from speechseq.errors import SpeechSeqError
from speechseq.text import normalize_en, normalize_es

_EXPANDERS: dict[str, Callable[[str], str]] = {"en": normalize_en.expand, "es": normalize_es.expand}

# Typographic variants mapped to the ASCII sign the expanders look for.
_TYPOGRAPHY = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u201c": '"', "\u201d": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2013": "-", "\u2014": " - ", "\u2212": "-", "\u00a0": " ", "\u202f": " ",
})


class UnsupportedLanguageError(SpeechSeqError, ValueError):
    """A language code that has no normaliser."""


def supported_languages() -> list[str]:
    """Language codes ``normalize`` accepts."""
    return sorted(_EXPANDERS)


def _clean(text: str, keep_apostrophes: bool) -> str:
    """Lower-case, replace every character that is not a letter (or an in-word apostrophe) by a space, and
    collapse whitespace. Digits that no rule expanded are dropped too, so the output is words only."""
    text = text.lower()
    allowed = "'" if keep_apostrophes else ""
    # The ordinal indicators º ª count as letters in Unicode; a leftover one is a symbol here.
    text = "".join(ch if (ch.isalpha() and ch not in "ºª") or ch in allowed else " " for ch in text)
    if keep_apostrophes:
        # Quotes around words ('hello') are punctuation; only an apostrophe between letters is kept.
        text = re.sub(r"(?<!\w)'|'(?!\w)", " ", text)
    return " ".join(text.split())


def normalize(text: str, lang: str = "en") -> str:
    """Normalise ``text`` for speech recognition or synthesis.

    Args:
        text: raw text in language ``lang``.
        lang: "en" or "es" (a region suffix such as "en-us" or "es_MX" is ignored).

    Returns:
        lower-case words separated by single spaces, with numbers, ordinals, money, percentages and common
        abbreviations spelled out.

    Raises:
        UnsupportedLanguageError: for a language without a normaliser.
    """
    base = re.split(r"[-_]", lang.lower(), maxsplit=1)[0]
    if base not in _EXPANDERS:
        raise UnsupportedLanguageError(
            f"no text normaliser for language {lang!r} (supported: {', '.join(supported_languages())})"
        )
    # NFC, not NFKC: compatibility folding would turn the ordinal indicators º/ª into plain o/a.
    text = unicodedata.normalize("NFC", text).translate(_TYPOGRAPHY)
    return _clean(_EXPANDERS[base](text), keep_apostrophes=base == "en")
