"""Soft attention for autoregressive decoders, behind one interface with an explicit state.

Every kind implements::

    state = attention.init_state(memory (B,T,Dm), mask (B,T) bool)
    out = attention(query (B,Dq), memory (B,T,Dm), mask (B,T) bool, state)   # -> AttentionOutput
    out.context (B,Dm), out.weights (B,T), out.state

In beam search the rows are N = B·W hypotheses; ``memory`` may then stay (B,T,Dm), one row per utterance
(``weighted_sum``), while queries, masks and states have N rows.

The memory projection (keys) is computed once, in ``init_state``, and carried in the state: nothing is kept
on ``self``, so one module serves any number of batches and beams (``state.index_select``). If ``memory``
has grown since the state was built (streaming), only the new frames are projected and appended.
Weights are exactly zero on padded frames (``mask`` False) and sum to one over the valid frames.

Kinds: ``DotProductAttention`` (scaled, Luong), ``AdditiveAttention`` (Bahdanau), ``LocationAwareAttention``
(Chorowski et al. 2015: conv over the previous weights), ``LocationSensitiveAttention`` (Tacotron 2: conv over
[previous, cumulative] weights), ``MultiHeadLocationAttention`` (several additive/location scorers, each with
its own value projection), and ``MonotonicChunkwiseAttention`` in ``monotonic.py``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from speechseq.errors import ConfigError
from speechseq.nn.state import BatchState


@dataclass
class AttentionState(BatchState):
    """Per-utterance attention state, batch dim first.

    Attributes:
        keys: projected memory, (B,T,A) or (B,H,T,A) for multi-head kinds.
        weights: attention weights of the previous step, (B,T) or (B,H,T); zeros before the first step.
        cumulative: sum of all previous weights, same shape as ``weights``.
        values: per-head projected memory (B,T,H,Dv) for multi-head kinds, else None.
    """

    per_utterance = ("keys", "values")

    keys: torch.Tensor
    weights: torch.Tensor
    cumulative: torch.Tensor
    values: torch.Tensor | None = None


@dataclass
class AttentionOutput:
    """context (B,Dm), weights (B,T) (zero on padding), and the state for the next step."""

    context: torch.Tensor
    weights: torch.Tensor
    state: Any


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis restricted to ``mask`` (True = valid); exactly zero elsewhere.

    Args:
        scores: (..., T) energies.
        mask: bool tensor broadcastable to ``scores``; every row needs one True.
    """
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    return weights.masked_fill(~mask, 0.0)


def weighted_sum(weights: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
    """Context vectors (N, D): ``weights`` (N, T) applied to ``memory`` (B, T, D).

    ``memory`` may hold one row per utterance while ``weights`` holds W = N / B rows per utterance
    (utterance-major, as beam search lays out hypotheses): each utterance's memory is then read once for all
    its hypotheses instead of once per hypothesis.

    >>> memory = torch.arange(12.).view(2, 3, 2)
    >>> weights = torch.tensor([[1., 0, 0], [0, 0, 1], [0, 1, 0], [.5, .5, 0]])
    >>> weighted_sum(weights, memory).tolist()
    [[0.0, 1.0], [4.0, 5.0], [8.0, 9.0], [7.0, 8.0]]
    """
    rows, batch = weights.size(0), memory.size(0)
    if rows % batch:
        raise ValueError(f"{rows} attention rows cannot be split over {batch} utterances")
    weights = weights.to(memory.dtype).view(batch, rows // batch, -1)
    return torch.bmm(weights, memory).view(rows, -1)


def _pad_time(x: torch.Tensor, length: int, dim: int) -> torch.Tensor:
    """Zero-pad ``x`` along ``dim`` up to ``length`` (used when streaming memory grows)."""
    missing = length - x.size(dim)
    if missing <= 0:
        return x
    shape = list(x.shape)
    shape[dim] = missing
    return torch.cat([x, x.new_zeros(shape)], dim=dim)


class Attention(nn.Module):
    """Base class: memory projection, state handling and the weighted sum. Subclasses define ``energies``.

    Args:
        query_dim: decoder query size Dq.
        memory_dim: encoder state size Dm.
        attention_dim: size A of the projected space.
    """

    def __init__(self, query_dim: int, memory_dim: int, attention_dim: int):
        super().__init__()
        self.query_dim, self.memory_dim, self.attention_dim = query_dim, memory_dim, attention_dim
        self.memory_proj = nn.Linear(memory_dim, attention_dim, bias=False)
        self.query_proj = nn.Linear(query_dim, attention_dim)

    def project_memory(self, memory: torch.Tensor) -> torch.Tensor:
        """(B,T,Dm) -> keys (B,T,A)."""
        return self.memory_proj(memory)

    def init_state(
        self, memory: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None
    ) -> AttentionState:
        """State before the first step: projected memory, zero previous and cumulative weights.

        ``generator`` is accepted by every kind so callers need not know which one they hold; only
        stochastic kinds (MoChA training noise) use it.
        """
        zeros = memory.new_zeros(memory.shape[:2])
        return AttentionState(keys=self.project_memory(memory), weights=zeros, cumulative=zeros.clone())

    def fit_state(self, state: AttentionState, memory: torch.Tensor) -> AttentionState:
        """Extend ``state`` to a memory that grew by new frames (streaming); a no-op otherwise."""
        have, time = state.keys.size(-2), memory.size(1)
        if have >= time:
            return state
        new_keys = self.project_memory(memory[:, have:])
        return dataclasses.replace(
            state,
            keys=torch.cat([state.keys, new_keys], dim=-2),
            weights=_pad_time(state.weights, time, -1),
            cumulative=_pad_time(state.cumulative, time, -1),
        )

    def energies(self, query: torch.Tensor, state: AttentionState) -> torch.Tensor:
        """Unnormalised scores (B,T) of every memory frame for ``query`` (B,Dq)."""
        raise NotImplementedError

    def forward(
        self, query: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor, state: AttentionState
    ) -> AttentionOutput:
        state = self.fit_state(state, memory)
        weights = masked_softmax(self.energies(query, state), mask)
        context = weighted_sum(weights, memory)
        new_state = dataclasses.replace(state, weights=weights, cumulative=state.cumulative + weights)
        return AttentionOutput(context=context, weights=weights, state=new_state)


class DotProductAttention(Attention):
    """Scaled dot product between the projected query and projected memory: ``(W_q q)·(W_m h) / sqrt(A)``.

    >>> att = DotProductAttention(8, 6, 4)
    >>> mem, mask = torch.randn(2, 5, 6), torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    >>> out = att(torch.randn(2, 8), mem, mask, att.init_state(mem, mask))
    >>> out.weights.sum(-1).round(decimals=4).tolist(), out.weights[1, 3:].tolist()
    ([1.0, 1.0], [0.0, 0.0])
    """

    def energies(self, query: torch.Tensor, state: AttentionState) -> torch.Tensor:
        q = self.query_proj(query).unsqueeze(-1)  # (B, A, 1)
        return torch.bmm(state.keys, q).squeeze(-1) / math.sqrt(self.attention_dim)


class AdditiveAttention(Attention):
    """Bahdanau content attention: ``v · tanh(W_q q + W_m h + b)``.

    >>> att = AdditiveAttention(8, 6, 4)
    >>> mem, mask = torch.randn(2, 5, 6), torch.ones(2, 5, dtype=torch.bool)
    >>> tuple(att(torch.randn(2, 8), mem, mask, att.init_state(mem, mask)).context.shape)
    (2, 6)
    """

    def __init__(self, query_dim: int, memory_dim: int, attention_dim: int):
        super().__init__(query_dim, memory_dim, attention_dim)
        self.score = nn.Linear(attention_dim, 1, bias=False)

    def location_term(self, state: AttentionState) -> torch.Tensor | float:
        """Extra (B,T,A) term inside the tanh; none for pure content attention."""
        return 0.0

    def energies(self, query: torch.Tensor, state: AttentionState) -> torch.Tensor:
        hidden = torch.tanh(state.keys + self.query_proj(query).unsqueeze(1) + self.location_term(state))
        return self.score(hidden).squeeze(-1)


class LocationAwareAttention(AdditiveAttention):
    """Chorowski et al. (2015) location-aware attention: additive scores plus features ``F * α_{i-1}``.

    Args:
        location_filters: channels of the 1-D convolution over previous weights.
        location_kernel: odd kernel width of that convolution.

    Because previous weights are zero on padding, the convolution near the end of an utterance sees the
    same zeros alone or in a padded batch.

    >>> att = LocationAwareAttention(8, 6, 4, location_filters=3, location_kernel=5)
    >>> mem, mask = torch.randn(2, 5, 6), torch.ones(2, 5, dtype=torch.bool)
    >>> s = att.init_state(mem, mask)
    >>> s = att(torch.randn(2, 8), mem, mask, s).state
    >>> round(att(torch.randn(2, 8), mem, mask, s).state.cumulative.sum().item(), 4)
    4.0
    """

    #: Number of weight tracks the location convolution reads (previous, or previous + cumulative).
    location_channels = 1
    #: Layers whose weights ``energies`` reads directly: INT8 quantisation leaves them float (they are tiny).
    float_submodules = ("location_proj", "score")

    def __init__(
        self,
        query_dim: int,
        memory_dim: int,
        attention_dim: int,
        location_filters: int = 32,
        location_kernel: int = 31,
    ):
        super().__init__(query_dim, memory_dim, attention_dim)
        if location_kernel % 2 != 1:
            raise ConfigError(f"attention.location_kernel must be odd, got {location_kernel}")
        self.location_conv = nn.Conv1d(
            self.location_channels, location_filters, location_kernel, padding=location_kernel // 2, bias=False
        )
        self.location_proj = nn.Linear(location_filters, attention_dim, bias=False)

    def location_tracks(self, state: AttentionState) -> torch.Tensor:
        """(B, channels, T) weight tracks that the convolution reads."""
        return state.weights.unsqueeze(1)

    def location_term(self, state: AttentionState) -> torch.Tensor:
        """(B,T,A) ``U (F * α)``: the convolution then its projection (reference form of ``energies``)."""
        features = self.location_conv(self.location_tracks(state))  # (B, filters, T)
        return self.location_proj(features.transpose(1, 2))

    def energies(self, query: torch.Tensor, state: AttentionState) -> torch.Tensor:
        """``v · tanh(W_m h + W_q q + U (F * α))`` computed as one batched matmul, then tanh in place.

        The location term is a product of (B,T,X) features with an (X,A) matrix: either the location features
        ``F * α`` themselves (X = filters) with ``U``, or, when the convolution reads fewer values than it
        has filters (X = channels × kernel ≤ filters), sliding windows of the weight tracks with ``U`` and
        ``F`` folded into one matrix (both linear). The query term rides along as an extra column of ones
        and the keys are the ``baddbmm`` input, so the (B,T,A) tensor is written once instead of once per
        term: 1.1-2.5x faster than the term-by-term ``location_term`` form at 32-320 rows
        (``bench/location_energy.py``), with the same values and gradients to float rounding (tested, both
        branches).
        """
        tracks = self.location_tracks(state)  # (B, C, T)
        batch, channels, time = tracks.shape
        width = self.location_conv.kernel_size[0]
        if channels * width <= self.location_conv.out_channels:
            windows = nn.functional.pad(tracks, (width // 2, width // 2)).unfold(2, width, 1)  # (B, C, T, K)
            features = windows.permute(0, 2, 1, 3).reshape(batch, time, channels * width)
            matrix = (self.location_proj.weight @ self.location_conv.weight.flatten(1)).t()  # (C*K, A)
        else:
            features = self.location_conv(tracks).transpose(1, 2)  # (B, T, filters)
            matrix = self.location_proj.weight.t()  # (filters, A)
        lhs = torch.cat([features, features.new_ones(batch, time, 1)], dim=-1)  # (B, T, X + 1)
        rhs = torch.cat([matrix.expand(batch, -1, -1), self.query_proj(query).unsqueeze(1)], dim=1)  # (B, X+1, A)
        hidden = torch.baddbmm(state.keys, lhs, rhs).tanh_()
        return hidden @ self.score.weight.squeeze(0)


class LocationSensitiveAttention(LocationAwareAttention):
    """Tacotron 2 location-sensitive attention: convolution over [previous, cumulative] weights.

    >>> att = LocationSensitiveAttention(8, 6, 4, location_filters=3, location_kernel=5)
    >>> mem, mask = torch.randn(1, 5, 6), torch.ones(1, 5, dtype=torch.bool)
    >>> out = att(torch.randn(1, 8), mem, mask, att.init_state(mem, mask))
    >>> torch.equal(out.state.cumulative, out.weights)
    True
    """

    location_channels = 2

    def location_tracks(self, state: AttentionState) -> torch.Tensor:
        return torch.stack([state.weights, state.cumulative], dim=1)


class MultiHeadLocationAttention(Attention):
    """Multi-head additive (optionally location-aware) attention, as in ESPnet's ``AttMultiHeadLoc``.

    Each of ``num_heads`` heads has its own key/query/value projections (``attention_dim // num_heads``
    wide), its own location convolution over its previous weights, and its own softmax; the head contexts
    are concatenated and projected back to ``memory_dim``. The reported weights (B,T) are the mean over
    heads (they still sum to one); per-head weights (B,H,T) stay in ``state.weights``.

    >>> att = MultiHeadLocationAttention(8, 6, 8, num_heads=2, location_filters=3, location_kernel=5)
    >>> mem, mask = torch.randn(2, 5, 6), torch.ones(2, 5, dtype=torch.bool)
    >>> out = att(torch.randn(2, 8), mem, mask, att.init_state(mem, mask))
    >>> tuple(out.context.shape), tuple(out.state.weights.shape)
    ((2, 6), (2, 2, 5))
    """

    def __init__(
        self,
        query_dim: int,
        memory_dim: int,
        attention_dim: int,
        num_heads: int = 4,
        location_filters: int = 32,
        location_kernel: int = 31,
        use_location: bool = True,
    ):
        super().__init__(query_dim, memory_dim, attention_dim)
        if attention_dim % num_heads:
            raise ConfigError(f"attention.attention_dim {attention_dim} is not divisible by num_heads {num_heads}")
        if location_kernel % 2 != 1:
            raise ConfigError(f"attention.location_kernel must be odd, got {location_kernel}")
        self.num_heads, self.head_dim = num_heads, attention_dim // num_heads
        self.value_proj = nn.Linear(memory_dim, attention_dim, bias=False)
        self.score = nn.Parameter(torch.randn(num_heads, self.head_dim) / math.sqrt(self.head_dim))
        self.out_proj = nn.Linear(attention_dim, memory_dim)
        self.use_location = use_location
        if use_location:
            self.location_conv = nn.Conv1d(
                num_heads, num_heads * location_filters, location_kernel,
                padding=location_kernel // 2, groups=num_heads, bias=False,
            )
            self.location_proj = nn.Parameter(
                torch.randn(num_heads, location_filters, self.head_dim) / math.sqrt(location_filters)
            )

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """(B,T,A) -> (B,H,T,A/H)."""
        return x.view(x.size(0), x.size(1), self.num_heads, self.head_dim).transpose(1, 2)

    def project_memory(self, memory: torch.Tensor) -> torch.Tensor:
        return self._heads(self.memory_proj(memory))

    def init_state(
        self, memory: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None
    ) -> AttentionState:
        zeros = memory.new_zeros(memory.size(0), self.num_heads, memory.size(1))
        return AttentionState(
            keys=self.project_memory(memory),
            weights=zeros,
            cumulative=zeros.clone(),
            values=self._heads(self.value_proj(memory)),
        )

    def fit_state(self, state: AttentionState, memory: torch.Tensor) -> AttentionState:
        have = state.keys.size(-2)
        grown = super().fit_state(state, memory)
        if grown is state:
            return state
        new_values = self._heads(self.value_proj(memory[:, have:]))
        return dataclasses.replace(grown, values=torch.cat([state.values, new_values], dim=-2))

    def energies(self, query: torch.Tensor, state: AttentionState) -> torch.Tensor:
        """(B,Dq) -> per-head energies (B,H,T)."""
        hidden = state.keys + self.query_proj(query).view(-1, self.num_heads, 1, self.head_dim)
        if self.use_location:
            batch, heads, time = state.weights.shape
            features = self.location_conv(state.weights).view(batch, heads, -1, time)  # (B,H,F,T)
            hidden = hidden + torch.einsum("bhft,hfa->bhta", features, self.location_proj)
        return torch.einsum("bhta,ha->bht", torch.tanh(hidden), self.score)

    def forward(
        self, query: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor, state: AttentionState
    ) -> AttentionOutput:
        state = self.fit_state(state, memory)
        head_weights = masked_softmax(self.energies(query, state), mask.unsqueeze(1))  # (B,H,T)
        head_context = torch.einsum("bht,bhta->bha", head_weights, state.values)
        context = self.out_proj(head_context.reshape(head_context.size(0), -1))
        new_state = dataclasses.replace(
            state, weights=head_weights, cumulative=state.cumulative + head_weights
        )
        return AttentionOutput(context=context, weights=head_weights.mean(1), state=new_state)


@dataclass
class AttentionConfig:
    """Which attention a decoder uses, and its sizes.

    Attributes:
        kind: ``dot``, ``additive``, ``location`` (Chorowski), ``location_sensitive`` (Tacotron 2),
            ``multihead`` (multi-head additive/location) or ``mocha`` (monotonic chunkwise).
        attention_dim: size of the projected key/query space (split across heads for ``multihead``).
        location_filters: channels of the convolution over previous weights (location kinds, multihead).
        location_kernel: odd kernel width of that convolution.
        num_heads: heads of ``multihead``.
        multihead_location: whether ``multihead`` heads use location features.
        chunk_size: MoChA chunk width w (frames ending at the selected one).
        noise_std: MoChA: std of the Gaussian noise added to monotonic energies in training. Larger noise
            pushes the energies further from 0, so hard inference matches soft training sooner.
        init_bias: MoChA: initial offset r of the monotonic energy (negative = start reluctant to move).
            Defaults (2.0, -1.0) made hard inference work on a 5-utterance overfit where the paper's
            (1.0, -4.0) left the hard head never selecting a frame after 120 steps (soft decoding was right).
        hard_inference: MoChA: use hard monotonic attention when not training.
    """

    kind: str = "location"
    attention_dim: int = 128
    location_filters: int = 32
    location_kernel: int = 31
    num_heads: int = 4
    multihead_location: bool = True
    chunk_size: int = 4
    noise_std: float = 2.0
    init_bias: float = -1.0
    hard_inference: bool = True


ATTENTION_KINDS = ("dot", "additive", "location", "location_sensitive", "multihead", "mocha")


def build_attention(config: AttentionConfig, query_dim: int, memory_dim: int) -> Attention:
    """Build the attention module described by ``config`` for the given query and memory sizes.

    >>> type(build_attention(AttentionConfig(kind="location_sensitive"), 16, 8)).__name__
    'LocationSensitiveAttention'
    """
    c, args = config, (query_dim, memory_dim, config.attention_dim)
    if c.kind == "dot":
        return DotProductAttention(*args)
    if c.kind == "additive":
        return AdditiveAttention(*args)
    if c.kind == "location":
        return LocationAwareAttention(*args, c.location_filters, c.location_kernel)
    if c.kind == "location_sensitive":
        return LocationSensitiveAttention(*args, c.location_filters, c.location_kernel)
    if c.kind == "multihead":
        return MultiHeadLocationAttention(
            *args, c.num_heads, c.location_filters, c.location_kernel, c.multihead_location
        )
    if c.kind == "mocha":
        from speechseq.nn.monotonic import MonotonicChunkwiseAttention  # it subclasses Attention

        return MonotonicChunkwiseAttention(*args, c.chunk_size, c.noise_std, c.init_bias, c.hard_inference)
    raise ConfigError(f"attention.kind {c.kind!r} is unknown; valid kinds: {', '.join(ATTENTION_KINDS)}")
