"""Tokenizers: text ↔ integer ids, with the id convention every model of speechseq relies on.

Ids 0, 1, 2 are the specials ``<blank>`` (CTC blank and padding), ``<unk>`` and ``<sos/eos>`` (one symbol
for both, as in ESPnet); the symbols follow from id 3. ``encode`` never emits a special: models add
``<sos/eos>`` themselves and unknown input raises ``UnknownTokenError`` instead of mapping to ``<unk>``
(a transcript the model cannot represent is a data bug, not something to learn). ``decode`` drops specials.

Kinds: ``CharTokenizer`` (one id per character; space is a symbol), ``PhonemeTokenizer`` (IPA phonemes, see
``split_phonemes``) and ``BPETokenizer`` (sentencepiece, in ``speechseq.text.bpe``). Each saves itself as
``tokenizer.json`` with a "type" key; ``load_tokenizer(folder)`` returns the right class.
"""

from __future__ import annotations

import json
import unicodedata
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, Iterable, Sequence

from speechseq.errors import SpeechSeqError, UnknownTokenError

BLANK_ID, UNK_ID, SOS_EOS_ID = 0, 1, 2
SPECIAL_TOKENS = ("<blank>", "<unk>", "<sos/eos>")
NUM_SPECIALS = len(SPECIAL_TOKENS)
CONFIG_NAME = "tokenizer.json"

# Affricates written without a tie bar by espeak ("tʃ" in church, chico; "dʒ" in judge): one phoneme each.
DEFAULT_MULTIGRAPHS = ("tʃ", "dʒ")
_TIE_BARS = "\u0361\u035c"  # t͡ʃ, t͜ʃ: the tie bar joins the letters on both sides
# Spacing modifier letters that modify the phoneme before them (length, aspiration, secondary articulation).
# Stress marks ˈ ˌ are also modifier letters but stand before a syllable: they stay separate symbols.
_SUFFIX_MODIFIERS = set("ːˑʰʷʲˠˤⁿˡ˞ʼ")

_REGISTRY: dict[str, type["Tokenizer"]] = {}


class TokenizerError(SpeechSeqError, ValueError):
    """A tokenizer file or id that cannot be used (missing file, bad "type", id out of range)."""


def register_tokenizer(cls: type["Tokenizer"]) -> type["Tokenizer"]:
    """Class decorator: make ``load_tokenizer`` find ``cls`` by its ``type_name``."""
    _REGISTRY[cls.type_name] = cls
    return cls


def strip_after_eos(ids: Sequence[int]) -> list[int]:
    """The ids before the first ``<sos/eos>`` (a decoder's output up to where it stopped)."""
    ids = [int(i) for i in ids]
    return ids[: ids.index(SOS_EOS_ID)] if SOS_EOS_ID in ids else ids


class Tokenizer(ABC):
    """Common interface: ``encode``, ``decode``, ``tokens``, ``vocab_size``, ``save``."""

    type_name: ClassVar[str]

    @property
    @abstractmethod
    def tokens(self) -> list[str]:
        """Every token, indexed by id (specials first): labels for plots and debugging."""

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Ids of ``text`` (no specials). Raises ``UnknownTokenError`` naming the unknown symbols."""

    @abstractmethod
    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``, specials dropped (nothing is cut at ``<sos/eos>``: see ``strip_after_eos``)."""

    @abstractmethod
    def tokenize(self, text: str) -> list[str]:
        """The symbols or pieces ``text`` is split into (same length as ``encode(text)``)."""

    @abstractmethod
    def _config(self, folder: Path) -> dict[str, Any]:
        """The JSON-able fields that rebuild this tokenizer; may write side files into ``folder``."""

    @classmethod
    @abstractmethod
    def _from_config(cls, config: dict[str, Any], folder: Path) -> "Tokenizer":
        """Inverse of ``_config``."""

    @property
    def vocab_size(self) -> int:
        """Number of ids, specials included (the size of a model's output layer)."""
        return len(self.tokens)

    def save(self, folder: str | Path) -> Path:
        """Write ``tokenizer.json`` (and side files) into ``folder``; returns the JSON path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config = {"type": self.type_name, **self._config(folder)}
        path = folder / CONFIG_NAME
        path.write_text(json.dumps(config, ensure_ascii=False, indent=1), encoding="utf-8")
        return path

    def _check_ids(self, ids: Iterable[int]) -> list[int]:
        ids = [int(i) for i in ids]
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise TokenizerError(f"token id(s) {bad} outside the vocabulary of size {self.vocab_size}")
        return ids


def load_tokenizer(folder: str | Path) -> Tokenizer:
    """Rebuild the tokenizer saved in ``folder`` (its ``tokenizer.json`` names the class)."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise TokenizerError(f"{path}: no tokenizer file")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise TokenizerError(f"{path}: not valid JSON ({error})") from error
    kind = config.get("type")
    if kind not in _REGISTRY:
        raise TokenizerError(f"{path}: unknown tokenizer type {kind!r} (known: {sorted(_REGISTRY)})")
    return _REGISTRY[kind]._from_config(config, Path(folder))


class SymbolTokenizer(Tokenizer):
    """A fixed list of symbols, one id each; subclasses say how text splits into symbols."""

    def __init__(self, symbols: Sequence[str]) -> None:
        symbols = list(symbols)
        clash = [s for s in symbols if s in SPECIAL_TOKENS]
        if clash or len(set(symbols)) != len(symbols):
            raise TokenizerError(f"symbols must be unique and not specials; got clashes {clash or 'duplicates'}")
        self._tokens = list(SPECIAL_TOKENS) + symbols
        self._ids = {s: i for i, s in enumerate(self._tokens)}

    @property
    def tokens(self) -> list[str]:
        return list(self._tokens)

    @abstractmethod
    def tokenize(self, text: str) -> list[str]: ...

    def encode(self, text: str) -> list[int]:
        symbols = self.tokenize(text)
        unknown = sorted({s for s in symbols if s not in self._ids})
        if unknown:
            raise UnknownTokenError(unknown, text)
        return [self._ids[s] for s in symbols]

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self._tokens[i] for i in self._check_ids(ids) if i >= NUM_SPECIALS)


@register_tokenizer
class CharTokenizer(SymbolTokenizer):
    """One id per character (space included).

    >>> tok = CharTokenizer.from_texts(["hello world"])
    >>> tok.encode("hold"), tok.decode(tok.encode("hold"))
    ([6, 8, 7, 4], 'hold')
    >>> tok.tokens[:4]
    ['<blank>', '<unk>', '<sos/eos>', ' ']
    """

    type_name = "char"

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> "CharTokenizer":
        """Vocabulary of every character in ``texts``, in sorted order (so it does not depend on text order)."""
        return cls(sorted({ch for text in texts for ch in text}))

    def tokenize(self, text: str) -> list[str]:
        return list(text)

    def _config(self, folder: Path) -> dict[str, Any]:
        return {"symbols": self._tokens[NUM_SPECIALS:]}

    @classmethod
    def _from_config(cls, config: dict[str, Any], folder: Path) -> "CharTokenizer":
        return cls(config["symbols"])


def split_phonemes(ipa: str, multigraphs: Sequence[str] = DEFAULT_MULTIGRAPHS) -> list[str]:
    """Split an IPA string into phoneme symbols; ``"".join`` of the result gives back ``ipa``.

    A symbol is one base character plus whatever modifies it:
      * combining diacritics (nasalisation ̃, syllabic ̩, ...) and suffix modifier letters (length ː,
        aspiration ʰ, palatalisation ʲ, ...) stay with the character before them, so "ɜː" and "ɑ̃" are one
        symbol each (long vowels are distinct phonemes in espeak's inventory too);
      * a tie bar joins the characters on both sides ("t͡ʃ");
      * the ``multigraphs`` (default the affricates "tʃ", "dʒ", which espeak writes without a tie bar) are
        matched greedily, longest first;
      * stress marks ˈ ˌ and the space (word boundary) are symbols of their own;
      * diphthongs ("aɪ", "əʊ") stay two vowel symbols: the sequence model learns them, and the vocabulary
        stays small and shared between languages.

    >>> split_phonemes("tʃˈɜːtʃ ɑ̃")
    ['tʃ', 'ˈ', 'ɜː', 'tʃ', ' ', 'ɑ̃']
    """
    ordered = sorted(multigraphs, key=len, reverse=True)
    symbols: list[str] = []
    i = 0
    while i < len(ipa):
        match = next((m for m in ordered if ipa.startswith(m, i)), ipa[i])
        i += len(match)
        # Absorb diacritics and suffix modifiers; a tie bar also pulls in the character after it.
        while i < len(ipa) and (unicodedata.category(ipa[i]).startswith("M") or ipa[i] in _SUFFIX_MODIFIERS):
            match += ipa[i]
            i += 1
            if match[-1] in _TIE_BARS and i < len(ipa):
                match += ipa[i]
                i += 1
        symbols.append(match)
    return symbols


@register_tokenizer
class PhonemeTokenizer(SymbolTokenizer):
    """One id per IPA phoneme symbol (see ``split_phonemes``); space and stress marks are symbols.

    >>> tok = PhonemeTokenizer.from_texts(["tʃˈɜːtʃ", "dʒˈʌdʒ"])
    >>> tok.tokenize("tʃˈʌdʒ"), tok.decode(tok.encode("tʃˈʌdʒ"))
    (['tʃ', 'ˈ', 'ʌ', 'dʒ'], 'tʃˈʌdʒ')
    """

    type_name = "phoneme"

    def __init__(self, symbols: Sequence[str], multigraphs: Sequence[str] = DEFAULT_MULTIGRAPHS) -> None:
        super().__init__(symbols)
        self.multigraphs = tuple(multigraphs)

    @classmethod
    def from_texts(
        cls, phoneme_strings: Iterable[str], multigraphs: Sequence[str] = DEFAULT_MULTIGRAPHS
    ) -> "PhonemeTokenizer":
        """Vocabulary of every phoneme symbol in ``phoneme_strings`` (e.g. ``espeak.phonemize`` output)."""
        symbols = {s for text in phoneme_strings for s in split_phonemes(text, multigraphs)}
        return cls(sorted(symbols), multigraphs)

    def tokenize(self, text: str) -> list[str]:
        return split_phonemes(text, self.multigraphs)

    def _config(self, folder: Path) -> dict[str, Any]:
        return {"symbols": self._tokens[NUM_SPECIALS:], "multigraphs": list(self.multigraphs)}

    @classmethod
    def _from_config(cls, config: dict[str, Any], folder: Path) -> "PhonemeTokenizer":
        return cls(config["symbols"], config.get("multigraphs", DEFAULT_MULTIGRAPHS))
