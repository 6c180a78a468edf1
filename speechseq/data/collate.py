"""Turn dataset rows into padded tensors, decoding audio on the fly and skipping bad rows.

Rows come from an ASR-view dataset (``speechseq.data.readers``): ``id``, ``audio`` (an
``Audio(decode=False)`` dict or a path), ``text``. Audio is decoded here with ``speechseq.audio.load_audio``
(soundfile + soxr) because ``datasets`` cannot decode audio on this stack.

Bad rows never raise mid-epoch: a row whose audio cannot be decoded (missing, empty, corrupt file) or
whose text cannot be encoded (unknown characters, empty transcript) is dropped from the batch and named in
``skipped``; each failing file is logged once per collator (per DataLoader worker). When every row of a
batch fails, the batch is *empty*: ``ids == []`` and all tensors have batch size 0 (``is_empty_batch``).
The training loop skips it; under DDP it must skip it on every rank or none (a one-sided skip leaves the
other ranks waiting in the gradient all-reduce), e.g. by running a zero-loss step instead.

Augmentation randomness (reproducible resume): the generator for utterance ``id`` in epoch ``e`` is
``numpy.random.default_rng([seed, e, blake2b_64(id)])``: it depends only on (seed, epoch, id), never on
batch composition, worker count or how many batches ran before, so a resumed run augments every
utterance exactly as the uninterrupted run would. ``blake2b`` replaces ``hash(str)``, which Python salts
per process. The epoch is set with ``set_epoch``; it reaches DataLoader workers because they copy the
collator when an epoch's iterator is created, so do not combine augmentation with
``persistent_workers=True`` (those copies would keep the first epoch).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np
import soundfile as sf
import torch
from torch.nn.utils.rnn import pad_sequence

from speechseq.audio import load_audio
from speechseq.errors import SpeechSeqError

logger = logging.getLogger(__name__)

Batch = dict[str, Any]


class Tokenizer(Protocol):
    """What the collator needs from a tokenizer (``speechseq.text``)."""

    def encode(self, text: str) -> list[int]: ...


Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def utterance_rng(seed: int, epoch: int, utt_id: str) -> np.random.Generator:
    """The augmentation generator of one utterance in one epoch (see the module docstring).

    >>> a = utterance_rng(0, 3, "7_jackson_32").random()
    >>> a == utterance_rng(0, 3, "7_jackson_32").random() != utterance_rng(0, 4, "7_jackson_32").random()
    True
    """
    digest = hashlib.blake2b(utt_id.encode("utf-8"), digest_size=8).digest()
    return np.random.default_rng([int(seed), int(epoch), int.from_bytes(digest, "little")])


def pad_waves(waves: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad 1-D float waveforms into ``(wave (B,S) float32, lengths (B,) long)``; B may be 0."""
    lengths = torch.tensor([len(w) for w in waves], dtype=torch.long)
    if not waves:  # pad_sequence refuses an empty list; the empty batch is (0, 0)
        return torch.zeros(0, 0, dtype=torch.float32), lengths
    tensors = [torch.from_numpy(np.asarray(w, dtype=np.float32)) for w in waves]
    return pad_sequence(tensors, batch_first=True, padding_value=0.0), lengths


def pad_tokens(seqs: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad id lists into ``(tokens (B,L) long, lengths (B,) long)``; pad is ``<blank>`` = 0; B may be 0."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    if not seqs:
        return torch.zeros(0, 0, dtype=torch.long), lengths
    tensors = [torch.tensor(list(s), dtype=torch.long) for s in seqs]
    return pad_sequence(tensors, batch_first=True, padding_value=pad_id), lengths


def is_empty_batch(batch: Mapping[str, Any]) -> bool:
    """True when every row of the batch was skipped (the loop should not run a step on it)."""
    return len(batch["ids"]) == 0


def _source_name(audio: Any) -> str:
    """The file name to show for an audio value (path string or Audio(decode=False) dict)."""
    if isinstance(audio, Mapping):
        return str(audio.get("path") or "<bytes>")
    return str(audio)


@dataclass
class _Decoded:
    """One row that made it through decoding and encoding."""

    utt_id: str
    wave: np.ndarray
    tokens: list[int]
    speaker: str


class SpeechCollator:
    """Collate function for ``torch.utils.data.DataLoader`` over ASR-view rows.

    Args:
        tokenizer: object with ``encode(text) -> list[int]`` (raising ``UnknownTokenError``); ``None``
            for audio-only training (then ``tokens`` is ``(B, 0)``).
        sample_rate: rate every wave is resampled to, in Hz.
        augment: optional ``augment(wave, rng) -> wave`` (e.g. ``speechseq.augment.WaveAugment``).
        seed: base seed of the augmentation generators.
        audio_key / text_key / id_key / speaker_key: column names (TTS and translation use other columns).

    Returns (``__call__``): a dict ``ids: list[str]``, ``wave: (B,S) float32`` zero-padded,
    ``wave_lengths: (B,) long``, ``tokens: (B,L) long`` padded with 0, ``token_lengths: (B,) long``,
    ``speakers: list[str]`` (the rows' ``speaker_key`` column, "" where absent),
    ``skipped: list[tuple[str, str]]`` of (id, reason) for the rows dropped.

    Example:
        >>> class Digits:
        ...     def encode(self, text): return [3 + int(c) for c in text]
        >>> collate = SpeechCollator(Digits(), sample_rate=8000)
        >>> batch = collate([{"id": "a", "audio": "/missing.wav", "text": "12"}])
        >>> batch["skipped"][0][0], is_empty_batch(batch), tuple(batch["wave"].shape)
        ('a', True, (0, 0))
    """

    def __init__(
        self,
        tokenizer: Tokenizer | None,
        sample_rate: int,
        augment: Augment | None = None,
        seed: int = 0,
        audio_key: str = "audio",
        text_key: str = "text",
        id_key: str = "id",
        speaker_key: str = "speaker",
    ) -> None:
        self.tokenizer = tokenizer
        self.sample_rate = int(sample_rate)
        self.augment = augment
        self.seed = int(seed)
        self.audio_key = audio_key
        self.text_key = text_key
        self.id_key = id_key
        self.speaker_key = speaker_key
        self.epoch = 0
        # Files already logged: a broken file is reported once, not once per epoch.
        self._logged: set[str] = set()

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation stream of ``epoch`` (call it with the sampler's ``set_epoch``)."""
        self.epoch = int(epoch)

    def _encode(self, text: Any) -> list[int]:
        """Token ids of a transcript; raises ``SpeechSeqError`` subclasses on bad text."""
        if self.tokenizer is None:
            return []
        if not isinstance(text, str) or not text.strip():
            raise _EmptyText("empty transcript")
        ids = list(self.tokenizer.encode(text))
        if not ids:
            raise _EmptyText("transcript encodes to no tokens")
        return ids

    def _decode_row(self, row: Mapping[str, Any]) -> _Decoded:
        """Decode, augment and tokenise one row; raises on any per-row problem."""
        utt_id = str(row[self.id_key])
        tokens = self._encode(row.get(self.text_key))
        wave = load_audio(row[self.audio_key], self.sample_rate)
        if self.augment is not None:
            wave = np.asarray(
                self.augment(wave, utterance_rng(self.seed, self.epoch, utt_id)), dtype=np.float32
            )
        return _Decoded(utt_id, wave, tokens, str(row.get(self.speaker_key) or ""))

    def _report(self, row: Mapping[str, Any], err: Exception) -> tuple[str, str]:
        utt_id = str(row.get(self.id_key, "?"))
        name = _source_name(row.get(self.audio_key))
        reason = f"{name}: {err}" if name not in str(err) else str(err)
        if name not in self._logged:
            self._logged.add(name)
            logger.warning("skipping utterance %s (%s)", utt_id, reason)
        return utt_id, reason

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> Batch:
        """Collate ``rows`` into padded tensors (shapes in the class docstring)."""
        good: list[_Decoded] = []
        skipped: list[tuple[str, str]] = []
        for row in rows:
            try:
                good.append(self._decode_row(row))
            # SpeechSeqError covers AudioError / UnknownTokenError; OSError and soundfile's error
            # cover a file that vanished or broke in a way load_audio did not anticipate.
            except (SpeechSeqError, OSError, sf.SoundFileError) as err:
                skipped.append(self._report(row, err))
        wave, wave_lengths = pad_waves([d.wave for d in good])
        tokens, token_lengths = pad_tokens([d.tokens for d in good])
        return {
            "ids": [d.utt_id for d in good],
            "wave": wave,
            "wave_lengths": wave_lengths,
            "tokens": tokens,
            "token_lengths": token_lengths,
            "speakers": [d.speaker for d in good],
            "skipped": skipped,
        }


class _EmptyText(SpeechSeqError):
    """A transcript with nothing to learn from (internal: reported in ``skipped``)."""
