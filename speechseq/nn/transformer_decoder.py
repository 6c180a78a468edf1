"""Transformer decoder: causal self-attention + cross-attention, with a key/value cache for step-wise decoding.

Positions are absolute sinusoidal encodings of the token index. ``forward`` runs all positions in parallel
under a causal mask; ``step`` appends one token's self-attention keys/values to the cache carried in the
state and reuses the cross-attention keys/values that ``init_state`` projected once per utterance. The
reported attention (B,L,T) is the head-mean cross-attention of the last layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from speechseq.nn.decoders import DecoderOutput, StepOutput, run_stepwise
from speechseq.nn.masking import lengths_to_mask
from speechseq.nn.mha import MultiHeadAttention, sinusoidal_embedding
from speechseq.nn.state import BatchState
from speechseq.nn.transformer_encoder import FeedForward


@dataclass
class TransformerDecoderConfig:
    """Transformer decoder.

    Attributes:
        d_model: model width.
        num_heads: heads of self- and cross-attention.
        ffn_dim: feed-forward hidden size.
        num_layers: decoder layers.
        dropout: dropout on residual branches, attention weights and embeddings.
    """

    d_model: int = 256
    num_heads: int = 4
    ffn_dim: int = 1024
    num_layers: int = 6
    dropout: float = 0.1


@dataclass
class TransformerDecoderState(BatchState):
    """Per-layer caches, each (N, H, S, D/H): self-attention keys/values of the tokens decoded so far
    (S = steps taken), and cross-attention keys/values of the memory (S = T)."""

    per_utterance = ("cross_keys", "cross_values")

    self_keys: list[torch.Tensor]
    self_values: list[torch.Tensor]
    cross_keys: list[torch.Tensor]
    cross_values: list[torch.Tensor]

    @property
    def length(self) -> int:
        """Number of tokens already decoded (the position of the next one)."""
        return self.self_keys[0].size(2)


class TransformerDecoderLayer(nn.Module):
    """Pre-LN layer: causal self-attention, cross-attention over the memory, feed-forward."""

    def __init__(self, d_model: int, num_heads: int, ffn_dim: int, memory_dim: int, dropout: float):
        super().__init__()
        self.self_norm, self.cross_norm, self.ffn_norm = (nn.LayerNorm(d_model) for _ in range(3))
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.cross_attn = MultiHeadAttention(d_model, num_heads, dropout, kv_dim=memory_dim)
        self.ffn = FeedForward(d_model, ffn_dim, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        self_kv: tuple[torch.Tensor, torch.Tensor],
        self_mask: torch.Tensor | None,
        cross_kv: tuple[torch.Tensor, torch.Tensor],
        cross_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B,L,D) with keys/values already projected -> (x (B,L,D), cross weights (B,H,L,T))."""
        h = self.self_norm(x)
        x = x + self.dropout(self.self_attn.attend(self.self_attn.project_query(h), *self_kv, self_mask)[0])
        h = self.cross_norm(x)
        out, weights = self.cross_attn.attend(self.cross_attn.project_query(h), *cross_kv, cross_mask)
        x = x + self.dropout(out)
        return x + self.dropout(self.ffn(self.ffn_norm(x))), weights


class TransformerDecoder(nn.Module):
    """Autoregressive Transformer decoder with explicit KV-cache state.

    Args:
        config: sizes.
        vocab_size: output vocabulary V.
        memory_dim: encoder output size Dm.

    >>> dec = TransformerDecoder(TransformerDecoderConfig(d_model=16, num_heads=2, ffn_dim=32, num_layers=2), 10, 12)
    >>> dec = dec.eval()
    >>> memory, lengths = torch.randn(1, 7, 12), torch.tensor([7])
    >>> full = dec(torch.tensor([[2, 5, 6]]), memory, lengths).logits
    >>> state, mask = dec.init_state(memory, lengths), torch.ones(1, 7, dtype=torch.bool)
    >>> steps = []
    >>> for token in (2, 5, 6):
    ...     out = dec.step(torch.tensor([token]), state, memory, mask)
    ...     state = out.state
    ...     steps.append(out.logits)
    >>> torch.allclose(full, torch.stack(steps, 1), atol=1e-5), state.length
    (True, 3)
    """

    #: ``step`` accepts memory with one row per utterance (B,T,Dm) for N = B·W hypothesis rows.
    grouped_memory = True

    def __init__(self, config: TransformerDecoderConfig, vocab_size: int, memory_dim: int):
        super().__init__()
        self.config, self.vocab_size, self.memory_dim = config, vocab_size, memory_dim
        self.embedding = nn.Embedding(vocab_size, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(
            TransformerDecoderLayer(config.d_model, config.num_heads, config.ffn_dim, memory_dim, config.dropout)
            for _ in range(config.num_layers)
        )
        self.final_norm = nn.LayerNorm(config.d_model)
        self.output = nn.Linear(config.d_model, vocab_size)

    def _embed(self, tokens: torch.Tensor, start: int) -> torch.Tensor:
        """tokens (B,L) at positions start.. -> (B,L,D) scaled embeddings + sinusoidal positions."""
        positions = torch.arange(start, start + tokens.size(1), device=tokens.device)
        pe = sinusoidal_embedding(positions, self.config.d_model)
        return self.dropout(self.embedding(tokens) * math.sqrt(self.config.d_model) + pe)

    def init_state(
        self, memory: torch.Tensor, memory_lengths: torch.Tensor, generator: torch.Generator | None = None
    ) -> TransformerDecoderState:
        """Empty self-attention caches; cross-attention keys/values projected once from ``memory``."""
        batch = memory.size(0)
        heads, head_dim = self.config.num_heads, self.config.d_model // self.config.num_heads
        empty = memory.new_zeros(batch, heads, 0, head_dim)
        cross = [layer.cross_attn.project_key_value(memory) for layer in self.layers]
        return TransformerDecoderState(
            self_keys=[empty] * len(self.layers),
            self_values=[empty] * len(self.layers),
            cross_keys=[k for k, _ in cross],
            cross_values=[v for _, v in cross],
        )

    def step(
        self,
        prev_tokens: torch.Tensor,
        state: TransformerDecoderState,
        memory: torch.Tensor,
        memory_mask: torch.Tensor,
    ) -> StepOutput:
        """One token per row: prev_tokens (N,), memory_mask (N,T) -> StepOutput(logits (N,V), state, (N,T))."""
        x = self._embed(prev_tokens.unsqueeze(1), state.length)
        keys, values = [], []
        for i, layer in enumerate(self.layers):
            k, v = layer.self_attn.project_key_value(layer.self_norm(x))
            keys.append(torch.cat([state.self_keys[i], k], dim=2))
            values.append(torch.cat([state.self_values[i], v], dim=2))
            cross_kv = (state.cross_keys[i], state.cross_values[i])
            # The new token may attend to every cached one: causality holds by construction.
            x, weights = layer(x, (keys[-1], values[-1]), None, cross_kv, memory_mask.unsqueeze(1))
        logits = self.output(self.final_norm(x)).squeeze(1)
        new_state = TransformerDecoderState(keys, values, state.cross_keys, state.cross_values)
        return StepOutput(logits=logits, state=new_state, attention=weights.mean(1).squeeze(1))

    def forward(
        self,
        tokens_in: torch.Tensor,
        memory: torch.Tensor,
        memory_lengths: torch.Tensor,
        sampling_prob: float = 0.0,
        generator: torch.Generator | None = None,
        sample_tokens: bool = False,
    ) -> DecoderOutput:
        """Teacher forcing over tokens_in (B,L) in parallel: logits (B,L,V), attention (B,L,T).

        With ``sampling_prob > 0`` it runs step-wise with scheduled sampling (see ``run_stepwise``).
        """
        if sampling_prob > 0:
            return run_stepwise(self, tokens_in, memory, memory_lengths, sampling_prob, generator, sample_tokens)
        length = tokens_in.size(1)
        x = self._embed(tokens_in, 0)
        causal = torch.ones(length, length, dtype=torch.bool, device=x.device).tril().unsqueeze(0)
        cross_mask = lengths_to_mask(memory_lengths, memory.size(1)).unsqueeze(1)
        for layer in self.layers:
            self_kv = layer.self_attn.project_key_value(layer.self_norm(x))
            cross_kv = layer.cross_attn.project_key_value(memory)
            x, weights = layer(x, self_kv, causal, cross_kv, cross_mask)
        return DecoderOutput(logits=self.output(self.final_norm(x)), attention=weights.mean(1))
