"""Batched recurrent state that beam search can reorder.

Every decoding state in the core (attention states, decoder states) is a dataclass whose tensor fields are
batch-first. ``BatchState.index_select`` reorders / expands all of them at once, recursing into nested
states, lists and tuples, so beam search never needs to know what a particular model keeps.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import torch

S = TypeVar("S", bound="BatchState")


def select_batch(value: Any, index: torch.Tensor) -> Any:
    """Apply ``index_select(0, index)`` to every tensor inside ``value``.

    Args:
        value: a tensor (batch dim first), a ``BatchState``, a list/tuple of those, or anything else
            (ints, None, generators), which is returned unchanged.
        index: (N,) long tensor of batch rows to take (may repeat rows to expand for beams).
    """
    if isinstance(value, torch.Tensor):
        return value.index_select(0, index.to(value.device))
    if isinstance(value, BatchState):
        return value.index_select(index)
    if isinstance(value, (list, tuple)):
        return type(value)(select_batch(v, index) for v in value)
    return value


@dataclasses.dataclass
class BatchState:
    """Base of all explicit decoding states: a dataclass of batch-first tensors.

    >>> import torch
    >>> @dataclasses.dataclass
    ... class S(BatchState):
    ...     h: torch.Tensor
    >>> S(torch.tensor([[1.], [2.]])).index_select(torch.tensor([1, 1, 0])).h.squeeze(1).tolist()
    [2.0, 2.0, 1.0]
    """

    def index_select(self: S, index: torch.Tensor) -> S:
        """A new state whose row ``i`` is row ``index[i]`` of this one (reorder or expand for beams)."""
        changes = {f.name: select_batch(getattr(self, f.name), index) for f in dataclasses.fields(self)}
        return dataclasses.replace(self, **changes)
