"""Length <-> mask helpers shared by every module. Masks are True on valid positions."""

from __future__ import annotations

import torch


def lengths_to_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """Boolean mask of valid positions.

    Args:
        lengths: (B,) integer lengths.
        max_len: width of the mask; defaults to ``lengths.max()``.

    Returns:
        (B, max_len) bool tensor, True where ``t < lengths[b]``.

    >>> lengths_to_mask(torch.tensor([1, 3])).tolist()
    [[True, False, False], [True, True, True]]
    """
    if max_len is None:
        max_len = int(lengths.max().item()) if lengths.numel() else 0
    positions = torch.arange(max_len, device=lengths.device)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)
