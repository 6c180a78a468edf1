"""Test-time speaker warping: pick the pitch/formant shift of a new speaker's audio by the model's own scores.

Vocal tract length normalisation (VTLN) warps each speaker's frequency axis by the factor under which the
acoustic model likes their speech best, chosen by likelihood, without transcripts. This does the same with a
recogniser trained end to end: every candidate shift (``librosa``'s pitch shift, which moves the formants
with the pitch and keeps the duration, so scores of different shifts compare fairly) is applied to the
speaker's recordings, each is transcribed greedily, and the shift whose hypotheses get the highest mean
joint CTC/attention log-score wins. On FSDD's held-out speakers it moves george's WER from 20 to 13 %
and leaves a speaker the model already fits at 0 (``tasks/las/README.md``).

Example (the shift scores of a tiny untrained model; every candidate is tried, the best is reported):
    >>> import numpy as np
    >>> from speechseq.models.las import LASConfig, LASModel
    >>> from speechseq.text import CharTokenizer
    >>> from speechseq.nn.encoders import PyramidBiLSTMEncoderConfig
    >>> tok = CharTokenizer.from_texts(["one", "two"])
    >>> cfg = LASConfig(vocab_size=tok.vocab_size, listener=PyramidBiLSTMEncoderConfig(hidden_size=8))
    >>> model = LASModel(cfg, tokenizer=tok).eval()
    >>> waves = [np.random.default_rng(i).standard_normal(4000).astype(np.float32) * 0.1 for i in range(2)]
    >>> choice = choose_shift(model, waves, 8000, shifts=(-1.0, 0.0, 1.0))
    >>> sorted(choice.mean_scores) == [-1.0, 0.0, 1.0] and choice.shift == max(choice.mean_scores, key=choice.mean_scores.get)
    True
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np
import torch

from speechseq.audio import resample
from speechseq.augment import pitch_shift


def transcript_scores(
    model: Any, waves: Sequence[np.ndarray], texts: Sequence[str], sample_rate: int, batch_size: int = 32,
    per_token: bool = False,
) -> np.ndarray:
    """Joint CTC/attention log-score of each text given its recording (a LAS model's own weighting).

    The score is ``−utterance_loss × (tokens + 1)``: the model's combined per-token loss, un-averaged over
    the text's tokens and its end of sentence, with label smoothing off.

    Args:
        model: a :class:`speechseq.models.las.LASModel` with a tokenizer.
        waves: N mono recordings at ``sample_rate``.
        texts: N transcripts to score.
        sample_rate: the recordings' rate (resampled to the model's when it differs).
        batch_size: recordings per forward pass.

    Returns:
        (N,) float64 log-scores (higher is likelier).
    """
    from speechseq.data.collate import pad_waves

    rate = model.feature_config.sample_rate
    smoothing, model.config.label_smoothing = model.config.label_smoothing, 0.0
    scores = []
    try:
        with torch.no_grad():
            for start in range(0, len(waves), batch_size):
                chunk = [np.asarray(w, dtype=np.float32) for w in waves[start:start + batch_size]]
                if sample_rate != rate:
                    chunk = [resample(w, sample_rate, rate) for w in chunk]
                tokens = [torch.tensor(model.tokenizer.encode(t), dtype=torch.long) for t in texts[start:start + batch_size]]
                token_lengths = torch.tensor([len(t) for t in tokens])
                padded = torch.nn.utils.rnn.pad_sequence(tokens, batch_first=True) if max(token_lengths) > 0 else \
                    torch.zeros(len(tokens), 1, dtype=torch.long)
                wave, lengths = pad_waves(chunk)
                out = model(wave, lengths, padded, token_lengths)
                scale = torch.ones(len(tokens)) if per_token else (token_lengths + 1).float()
                scores.append((-out.utterance_loss * scale).double().numpy())
    finally:
        model.config.label_smoothing = smoothing
    return np.concatenate(scores) if scores else np.zeros(0)


@dataclasses.dataclass
class ShiftChoice:
    """Result of :func:`choose_shift`.

    Attributes:
        shift: the chosen shift in semitones.
        mean_scores: shift -> mean log-score of the greedy hypotheses over the recordings.
        transcripts: shift -> greedy transcripts of the shifted recordings.
    """

    shift: float
    mean_scores: dict[float, float]
    transcripts: dict[float, list[str]]
    token_scores: dict[float, float] = dataclasses.field(default_factory=dict)


def choose_shift(
    model: Any,
    waves: Sequence[np.ndarray],
    sample_rate: int,
    shifts: Sequence[float] = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0),
    batch_size: int = 32,
) -> ShiftChoice:
    """The pitch shift (semitones) under which ``model`` scores one speaker's recordings best, no transcripts.

    Args:
        model: a LAS model (greedy ``transcribe`` and :func:`transcript_scores`).
        waves: recordings of one speaker at ``sample_rate`` (a few are enough; see ``tasks/las/README.md``).
        sample_rate: their rate.
        shifts: candidate shifts in semitones (0 = the recordings as they are).
        batch_size: recordings per forward pass.

    Returns:
        The best shift, every candidate's mean score and its transcripts.
    """
    mean_scores, transcripts, token_scores = {}, {}, {}
    for shift in shifts:
        shifted = [pitch_shift(w, sample_rate, float(shift)) for w in waves]
        with torch.no_grad():
            texts = [t for start in range(0, len(shifted), batch_size)
                     for t in model.transcribe(shifted[start:start + batch_size], sample_rate=sample_rate)]
        transcripts[float(shift)] = texts
        mean_scores[float(shift)] = float(transcript_scores(model, shifted, texts, sample_rate, batch_size).mean())
        token_scores[float(shift)] = float(
            transcript_scores(model, shifted, texts, sample_rate, batch_size, per_token=True).mean())
    best = max(mean_scores, key=mean_scores.get)
    return ShiftChoice(best, mean_scores, transcripts, token_scores)
