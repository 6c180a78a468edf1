"""Vocal-tract length normalisation (VTLN) of a new speaker by a speed warp chosen on the model's confidence.

A speaker with a shorter or longer vocal tract than the training speakers has all his formants higher or
lower. Classical VTLN (Lee & Rose 1996) warps the frequency axis by one factor per speaker, the factor under
which the model likes the speaker's audio best. Here the warp is a speed change of the waveform
(:func:`speechseq.augment.speed_perturb`: every frequency times ``f``, duration divided by ``f``), so it
works with any model and front end, and the models have seen such warps in training (speed perturbation).
The choice needs the speaker's recordings and no transcript: for each factor of a grid, every recording is
warped and scored by ``score`` (:func:`closed_set_confidence`: the attention decoder's log-probability of
its best candidate; :func:`transcript_confidence`: of its own greedy transcript, per token, for open
vocabularies), and the factor with the highest mean wins. Ties go to the factor closest to 1.

Example (a scorer that likes 200 Hz tones: a speaker at 220 Hz is slowed by 0.9):
    >>> import numpy as np
    >>> t = np.arange(8000) / 8000
    >>> waves = [np.sin(2 * np.pi * 220 * t).astype(np.float32)]
    >>> def closeness_to_200_hz(warped):
    ...     return np.array([-abs(np.abs(np.fft.rfft(w)).argmax() * 8000 / len(w) - 200) for w in warped])
    >>> choice = choose_warp(waves, 8000, [0.85, 0.9, 0.95, 1.0, 1.05], closeness_to_200_hz)
    >>> choice.factor
    0.9
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import numpy as np

from speechseq.augment import speed_perturb
from speechseq.errors import ConfigError

# The training's speed perturbation factors and 1: warps the models have heard.
DEFAULT_FACTORS = (0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15)

Scorer = Callable[[Sequence[np.ndarray]], np.ndarray]


@dataclasses.dataclass(frozen=True)
class WarpChoice:
    """The chosen warp of one speaker.

    Attributes:
        factor: the speed factor to apply to every recording of the speaker.
        scores: factor -> mean score of the speaker's recordings warped by it (higher is better).
    """

    factor: float
    scores: dict[float, float]


def check_factors(factors: Sequence[float]) -> list[float]:
    """The grid as floats; a clear error for an empty grid or a factor that is not positive."""
    grid = [float(f) for f in factors]
    if not grid or any(not f > 0 for f in grid):
        raise ConfigError(f"warp factors must be a non-empty list of positive speed factors, got {list(factors)}")
    return grid


def pick(scores: dict[float, float], min_gain: float = 0.0) -> float:
    """The factor with the highest score; of equal scores, the one closest to 1 (no warp).

    ``min_gain`` is a guard: the best factor is taken only if its score exceeds that of 1 (which the grid
    must then hold) by at least this much, else 1. A model that is about as sure of itself under several
    warps picks among them by noise, and such warps harmed more folds than they helped (FSDD, stop 27).

    >>> pick({0.9: -1.0, 1.0: -1.0, 1.1: -2.0}), pick({0.9: -0.5, 1.0: -1.0})
    (1.0, 0.9)
    >>> pick({0.9: -0.99, 1.0: -1.0}, min_gain=0.02), pick({0.9: -0.97, 1.0: -1.0}, min_gain=0.02)
    (1.0, 0.9)
    """
    best = max(scores, key=lambda f: (scores[f], -abs(f - 1.0)))
    if min_gain > 0:
        if 1.0 not in scores:
            raise ConfigError(f"a warp guard (min_gain={min_gain}) needs the factor 1.0 in the grid {sorted(scores)}")
        if scores[best] - scores[1.0] < min_gain:
            return 1.0
    return best


def choose_warp(waves: Sequence[np.ndarray], sample_rate: int, factors: Sequence[float], score: Scorer,
                min_gain: float = 0.0) -> WarpChoice:
    """Choose one speaker's warp.

    Args:
        waves: the speaker's recordings, each (S,) float at ``sample_rate``.
        sample_rate: their rate in Hz.
        factors: the grid of speed factors to try.
        score: warped recordings -> (N,) per-recording scores, higher where the model fits better.
        min_gain: warp only if the best factor's mean score beats 1's by this much (:func:`pick`).

    Returns:
        The factor whose warped recordings score highest on average, and every factor's mean score.

    Raises:
        ConfigError: no recordings, or a bad grid.
    """
    grid = check_factors(factors)
    if len(waves) == 0:
        raise ConfigError("choose_warp needs at least one recording of the speaker")
    scores = {}
    for factor in grid:
        values = np.asarray(score([speed_perturb(w, sample_rate, factor) for w in waves]), dtype=np.float64)
        if values.shape != (len(waves),):
            raise ConfigError(f"the scorer returned shape {values.shape} for {len(waves)} recordings")
        scores[factor] = float(values.mean())
    return WarpChoice(pick(scores, min_gain), scores)


def closed_set_confidence(model: Any, vocabulary: Sequence[str], batch_size: int = 32) -> Scorer:
    """A scorer for :func:`choose_warp`: each recording's attention-decoder log-probability of its best
    word of ``vocabulary`` (closed-set decoding, CTC weight 0; CTC's score depends on the number of frames,
    which the warp changes). ``model`` is an attention model (LAS); a CTC-only model has no decoder score
    (closed-set decoding says so)."""
    from speechseq.inference import default_options, transcribe

    if not vocabulary:
        raise ConfigError("closed_set_confidence needs a non-empty vocabulary")
    options = dataclasses.replace(default_options(model), beam_size=len(vocabulary), nbest=1, ctc_weight=0.0,
                                  length_bonus=0.0)

    def score(waves: Sequence[np.ndarray]) -> np.ndarray:
        results = transcribe(model, list(waves), options, batch_size=batch_size, vocabulary=vocabulary)
        return np.array([r.nbest[0].scores["decoder"] for r in results])

    return score


def transcript_confidence(model: Any, batch_size: int = 16) -> Scorer:
    """A scorer for :func:`choose_warp` without a candidate list: each recording's attention-decoder
    log-probability of its own greedy transcript per token (``<eos>`` included). Per token, so that a warp
    under which the model drops words does not look surer for having fewer tokens to pay for."""
    from speechseq.inference import default_options, transcribe

    options = default_options(model)

    def score(waves: Sequence[np.ndarray]) -> np.ndarray:
        results = transcribe(model, list(waves), options, batch_size=batch_size)
        return np.array([r.nbest[0].scores["decoder"] / (len(r.tokens) + 1) for r in results])

    return score
