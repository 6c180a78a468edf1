"""Closed-set ensembles of several ASR models, each optionally warped to its own VTLN factor.

For a closed vocabulary (digits, commands), each model scores every allowed phrase of every recording; the
scores are summed over the models (a product of experts) and the best sum wins. With ``factors`` (VTLN,
:mod:`speechseq.warp`), the recordings are one speaker's: each model first picks its own speed factor f*, the
one under which its attention decoder is surest of its best phrase on average, and scores the recordings
warped by it. Models trained on different data or seeds like different warps of the same voice, which is why
each picks its own (on FSDD, three fold models warped each to its own f* gave 7.4 / 7.8 % WER on two triples of
seeds where one model gave 8.0 / 8.3 %; tasks/las/fsdd_experiments.md).

    >>> combine({"decoder": np.array([[-1.0, -3.0]]), "ctc": np.array([[-5.0, -1.0]])}, 0.25)
    array([[-2. , -2.5]])
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np

from speechseq.augment import speed_perturb
from speechseq.errors import ConfigError
from speechseq.warp import check_factors, pick

Table = dict[str, np.ndarray]  # scorer ("decoder", "ctc") -> (N, V) log-scores of the V phrases


@dataclasses.dataclass(frozen=True)
class EnsembleResult:
    """What :func:`ensemble_closed_set` decided.

    Attributes:
        texts: the best phrase of each recording, (N,).
        scores: (N, V) summed scores of every phrase (columns in vocabulary order).
        factors: each model's speed factor (1.0 for every model without VTLN).
    """

    texts: list[str]
    scores: np.ndarray
    factors: list[float]


def closed_set_table(model: Any, waves: Sequence[np.ndarray], vocabulary: Sequence[str], batch_size: int = 32) -> Table:
    """Each scorer's unweighted log-score of every phrase of ``vocabulary`` for each recording.

    Args:
        model: a saved ASR model (LAS: ``"decoder"`` and ``"ctc"``; a CTC model: ``"ctc"`` only).
        waves: the recordings, each (S,) float at the model's sample rate.
        vocabulary: the V allowed phrases.

    Returns:
        scorer -> (N, V) array, columns in ``vocabulary`` order.
    """
    from speechseq.inference import default_options, is_attention_model, transcribe

    # Both weights non-zero, so that both scorers run; the parts come back unweighted.
    options = dataclasses.replace(default_options(model), beam_size=len(vocabulary), nbest=len(vocabulary),
                                  ctc_weight=0.5 if is_attention_model(model) else 1.0)
    results = transcribe(model, list(waves), options, batch_size=batch_size, vocabulary=vocabulary)
    by_phrase = [{entry.text: entry.scores for entry in result.nbest} for result in results]
    names = list(by_phrase[0][vocabulary[0]])
    return {name: np.array([[scores[p][name] for p in vocabulary] for scores in by_phrase]) for name in names}


def combine(parts: Table, ctc_weight: float) -> np.ndarray:
    """``(1−λ)·decoder + λ·ctc`` of a :func:`closed_set_table` (a CTC model's table is its CTC score).

    A weight of 0 or 1 leaves the other scorer out altogether: a phrase CTC cannot emit in the encoder's
    frames scores −inf there, and 0·(−inf) would be NaN, which ``argmax`` takes for the best phrase.

    >>> combine({"decoder": np.array([[-1.0, -3.0]]), "ctc": np.array([[-np.inf, -1.0]])}, 0.0)
    array([[-1., -3.]])
    """
    if "decoder" not in parts or ctc_weight >= 1.0:
        return parts["ctc"]
    if ctc_weight <= 0.0:
        return parts["decoder"]
    return (1.0 - ctc_weight) * parts["decoder"] + ctc_weight * parts["ctc"]


def confidence(parts: Table, rows: Any = slice(None)) -> float:
    """The VTLN criterion: mean over recordings (``rows`` of the table) of the decoder's best-phrase
    log-probability (as :func:`speechseq.warp.closed_set_confidence`, which scores with CTC weight 0).

    >>> confidence({"decoder": np.array([[-1.0, -3.0], [-2.0, -0.5]])})
    -0.75
    """
    return float(parts["decoder"][rows].max(axis=1).mean())


def ensemble_closed_set(
    models: Sequence[Any],
    waves: Sequence[np.ndarray],
    sample_rate: int,
    vocabulary: Sequence[str],
    ctc_weight: float = 0.0,
    factors: Sequence[float] | None = None,
    batch_size: int = 32,
) -> EnsembleResult:
    """Closed-set decoding by several models together, each warped to its own factor if ``factors`` is given.

    Args:
        models: saved ASR models sharing nothing but the vocabulary's writing (each encodes it itself).
        waves: the recordings, each (S,) float at ``sample_rate``; with ``factors``, all of one speaker.
        vocabulary: the V allowed phrases.
        ctc_weight: λ of each model's ``(1−λ)·decoder + λ·ctc`` before the sum.
        factors: the VTLN grid (e.g. :data:`speechseq.warp.DEFAULT_FACTORS`); None: no warp.

    Raises:
        ConfigError: no model, no recording, an empty vocabulary, a bad grid, or VTLN with a CTC-only model
        (its score depends on the number of frames, which the warp changes: it has no decoder to choose with).
    """
    from speechseq.audio import resample
    from speechseq.inference import is_attention_model

    if not models:
        raise ConfigError("an ensemble needs at least one model")
    if not waves:
        raise ConfigError("an ensemble needs at least one recording")
    if not vocabulary:
        raise ConfigError("an ensemble decodes closed-set: give a non-empty vocabulary")
    grid = [1.0] if factors is None else check_factors(factors)
    lacking = [i for i, model in enumerate(models) if not is_attention_model(model)]
    if factors is not None and lacking:
        raise ConfigError(f"ensemble model {lacking[0]} has no attention decoder: VTLN chooses its warp on the "
                          "decoder")
    total = np.zeros((len(waves), len(vocabulary)))
    chosen = []
    for model in models:
        rate = model.feature_config.sample_rate
        own = [resample(w, sample_rate, rate) if rate != sample_rate else w for w in waves]
        tables = {f: closed_set_table(model, [speed_perturb(w, rate, f) for w in own], vocabulary, batch_size)
                  for f in grid}
        factor = pick({f: confidence(t) for f, t in tables.items()}) if factors is not None else 1.0
        chosen.append(factor)
        total += combine(tables[factor], ctc_weight)
    return EnsembleResult([vocabulary[k] for k in total.argmax(axis=1)], total, chosen)
