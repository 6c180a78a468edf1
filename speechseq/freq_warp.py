"""Random non-uniform warping of the frequency axis of (B, T, F) features, in training only.

Speed and pitch perturbation scale every formant of a voice by one factor. A new speaker's vowels differ
from the training speakers' by different amounts in different bands (F1 and F2 do not move together),
which one factor cannot imitate. This augmentation moves a few knots of the frequency axis independently:
the output bin ``y`` reads the input at ``source(y)``, a piecewise-linear, monotone map with fixed ends
whose interior knots sit at equal spacing and are each displaced by a uniform draw. Time is untouched.

It works on log-mel features (after the front end), so a warp of ±4 of 80 mel bands over 0-4 kHz moves
a formant near 500 Hz or 1.5 kHz by roughly ±15 %.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from speechseq.errors import ConfigError
from speechseq.nn.masking import lengths_to_mask


@dataclass
class FrequencyWarpConfig:
    """Policy of :class:`FrequencyWarp` (``model.freq_warp.*``).

    Attributes:
        prob: probability that an utterance is warped (0 turns the augmentation off, the default).
        knots: interior knots of the piecewise-linear map, at ``k / (knots + 1)`` of the axis.
        max_shift: largest displacement of a knot, as a fraction of the number of bins.
    """

    prob: float = 0.0
    knots: int = 3
    max_shift: float = 0.05

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the key if the policy is not a monotone warp."""
        if not 0.0 <= self.prob <= 1.0:
            raise ConfigError(f"model.freq_warp.prob must be in [0, 1], got {self.prob}")
        if self.knots < 1:
            raise ConfigError(f"model.freq_warp.knots must be >= 1, got {self.knots}")
        # Two neighbouring knots moving towards each other must not cross: the map stays monotone.
        if not 0.0 <= self.max_shift < 0.5 / (self.knots + 1):
            raise ConfigError(
                f"model.freq_warp.max_shift must be in [0, {0.5 / (self.knots + 1):.4g}) for "
                f"{self.knots} knots (else the warp folds over), got {self.max_shift}"
            )


def source_positions(bins: int, shifts: torch.Tensor) -> torch.Tensor:
    """Input coordinate read by each output bin, for knot displacements in bins.

    Args:
        bins: F, the size of the frequency axis.
        shifts: (B, K) displacement of each interior knot (bins; positive moves content upwards).

    Returns:
        (B, F) float coordinates in [0, F - 1], monotone non-decreasing along F.

    >>> source_positions(5, torch.zeros(1, 1)).tolist()
    [[0.0, 1.0, 2.0, 3.0, 4.0]]
    """
    batch, knots = shifts.shape
    top = float(bins - 1)
    inner = torch.arange(1, knots + 1, dtype=torch.float32) * top / (knots + 1)
    src = torch.cat([torch.zeros(1), inner, torch.full((1,), top)]).expand(batch, -1)  # knots in the input
    dst = torch.cat([torch.zeros(batch, 1), inner + shifts.float(), torch.full((batch, 1), top)], dim=1)
    grid = torch.arange(bins, dtype=torch.float32).expand(batch, -1).contiguous()
    # For each output bin, its segment [dst_k, dst_k+1] and the input point at the same fraction of it.
    seg = (torch.searchsorted(dst.contiguous(), grid, right=True) - 1).clamp(0, knots)
    d0, d1 = dst.gather(1, seg), dst.gather(1, seg + 1)
    s0, s1 = src.gather(1, seg), src.gather(1, seg + 1)
    frac = (grid - d0) / (d1 - d0).clamp(min=1e-6)
    return (s0 + frac * (s1 - s0)).clamp(0.0, top)


def warp_bins(features: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Read (B, T, F) features at fractional bins (B, F) by linear interpolation along F."""
    positions = positions.to(features.device)
    low = positions.floor().long().clamp(0, features.shape[-1] - 1)
    high = (low + 1).clamp(max=features.shape[-1] - 1)
    frac = (positions - low).to(features.dtype).unsqueeze(1)  # (B, 1, F): the same for every frame
    shape = (-1, features.shape[1], -1)
    low_values = features.gather(2, low.unsqueeze(1).expand(shape))
    return low_values + (features.gather(2, high.unsqueeze(1).expand(shape)) - low_values) * frac


class FrequencyWarp(nn.Module):
    """Warp each utterance's frequency axis with probability ``prob`` (training mode only).

    Random numbers come from the ``generator`` given to ``forward`` (drawn on the CPU, so any device
    gives the same warps); frames at or past ``lengths`` are left as they are.

    Example:
        >>> warp = FrequencyWarp(FrequencyWarpConfig(prob=1.0)).train()
        >>> feats = torch.arange(80.0).expand(1, 3, 80)
        >>> out = warp(feats, torch.tensor([3]), torch.Generator().manual_seed(0))
        >>> bool((out[0, :, 0] == 0).all() and (out[0, :, -1] == 79).all())   # the ends stay
        True
    """

    def __init__(self, config: FrequencyWarpConfig) -> None:
        super().__init__()
        config.check()
        self.config = config

    def forward(self, features: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """(B, T, F) features and (B,) valid frames -> (B, T, F) warped features (the input in eval mode)."""
        cfg = self.config
        if not self.training or cfg.prob <= 0:
            return features
        batch, frames, bins = features.shape
        chosen = torch.rand(batch, generator=generator) < cfg.prob
        shifts = (torch.rand(batch, cfg.knots, generator=generator) * 2 - 1) * cfg.max_shift * bins
        shifts = shifts * chosen.unsqueeze(1)
        warped = warp_bins(features, source_positions(bins, shifts))
        keep = ~(chosen.to(features.device).unsqueeze(1) & lengths_to_mask(lengths.to(features.device), frames))
        return torch.where(keep.unsqueeze(2), features, warped)
