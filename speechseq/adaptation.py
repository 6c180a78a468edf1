"""Unsupervised adaptation of an ASR model to new audio: self-training on its own confident transcripts.

A model trained on a few speakers meets a new one. Without any transcript of the new speaker, it can still
learn their voice: transcribe their recordings, keep the transcripts it is confident of, and fine-tune a copy
of itself on them for a few updates (self-training, pseudo-labelling; Kahn et al. 2020 for ASR; used for
speaker adaptation as in Kaldi's two-pass unsupervised fMLLR). With a closed vocabulary (spoken digits,
commands) the pseudo-labels come from closed-set decoding and the confidence is the posterior of the best
candidate over all candidates; otherwise it is the posterior of the best of the N-best list.

Measured on FSDD's held-out speakers (``tasks/las/fsdd_adapt.py``, ``tasks/las/fsdd_experiments.md``): each half of
a new speaker's recordings is scored by a model adapted on the other half only.

Example (an untrained model: the mechanics, not the figures):
    >>> import numpy as np
    >>> from speechseq.models.ctc import CTCConfig, CTCModel
    >>> from speechseq.nn.encoders import ConvBiLSTMEncoderConfig
    >>> from speechseq.features import FeatureConfig
    >>> from speechseq.text import CharTokenizer
    >>> import dataclasses
    >>> tok = CharTokenizer.from_texts(["yes", "no"])
    >>> enc = ConvBiLSTMEncoderConfig(input_dim=40, conv_channels=8, hidden_size=8, num_layers=1)
    >>> model = CTCModel(CTCConfig(vocab_size=tok.vocab_size, encoder=enc),
    ...                  dataclasses.replace(FeatureConfig.asr_16k(), n_mels=40), tok)
    >>> waves = [np.random.default_rng(i).standard_normal(8000).astype(np.float32) * 0.1 for i in range(3)]
    >>> adapted, report = self_train(model, waves, SelfTrainingConfig(steps=2, batch_size=2, min_confidence=0.0),
    ...                              vocabulary=["yes", "no"])
    >>> len(report.labels), len(report.kept), len(report.losses), adapted is model
    (3, 3, 2, False)
"""

from __future__ import annotations

import copy
import dataclasses
import math
import random
from typing import Any, Sequence

import numpy as np
import torch

from speechseq.decoding import DecodingOptions
from speechseq.errors import ConfigError, SpeechSeqError


@dataclasses.dataclass(frozen=True)
class SelfTrainingConfig:
    """How a copy of the model is fine-tuned on its own transcripts.

    Attributes:
        steps: updates (each on ``batch_size`` pseudo-labelled recordings drawn without replacement).
        lr: AdamW learning rate (constant: a few hundred updates from a trained model).
        batch_size: recordings per update (fewer when fewer are kept).
        min_confidence: keep a recording only when its transcript's posterior is at least this.
        clip_grad_norm: gradient norm clipping.
        weight_decay: AdamW weight decay.
        seed: seeds the batch draws and dropout, so that a run is reproducible.
    """

    steps: int = 150
    lr: float = 3e-4
    batch_size: int = 32
    min_confidence: float = 0.8
    clip_grad_norm: float = 5.0
    weight_decay: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [
            (self.steps >= 1, "steps must be >= 1"),
            (self.lr > 0, "lr must be > 0"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (0.0 <= self.min_confidence <= 1.0, "min_confidence must be in [0, 1]"),
            (self.clip_grad_norm > 0, "clip_grad_norm must be > 0"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                key = message.split()[0]
                raise ConfigError(f"SelfTrainingConfig.{message}, got {getattr(self, key)!r}")


@dataclasses.dataclass
class PseudoLabel:
    """The model's transcript of one recording and how sure it is of it (posterior over its N-best)."""

    text: str
    confidence: float


@dataclasses.dataclass
class SelfTrainingReport:
    """What a self-training run did.

    Attributes:
        labels: one pseudo-label per input recording, from the model before adaptation.
        kept: indices of the recordings trained on (confidence ≥ ``min_confidence``).
        losses: training loss of every update.
    """

    labels: list[PseudoLabel]
    kept: list[int]
    losses: list[float]


def confidence(scores: Sequence[float]) -> float:
    """Posterior of the best of competing hypotheses from their log-scores (softmax over the list).

    >>> round(confidence([-1.0, -1.0]), 3), round(confidence([0.0, -10.0]), 3)
    (0.5, 1.0)
    """
    values = torch.tensor([s for s in scores if math.isfinite(s)] or [0.0], dtype=torch.float64)
    return float(values.softmax(0).max())


def pseudo_label(
    model: Any,
    waves: Sequence[np.ndarray],
    options: DecodingOptions | None = None,
    vocabulary: Sequence[str] | None = None,
    batch_size: int = 32,
    lm: Any = None,
) -> list[PseudoLabel]:
    """Transcripts and confidences of ``waves`` (1-D arrays at the model's rate).

    The confidence is the posterior of the best hypothesis among the ``options.nbest`` returned (all the
    vocabulary's candidates in closed-set decoding); with ``nbest=1`` it is 1 and keeps everything. ``lm``
    is fused with weight ``options.lm_weight`` (the better the transcripts, the more the adaptation learns).
    """
    from speechseq.inference import transcribe

    if options is None:
        count = len(vocabulary) if vocabulary else 5
        options = DecodingOptions(beam_size=count, nbest=count, ctc_weight=0.3 if _has_ctc(model) else 0.0)
    results = transcribe(model, list(waves), options, lm=lm, batch_size=batch_size, vocabulary=vocabulary)
    return [PseudoLabel(r.text, confidence([n.score for n in r.nbest])) for r in results]


def _has_ctc(model: Any) -> bool:
    return getattr(model, "ctc_head", None) is not None


def self_train(
    model: Any,
    waves: Sequence[np.ndarray],
    config: SelfTrainingConfig | None = None,
    options: DecodingOptions | None = None,
    vocabulary: Sequence[str] | None = None,
    progress: bool = False,
    lm: Any = None,
) -> tuple[Any, SelfTrainingReport]:
    """Fine-tune a copy of ``model`` on its own confident transcripts of ``waves``.

    Args:
        model: a speechseq ASR model (LAS or CTC) whose ``forward(wave, lengths, tokens, token_lengths)``
            returns a ``loss``; it is not changed.
        waves: the new speaker's (or domain's) recordings, 1-D float arrays at the model's sample rate.
        config: the fine-tuning; ``None`` is :class:`SelfTrainingConfig`'s defaults.
        options: how the pseudo-labels are decoded (see :func:`pseudo_label`).
        vocabulary: closed-set decoding over these transcripts (recommended where it applies).
        progress: a tqdm bar over the updates.
        lm: a language model fused into the pseudo-labelling search (weight ``options.lm_weight``).

    Returns:
        ``(adapted, report)``: the adapted copy, in eval mode, and what was kept and trained.

    Raises:
        SpeechSeqError: no recording reaches ``min_confidence`` (nothing to learn from; the model would
            come back unchanged, which a caller should know).
    """
    from tqdm.auto import tqdm

    from speechseq.data.collate import pad_tokens, pad_waves

    config = config or SelfTrainingConfig()
    if not waves:
        raise ConfigError("self_train needs at least one recording")
    labels = pseudo_label(model, waves, options, vocabulary, batch_size=config.batch_size, lm=lm)
    kept = [i for i, label in enumerate(labels) if label.confidence >= config.min_confidence and label.text]
    if not kept:
        best = max(label.confidence for label in labels)
        raise SpeechSeqError(
            f"self_train: no transcript reaches min_confidence {config.min_confidence} (best {best:.3f}); "
            "lower it or give more recordings"
        )
    adapted = copy.deepcopy(model)
    device = next(adapted.parameters()).device
    optimizer = torch.optim.AdamW(adapted.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    draw = random.Random(config.seed)
    tokens_of = {i: adapted.tokenizer.encode(labels[i].text) for i in kept}
    losses = []
    with torch.random.fork_rng(devices=[]):  # the caller's RNG is left as it was
        torch.manual_seed(config.seed)
        adapted.train()
        for _ in tqdm(range(config.steps), desc="self-training", disable=not progress):
            batch = draw.sample(kept, min(config.batch_size, len(kept)))
            wave, wave_lengths = pad_waves([np.asarray(waves[i], dtype=np.float32) for i in batch])
            tokens, token_lengths = pad_tokens([tokens_of[i] for i in batch])
            out = adapted(wave.to(device), wave_lengths.to(device), tokens.to(device), token_lengths.to(device))
            optimizer.zero_grad()
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(adapted.parameters(), config.clip_grad_norm)
            optimizer.step()
            losses.append(float(out.loss.detach()))
    return adapted.eval(), SelfTrainingReport(labels, kept, losses)
