"""Tokenizers: id convention, round trips on real LJSpeech text, save/load, unknown symbols, BPE pieces."""

from __future__ import annotations

from pathlib import Path

import pytest

from speechseq.errors import UnknownTokenError
from speechseq.text import (
    BPETokenizer, CharTokenizer, PhonemeTokenizer, Tokenizer, TokenizerError, espeak, load_tokenizer, normalize,
    split_phonemes, strip_after_eos,
)
from speechseq.text.tokenizers import SPECIAL_TOKENS


@pytest.fixture(scope="module")
def lj_texts(ljspeech_dir: Path) -> list[str]:
    """The 32 LJSpeech transcripts (normalised column), normalised by speechseq."""
    lines = (ljspeech_dir / "metadata.csv").read_text(encoding="utf-8").splitlines()
    return [normalize(line.split("|")[2]) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def lj_phonemes(lj_texts: list[str]) -> list[str]:
    return [espeak.phonemize(text, "en-us") for text in lj_texts[:12]]


@pytest.fixture(scope="module")
def tokenizers(lj_texts: list[str], lj_phonemes: list[str]) -> dict[str, Tokenizer]:
    return {
        "char": CharTokenizer.from_texts(lj_texts),
        "phoneme": PhonemeTokenizer.from_texts(lj_phonemes),
        "bpe": BPETokenizer.train(lj_texts, vocab_size=120),
    }


def _corpus(kind: str, lj_texts: list[str], lj_phonemes: list[str]) -> list[str]:
    return lj_phonemes if kind == "phoneme" else lj_texts


@pytest.mark.parametrize("kind", ["char", "phoneme", "bpe"])
def test_specials_are_ids_0_1_2(kind: str, tokenizers: dict[str, Tokenizer]) -> None:
    tok = tokenizers[kind]
    assert tok.tokens[:3] == ["<blank>", "<unk>", "<sos/eos>"] == list(SPECIAL_TOKENS)
    assert tok.vocab_size == len(tok.tokens) == len(set(tok.tokens))


@pytest.mark.parametrize("kind", ["char", "phoneme", "bpe"])
def test_round_trip_on_ljspeech(kind: str, tokenizers: dict[str, Tokenizer], lj_texts, lj_phonemes) -> None:
    tok = tokenizers[kind]
    for text in _corpus(kind, lj_texts, lj_phonemes):
        ids = tok.encode(text)
        assert min(ids) >= 3 and max(ids) < tok.vocab_size  # encode never emits a special
        assert len(ids) == len(tok.tokenize(text))
        assert tok.decode(ids) == text
        # Specials around and inside are dropped; nothing is cut at <sos/eos>.
        assert tok.decode([2] + ids[:3] + [0, 1] + ids[3:] + [2, 0, 0]) == text


@pytest.mark.parametrize("kind", ["char", "phoneme", "bpe"])
def test_save_load_reproduces_ids(kind: str, tokenizers, lj_texts, lj_phonemes, tmp_path: Path) -> None:
    tok = tokenizers[kind]
    tok.save(tmp_path)
    loaded = load_tokenizer(tmp_path)
    assert type(loaded) is type(tok)
    assert loaded.tokens == tok.tokens
    for text in _corpus(kind, lj_texts, lj_phonemes):
        assert loaded.encode(text) == tok.encode(text)


@pytest.mark.parametrize("kind, bad_text, unknown", [
    ("char", "quiz?", ["?", "q"]),
    ("phoneme", "həlˈəʊ ʁ ʀ", ["ʀ", "ʁ"]),
    ("bpe", "the Quiet ZOO", ["O", "Q", "Z"]),
])
def test_unknown_symbols_are_named(kind: str, bad_text: str, unknown: list[str], tokenizers) -> None:
    with pytest.raises(UnknownTokenError) as error:
        tokenizers[kind].encode(bad_text)
    assert error.value.symbols == unknown
    assert error.value.text == bad_text
    assert repr(bad_text) in str(error.value) and all(repr(s) in str(error.value) for s in unknown)


def test_char_vocabulary_does_not_depend_on_text_order(lj_texts: list[str]) -> None:
    forward = CharTokenizer.from_texts(lj_texts)
    backward = CharTokenizer.from_texts(reversed(lj_texts))
    assert forward.tokens == backward.tokens
    assert " " in forward.tokens and "q" not in forward.tokens  # LJ's 32 lines have no "q"


def test_bpe_learns_multi_character_pieces(tokenizers: dict[str, Tokenizer], lj_texts: list[str]) -> None:
    tok = tokenizers["bpe"]
    assert tok.vocab_size <= 120
    pieces = tok.tokenize(lj_texts[0])
    assert any(len(p.lstrip("▁")) >= 3 for p in pieces)
    assert len(pieces) < len(lj_texts[0]) / 2  # subwords, not characters
    assert "".join(pieces).replace("▁", " ").strip() == lj_texts[0]


def test_bpe_save_writes_model_next_to_json(tokenizers: dict[str, Tokenizer], tmp_path: Path) -> None:
    tokenizers["bpe"].save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokenizer.json", "tokenizer.model"]
    (tmp_path / "tokenizer.model").unlink()
    with pytest.raises(TokenizerError, match="tokenizer.model"):
        load_tokenizer(tmp_path)


def test_load_rejects_unknown_type_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match="no tokenizer file"):
        load_tokenizer(tmp_path)
    (tmp_path / "tokenizer.json").write_text('{"type": "wordpiece"}', encoding="utf-8")
    with pytest.raises(TokenizerError, match="'wordpiece'"):
        load_tokenizer(tmp_path)


def test_decode_rejects_ids_outside_vocabulary(tokenizers: dict[str, Tokenizer]) -> None:
    for tok in tokenizers.values():
        with pytest.raises(TokenizerError, match=str(tok.vocab_size)):
            tok.decode([3, tok.vocab_size])


def test_strip_after_eos() -> None:
    assert strip_after_eos([5, 6, 2, 7, 2]) == [5, 6]
    assert strip_after_eos([5, 6]) == [5, 6]


@pytest.mark.parametrize("ipa, symbols", [
    ("tʃˈɜːtʃ", ["tʃ", "ˈ", "ɜː", "tʃ"]),
    ("dʒˈʌdʒ", ["dʒ", "ˈ", "ʌ", "dʒ"]),
    ("t͡sa", ["t͡s", "a"]),  # tie bar joins both sides
    ("ɑ̃ kʰæt", ["ɑ̃", " ", "kʰ", "æ", "t"]),  # nasalisation and aspiration stay on their phoneme
    ("həlˈəʊ", ["h", "ə", "l", "ˈ", "ə", "ʊ"]),  # diphthongs stay two vowels; stress is its own symbol
    ("nˈiɲo", ["n", "ˈ", "i", "ɲ", "o"]),
])
def test_split_phonemes(ipa: str, symbols: list[str]) -> None:
    assert split_phonemes(ipa) == symbols
    assert "".join(split_phonemes(ipa)) == ipa


def test_phoneme_tokenizer_on_espeak_output(lj_phonemes: list[str], tokenizers) -> None:
    tok = tokenizers["phoneme"]
    assert "tʃ" in tok.tokens or "dʒ" in tok.tokens  # affricates are single symbols
    assert "t" in tok.tokens and "ʃ" in tok.tokens
    assert " " in tok.tokens and "ˈ" in tok.tokens
    assert "ː" not in tok.tokens and any(t.endswith("ː") for t in tok.tokens)  # length marks never alone
