"""Byte-pair-encoding tokenizer on sentencepiece, with speechseq's special ids.

sentencepiece is trained so that its own ids already follow the convention (0 ``<blank>`` as its pad
piece, 1 ``<unk>``, 2 ``<sos/eos>`` as its bos piece, no separate eos): no id remapping is needed. Training
streams the texts in and the model out through memory (``sentence_iterator`` / ``model_writer``), and the
tokenizer keeps the serialized model proto, so neither training nor save/load needs a temporary file.
Normalisation inside sentencepiece is off ("identity"): text is normalised by ``speechseq.text.normalize``
beforehand, and ``decode(encode(text)) == text`` must hold exactly for normalised text.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Iterable

import sentencepiece as spm

from speechseq.errors import UnknownTokenError
from speechseq.text.tokenizers import (
    BLANK_ID, NUM_SPECIALS, SOS_EOS_ID, SPECIAL_TOKENS, UNK_ID, Tokenizer, TokenizerError, register_tokenizer,
)

MODEL_NAME = "tokenizer.model"


@register_tokenizer
class BPETokenizer(Tokenizer):
    """Subword pieces learnt by sentencepiece BPE; "▁" marks the start of a word.

    >>> tok = BPETokenizer.train(["the cat sat on the mat", "the hat"] * 10, vocab_size=30)
    >>> tok.tokenize("the cat")
    ['▁the', '▁cat']
    >>> tok.decode(tok.encode("the cat")), tok.tokens[:3]
    ('the cat', ['<blank>', '<unk>', '<sos/eos>'])
    """

    type_name = "bpe"

    def __init__(self, model_proto: bytes) -> None:
        self._proto = bytes(model_proto)
        self._sp = spm.SentencePieceProcessor(model_proto=self._proto)
        specials = tuple(self._sp.id_to_piece(i) for i in range(NUM_SPECIALS))
        if specials != SPECIAL_TOKENS or self._sp.unk_id() != UNK_ID:
            raise TokenizerError(f"sentencepiece model has specials {specials}, expected {SPECIAL_TOKENS}")
        self._tokens = [self._sp.id_to_piece(i) for i in range(self._sp.get_piece_size())]

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int,
        *,
        model_type: str = "bpe",
        character_coverage: float = 1.0,
    ) -> "BPETokenizer":
        """Learn pieces from ``texts`` (normalised transcripts).

        Args:
            vocab_size: the most ids, specials included. On a corpus too small to fill it, fewer are
                learnt (sentencepiece's soft limit) rather than failing.
            model_type: "bpe" or "unigram".
            character_coverage: 1.0 keeps every character seen, so that no training text is unencodable.
        """
        texts = [t for t in texts if t.strip()]
        if not texts:
            raise TokenizerError("cannot train a BPE tokenizer on no text")
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts), model_writer=model, vocab_size=vocab_size, model_type=model_type,
            character_coverage=character_coverage, normalization_rule_name="identity",
            pad_id=BLANK_ID, pad_piece=SPECIAL_TOKENS[BLANK_ID], unk_id=UNK_ID, unk_piece=SPECIAL_TOKENS[UNK_ID],
            bos_id=SOS_EOS_ID, bos_piece=SPECIAL_TOKENS[SOS_EOS_ID], eos_id=-1,
            hard_vocab_limit=False, num_threads=1, minloglevel=2,
        )
        return cls(model.getvalue())

    @property
    def tokens(self) -> list[str]:
        return list(self._tokens)

    @property
    def model_proto(self) -> bytes:
        """The serialized sentencepiece model."""
        return self._proto

    def tokenize(self, text: str) -> list[str]:
        return self._sp.encode(text, out_type=str)

    def encode(self, text: str) -> list[int]:
        ids = self._sp.encode(text)
        if UNK_ID in ids:
            # Characters sentencepiece has no piece for; "▁" stands for the space and is never unknown.
            unknown = sorted({ch for ch in text if not ch.isspace() and self._sp.piece_to_id(ch) == UNK_ID})
            if not unknown:  # not expected with character_coverage=1.0: name the pieces instead
                unknown = [p for p, i in zip(self.tokenize(text), ids) if i == UNK_ID]
            raise UnknownTokenError(unknown, text)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        return self._sp.decode([i for i in self._check_ids(ids) if i >= NUM_SPECIALS])

    def _config(self, folder: Path) -> dict[str, Any]:
        (folder / MODEL_NAME).write_bytes(self._proto)
        return {"model": MODEL_NAME}

    @classmethod
    def _from_config(cls, config: dict[str, Any], folder: Path) -> "BPETokenizer":
        path = folder / config.get("model", MODEL_NAME)
        if not path.is_file():
            raise TokenizerError(f"{path}: sentencepiece model named in {folder / 'tokenizer.json'} is missing")
        return cls(path.read_bytes())
