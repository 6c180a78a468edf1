"""Multi-head scaled dot-product attention for the Transformer/Conformer layers, with relative positions.

``MultiHeadAttention`` splits projection and attention (``project_query``, ``project_key_value``, ``attend``)
so the Transformer decoder can precompute cross-attention keys/values once per utterance and keep a growing
self-attention key/value cache in its explicit state. ``RelPositionMultiHeadAttention`` is the Transformer-XL
form used by the Conformer (Dai et al. 2019; Gulati et al. 2020): scores depend on the distance i - j
through sinusoidal embeddings of that distance, never on absolute positions, so an utterance's scores do not
change when padding is appended.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_embedding(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal encodings (Vaswani et al. 2017) of arbitrary (possibly negative) positions.

    Args:
        positions: (N,) float or int positions.
        dim: even embedding size.

    Returns:
        (N, dim) float tensor: ``[sin(p * w_0), cos(p * w_0), sin(p * w_1), ...]`` interleaved.

    >>> sinusoidal_embedding(torch.tensor([0]), 4).tolist()
    [[0.0, 1.0, 0.0, 1.0]]
    """
    half = torch.arange(0, dim, 2, dtype=torch.float32, device=positions.device)
    freqs = torch.exp(-math.log(10000.0) * half / dim)
    angles = positions.float().unsqueeze(1) * freqs.unsqueeze(0)
    emb = torch.stack([angles.sin(), angles.cos()], dim=-1)
    return emb.reshape(positions.size(0), dim)


class MultiHeadAttention(nn.Module):
    """Multi-head attention with a boolean mask (True = may attend).

    Args:
        d_model: size of queries and output.
        num_heads: heads; ``d_model`` must be divisible by it.
        dropout: dropout on the attention weights (training only).
        kv_dim: size of keys/values input (defaults to ``d_model``; differs for cross-attention).

    ``forward(query (B,L,D), key_value (B,S,Dkv), mask (B,L|1,S)) -> (out (B,L,D), weights (B,H,L,S))``.

    >>> mha = MultiHeadAttention(16, 4)
    >>> out, w = mha(torch.randn(2, 3, 16), torch.randn(2, 5, 16), torch.ones(2, 1, 5, dtype=torch.bool))
    >>> tuple(out.shape), tuple(w.shape)
    ((2, 3, 16), (2, 4, 3, 5))
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0, kv_dim: int | None = None):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model {d_model} is not divisible by num_heads {num_heads}")
        kv_dim = kv_dim or d_model
        self.num_heads, self.head_dim = num_heads, d_model // num_heads
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(kv_dim, d_model)
        self.value = nn.Linear(kv_dim, d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        """(B, S, D) -> (B, H, S, D/H)."""
        return x.view(x.size(0), x.size(1), self.num_heads, self.head_dim).transpose(1, 2)

    def project_query(self, query: torch.Tensor) -> torch.Tensor:
        """(B, L, D) -> (B, H, L, D/H)."""
        return self._split(self.query(query))

    def project_key_value(self, key_value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S, Dkv) -> keys, values, each (B, H, S, D/H)."""
        return self._split(self.key(key_value)), self._split(self.value(key_value))

    def attend(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        mask: torch.Tensor | None,
        extra_scores: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Attention from projected heads.

        Args:
            q: (B, H, L, dk); k, v: (B, H, S, dk).
            mask: (B, L or 1, S) bool, True where attending is allowed; None for no mask.
            extra_scores: optional (B, H, L, S) added to the content scores before scaling (relative positions).

        Returns:
            out (B, L, D) after the output projection, and weights (B, H, L, S) (exactly zero where masked).
        """
        scores = torch.matmul(q, k.transpose(-2, -1))
        if extra_scores is not None:
            scores = scores + extra_scores
        scores = scores / math.sqrt(self.head_dim)
        if mask is not None:
            scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        if mask is not None:
            # Rows with no allowed key (padded queries) give NaN from softmax over all -inf: make them zero.
            weights = weights.masked_fill(~mask.unsqueeze(1), 0.0)
        context = torch.matmul(self.dropout(weights), v)
        batch, heads, length, dk = context.shape
        return self.out(context.transpose(1, 2).reshape(batch, length, heads * dk)), weights

    def forward(
        self, query: torch.Tensor, key_value: torch.Tensor, mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.project_key_value(key_value)
        return self.attend(self.project_query(query), k, v, mask)


class RelPositionMultiHeadAttention(MultiHeadAttention):
    """Self-attention with Transformer-XL relative positions: ``(q+u)·k + (q+v)·W p(i-j)``.

    ``forward(x (B,T,D), mask (B,1,T)) -> (out (B,T,D), weights (B,H,T,T))``.

    >>> mha = RelPositionMultiHeadAttention(16, 4)
    >>> out, w = mha(torch.randn(2, 5, 16), torch.ones(2, 1, 5, dtype=torch.bool))
    >>> tuple(out.shape)
    (2, 5, 16)
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0):
        super().__init__(d_model, num_heads, dropout)
        self.pos = nn.Linear(d_model, d_model, bias=False)
        self.content_bias = nn.Parameter(torch.zeros(num_heads, self.head_dim))
        self.position_bias = nn.Parameter(torch.zeros(num_heads, self.head_dim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        time = x.size(1)
        q = self.project_query(x)
        k, v = self.project_key_value(x)
        # Embeddings of the 2T-1 distances T-1 ... -(T-1); column c holds distance T-1-c.
        distances = torch.arange(time - 1, -time, -1, device=x.device)
        pos = self._split(self.pos(sinusoidal_embedding(distances, x.size(-1)).to(x.dtype)).unsqueeze(0))
        pos_scores = torch.matmul(q + self.position_bias.unsqueeze(1), pos.transpose(-2, -1))  # (B,H,T,2T-1)
        # Score of query i and key j uses distance i-j, i.e. column T-1-i+j.
        idx = torch.arange(time, device=x.device)
        columns = (time - 1 - idx.unsqueeze(1) + idx.unsqueeze(0)).expand(*pos_scores.shape[:2], time, time)
        pos_scores = torch.gather(pos_scores, -1, columns)
        q_content = q + self.content_bias.unsqueeze(1)
        return self.attend(q_content, k, v, mask, extra_scores=pos_scores)
