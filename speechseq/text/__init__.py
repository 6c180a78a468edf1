"""speechseq.text: normalisation (en/es), tokenizers (char, phoneme, BPE) and espeak-ng synthesis/G2P.

>>> from speechseq.text import normalize, g2p, CharTokenizer
>>> normalize("Dr. Smith paid $100")
'doctor smith paid one hundred dollars'
>>> g2p("21 casas", "es")
'beɪntjˈuna kˈasas'
"""

from __future__ import annotations

from speechseq.text import espeak
from speechseq.text.bpe import BPETokenizer
from speechseq.text.normalize import UnsupportedLanguageError, normalize
from speechseq.text.tokenizers import (
    BLANK_ID, SOS_EOS_ID, SPECIAL_TOKENS, UNK_ID, CharTokenizer, PhonemeTokenizer, Tokenizer, TokenizerError,
    load_tokenizer, split_phonemes, strip_after_eos,
)


def g2p(text: str, lang: str = "en") -> str:
    """Normalise ``text`` and convert it to IPA with espeak-ng (words separated by single spaces).

    Args:
        text: raw text; numbers, money and abbreviations are spelled out first, so espeak reads them the
            way the normalised transcript says them.
        lang: "en" or "es" (an espeak region or variant such as "en-us" is passed through to espeak).
    """
    return espeak.phonemize(normalize(text, lang), lang)


__all__ = [
    "BLANK_ID", "UNK_ID", "SOS_EOS_ID", "SPECIAL_TOKENS", "Tokenizer", "TokenizerError", "CharTokenizer",
    "PhonemeTokenizer", "BPETokenizer", "load_tokenizer", "split_phonemes", "strip_after_eos", "normalize",
    "UnsupportedLanguageError", "g2p", "espeak",
]
