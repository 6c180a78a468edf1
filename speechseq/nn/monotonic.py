"""Monotonic chunkwise attention (MoChA; Chiu & Raffel 2018), behind the common attention interface.

Training (soft, parallel over frames): a monotonic energy ``e_j`` per frame gives a stop probability
``p_j = sigmoid(e_j + noise)``. The expected alignment of step i follows Raffel et al. (2017)::

    alpha_i = p_i * cumprod_excl(1 - p_i) * cumsum(alpha_{i-1} / cumprod_excl(1 - p_i))

(``alpha_0`` is one-hot on frame 0), and each alpha mass at frame k is spread over the chunk of ``w`` frames
ending at k with a softmax of chunk energies ``u``::

    beta_j = sum_{k=j}^{j+w-1} alpha_k exp(u_j) / sum_{l=k-w+1}^{k} exp(u_l)

``sum_j beta_j = sum_k alpha_k <= 1``: the missing mass is the probability that the head ran past the end.
Gaussian noise before the sigmoid (training only) pushes the energies towards binary decisions.

Inference (hard, when ``hard_inference`` and not training): from the previous position, the first frame
with ``e_j > 0`` is selected; the head never moves back. The context is a softmax over the chunk of ``w``
frames ending there. If no frame is selected the context is zero and the position stays, so a streaming
caller can append encoder frames (``memory`` may grow between calls) and step again.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from speechseq.nn.attention import Attention, AttentionOutput, AttentionState, _pad_time, masked_softmax, weighted_sum


@dataclass
class MonotonicState(AttentionState):
    """MoChA state (batch first). Besides ``AttentionState``:

    Attributes:
        chunk_keys: (B,T,A) projected memory of the chunk energy.
        alignment: (B,T) previous monotonic alignment alpha (expected in training, one-hot in inference).
        position: (B,) long, frame selected by hard attention (0 before the first step; never decreases).
        attended: (B,) bool, whether the last hard step selected a frame.
        generator: random generator for the training noise (None: the global one).
    """

    per_utterance = ("keys", "values", "chunk_keys")

    chunk_keys: torch.Tensor | None = None
    alignment: torch.Tensor | None = None
    position: torch.Tensor | None = None
    attended: torch.Tensor | None = None
    generator: torch.Generator | None = None


def moving_sum(x: torch.Tensor, back: int, forward: int) -> torch.Tensor:
    """``y_j = sum_{k=j-back}^{j+forward} x_k`` with zeros outside: (B,T) -> (B,T)."""
    kernel = x.new_ones(1, 1, back + forward + 1)
    padded = nn.functional.pad(x.unsqueeze(1), (back, forward))
    return nn.functional.conv1d(padded, kernel).squeeze(1)


def expected_alignment(p_choose: torch.Tensor, previous: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Parallel expected monotonic alignment (Raffel et al. 2017, eq. 12).

    Args:
        p_choose: (B,T) stop probabilities, zero on padding.
        previous: (B,T) alignment of the previous output step.
        eps: floor of the cumulative product, whose division is the known instability of this form.

    Returns:
        (B,T) alignment whose sum is at most ``previous.sum()``.
    """
    ones = p_choose.new_ones(p_choose.size(0), 1)
    exclusive = torch.cumprod(torch.cat([ones, 1.0 - p_choose[:, :-1]], dim=1), dim=1)
    return p_choose * exclusive * torch.cumsum(previous / exclusive.clamp(min=eps, max=1.0), dim=1)


def chunkwise_weights(alignment: torch.Tensor, chunk_energy: torch.Tensor, mask: torch.Tensor, chunk: int) -> torch.Tensor:
    """Spread each alignment mass over the ``chunk`` frames ending at it, by softmax of chunk energies.

    Args:
        alignment: (B,T) monotonic alignment alpha (zero on padding).
        chunk_energy: (B,T) energies u.
        mask: (B,T) bool, True on valid frames.
        chunk: chunk width w.

    Returns:
        (B,T) weights beta with ``beta.sum(-1) == alignment.sum(-1)``, zero on padding.
    """
    # A shift by the per-utterance maximum leaves the ratios unchanged and keeps exp() finite.
    energy = chunk_energy.masked_fill(~mask, float("-inf"))
    energy = energy - energy.max(dim=-1, keepdim=True).values.detach()
    exp_energy = energy.exp()  # exactly 0 on padding
    denominators = moving_sum(exp_energy, back=chunk - 1, forward=0).clamp(min=1e-10)
    return exp_energy * moving_sum(alignment / denominators, back=0, forward=chunk - 1)


class MonotonicChunkwiseAttention(Attention):
    """MoChA: soft expected alignment in training, hard monotonic chunk attention in inference.

    Args:
        query_dim, memory_dim, attention_dim: sizes Dq, Dm, A.
        chunk_size: chunk width w.
        noise_std: std of the pre-sigmoid Gaussian noise in training (``state.generator`` draws it).
        init_bias: initial offset r of the monotonic energy.
        hard_inference: hard attention when not training (else the expected alignment is used).

    >>> att = MonotonicChunkwiseAttention(8, 6, 4, chunk_size=2).eval()
    >>> mem, mask = torch.randn(1, 7, 6), torch.ones(1, 7, dtype=torch.bool)
    >>> state, positions = att.init_state(mem, mask), []
    >>> for _ in range(3):
    ...     out = att(torch.randn(1, 8), mem, mask, state)
    ...     state = out.state
    ...     positions.append(int(state.position))
    >>> positions == sorted(positions)
    True
    """

    def __init__(
        self,
        query_dim: int,
        memory_dim: int,
        attention_dim: int,
        chunk_size: int = 4,
        noise_std: float = 2.0,
        init_bias: float = -1.0,
        hard_inference: bool = True,
    ):
        super().__init__(query_dim, memory_dim, attention_dim)
        self.chunk_size, self.noise_std, self.hard_inference = chunk_size, noise_std, hard_inference
        # Weight-normalised monotonic energy g * v/|v| · tanh(...) + r (Raffel et al. 2017, sec. 2.4).
        self.energy_v = nn.Parameter(torch.randn(attention_dim) / math.sqrt(attention_dim))
        self.energy_gain = nn.Parameter(torch.tensor(1.0 / math.sqrt(attention_dim)))
        self.energy_bias = nn.Parameter(torch.tensor(float(init_bias)))
        self.chunk_memory_proj = nn.Linear(memory_dim, attention_dim, bias=False)
        self.chunk_query_proj = nn.Linear(query_dim, attention_dim)
        self.chunk_score = nn.Linear(attention_dim, 1, bias=False)

    def init_state(
        self, memory: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None
    ) -> MonotonicState:
        """State before the first step: head on frame 0 (alpha_0 one-hot), memory projected once."""
        batch, time = memory.shape[:2]
        zeros = memory.new_zeros(batch, time)
        alignment = zeros.clone()
        alignment[:, 0] = 1.0
        return MonotonicState(
            keys=self.project_memory(memory),
            weights=zeros,
            cumulative=zeros.clone(),
            chunk_keys=self.chunk_memory_proj(memory),
            alignment=alignment,
            position=torch.zeros(batch, dtype=torch.long, device=memory.device),
            attended=torch.zeros(batch, dtype=torch.bool, device=memory.device),
            generator=generator,
        )

    def fit_state(self, state: MonotonicState, memory: torch.Tensor) -> MonotonicState:  # type: ignore[override]
        have, time = state.keys.size(1), memory.size(1)
        if have >= time:
            return state
        grown = super().fit_state(state, memory)
        new_chunk_keys = self.chunk_memory_proj(memory[:, have:])
        return dataclasses.replace(
            grown,
            chunk_keys=torch.cat([state.chunk_keys, new_chunk_keys], dim=1),
            alignment=_pad_time(state.alignment, time, 1),
        )

    def energies(self, query: torch.Tensor, state: AttentionState) -> torch.Tensor:
        """Monotonic energies e (B,T)."""
        v = self.energy_gain * self.energy_v / self.energy_v.norm()
        hidden = torch.tanh(state.keys + self.query_proj(query).unsqueeze(1))
        return hidden @ v + self.energy_bias

    def chunk_energies(self, query: torch.Tensor, state: MonotonicState) -> torch.Tensor:
        """Chunk energies u (B,T)."""
        hidden = torch.tanh(state.chunk_keys + self.chunk_query_proj(query).unsqueeze(1))
        return self.chunk_score(hidden).squeeze(-1)

    def forward(  # type: ignore[override]
        self, query: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor, state: MonotonicState
    ) -> AttentionOutput:
        state = self.fit_state(state, memory)
        if self.hard_inference and not self.training:
            return self._hard_step(query, memory, mask, state)
        return self._soft_step(query, memory, mask, state)

    def _soft_step(
        self, query: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor, state: MonotonicState
    ) -> AttentionOutput:
        energy = self.energies(query, state)
        if self.training and self.noise_std > 0:
            noise = torch.randn(energy.shape, generator=state.generator, dtype=energy.dtype)
            energy = energy + self.noise_std * noise.to(energy.device)
        # The cumulative products and their division underflow in half precision: run them in float32.
        p_choose = torch.sigmoid(energy.float()) * mask.float()
        alignment = expected_alignment(p_choose, state.alignment.float())
        weights = chunkwise_weights(alignment, self.chunk_energies(query, state).float(), mask, self.chunk_size)
        context = weighted_sum(weights, memory)
        new_state = dataclasses.replace(
            state, weights=weights, cumulative=state.cumulative + weights, alignment=alignment
        )
        return AttentionOutput(context=context, weights=weights, state=new_state)

    def _hard_step(
        self, query: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor, state: MonotonicState
    ) -> AttentionOutput:
        frames = torch.arange(memory.size(1), device=memory.device).unsqueeze(0)  # (1,T)
        candidates = (self.energies(query, state) > 0) & mask & (frames >= state.position.unsqueeze(1))
        attended = candidates.any(dim=-1)
        first = candidates.long().argmax(dim=-1)  # first True: argmax returns the first maximum
        position = torch.where(attended, first, state.position)
        chunk = mask & (frames <= position.unsqueeze(1)) & (frames > (position - self.chunk_size).unsqueeze(1))
        weights = masked_softmax(self.chunk_energies(query, state), chunk)
        weights = weights * attended.unsqueeze(1).to(weights.dtype)
        context = weighted_sum(weights, memory)
        alignment = (frames == position.unsqueeze(1)) & attended.unsqueeze(1)
        new_state = dataclasses.replace(
            state,
            weights=weights,
            cumulative=state.cumulative + weights,
            alignment=alignment.to(weights.dtype),
            position=position,
            attended=attended,
        )
        return AttentionOutput(context=context, weights=weights, state=new_state)
