"""Silence handling of log-mel features: energy endpointing (drop the quiet frames before the speech starts and
after it ends) and a floor relative to each utterance's loudest cell.

A recogniser trained on recordings cut tightly around the speech (FSDD is) never learns what a lead-in of
silence looks like: 60 ms of it before a held-out speaker's digits made the FSDD fold models' error 1.7
times what it was with the lead-in trimmed (``tasks/las/fsdd_experiments.md``). Cutting every input the same way, in
training and at inference, inside the model, removes that difference wherever the audio comes from. Silence *inside* an utterance is kept.
"""

from __future__ import annotations

import math

import torch

from speechseq.nn.masking import lengths_to_mask

_DB_PER_NEPER_POWER = 10.0 / math.log(10.0)  # 10 log10(x) = this * ln(x)
_DB_PER_NEPER_MAGNITUDE = 20.0 / math.log(10.0)  # 20 log10(|x|) = this * ln(|x|)


def frame_levels_db(logmel: torch.Tensor) -> torch.Tensor:
    """Level of each frame in dB: 10 log10 of the summed squared mel magnitudes.

    Args:
        logmel: (B, T, F) natural-log mel magnitudes (``speechseq.features.LogMel``).

    Returns:
        (B, T) float.
    """
    return torch.logsumexp(2.0 * logmel.float(), dim=-1) * _DB_PER_NEPER_POWER


def trim_silence(
    features: torch.Tensor, lengths: torch.Tensor, top_db: float, margin: int = 0, fill_value: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut each utterance to the span from its first to its last frame within ``top_db`` of its loudest frame,
    widened by ``margin`` frames on each side.

    Like ``librosa.effects.trim`` on frames of the features (whose default 2048-sample frames leave a
    margin of their own). Only the utterance's own valid frames count, so the result does not depend on
    the batch it was computed in.

    Args:
        features: (B, T, F) log-mel features.
        lengths: (B,) valid frames per item (at least 1).
        top_db: frames quieter than the loudest by more than this are silence.
        margin: frames kept before the first and after the last loud frame (weak onsets and endings of
            fricatives and plosives lie 20-30 dB below the vowel).
        fill_value: written past each item's new length.

    Returns:
        ``(trimmed, new_lengths)``: (B, T', F) with each item's kept span moved to frame 0 and
        ``T' = max(new_lengths)``, and (B,) int64.
    """
    frames = features.shape[1]
    valid = lengths_to_mask(lengths, frames)
    levels = frame_levels_db(features).masked_fill(~valid, -math.inf)
    loud = (levels >= levels.max(dim=1, keepdim=True).values - top_db) & valid  # (B, T); the loudest is in
    positions = torch.arange(frames, device=features.device)
    first = (torch.where(loud, positions, frames).min(dim=1).values - margin).clamp(min=0)
    last = torch.minimum(torch.where(loud, positions, -1).max(dim=1).values + margin, lengths.to(positions) - 1)
    new_lengths = last - first + 1
    kept = int(new_lengths.max())
    index = (first.unsqueeze(1) + positions[:kept]).clamp(max=frames - 1)  # (B, T'): only the frames kept
    moved = features.gather(1, index.unsqueeze(-1).expand(-1, -1, features.shape[2]))
    keep = lengths_to_mask(new_lengths, kept).unsqueeze(-1)
    return moved.masked_fill(~keep, fill_value), new_lengths


def floor_relative(features: torch.Tensor, lengths: torch.Tensor, range_db: float) -> torch.Tensor:
    """Raise every cell to at least ``range_db`` dB below the utterance's loudest cell.

    Per-utterance normalisation divides each mel band by its spread over time, so the faint leftovers in
    bands a recording never had (above 4 kHz in 8 kHz audio upsampled to 16 kHz) or a very clean
    recording's noise floor become patterns of their own, which differ from one recording chain to the
    next. A common floor makes them constant, and a constant band normalises to zero.

    Args:
        features: (B, T, F) natural-log mel magnitudes.
        lengths: (B,) valid frames per item; padding is neither read nor changed.
        range_db: dynamic range kept, in dB of magnitude.

    Returns:
        (B, T, F).
    """
    valid = lengths_to_mask(lengths, features.shape[1]).unsqueeze(-1)
    loudest = features.masked_fill(~valid, -math.inf).amax(dim=(1, 2), keepdim=True)
    floor = loudest - range_db / _DB_PER_NEPER_MAGNITUDE
    return torch.where(valid, torch.maximum(features, floor), features)
