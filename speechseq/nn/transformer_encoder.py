"""Transformer speech encoder: Conv2d 4× subsampling, absolute sinusoidal positions, pre-LN layers.

Positions: **absolute sinusoidal** encodings added after the subsampling (scaled input, as in ESPnet).
Padding: a key padding mask keeps padded frames out of self-attention; the subsampling is padding-aware;
every other operation is per frame, so outputs within each length are padding-invariant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from speechseq.nn.masking import lengths_to_mask
from speechseq.nn.mha import MultiHeadAttention, sinusoidal_embedding
from speechseq.nn.subsampling import Conv2dSubsampling


@dataclass
class TransformerEncoderConfig:
    """Transformer encoder.

    Attributes:
        input_dim: feature size F.
        d_model: model width (the output size).
        num_heads: attention heads.
        ffn_dim: hidden size of the position-wise feed-forward blocks.
        num_layers: encoder layers.
        dropout: dropout on residual branches and attention weights.
        subsampling_channels: channels of the two stride-2 Conv2d layers (4× subsampling).
    """

    input_dim: int = 80
    d_model: int = 256
    num_heads: int = 4
    ffn_dim: int = 1024
    num_layers: int = 6
    dropout: float = 0.1
    subsampling_channels: int = 256


class FeedForward(nn.Module):
    """Position-wise feed-forward block: (B,T,D) -> (B,T,D), with the activation in between.

    >>> tuple(FeedForward(8, 32)(torch.randn(2, 3, 8)).shape)
    (2, 3, 8)
    """

    def __init__(self, d_model: int, hidden: int, dropout: float = 0.0, activation: type[nn.Module] = nn.ReLU):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d_model, hidden), activation(), nn.Dropout(dropout), nn.Linear(hidden, d_model)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class TransformerEncoderLayer(nn.Module):
    """Pre-LayerNorm self-attention + feed-forward layer: ``forward(x (B,T,D), mask (B,1,T)) -> (B,T,D)``.

    >>> layer = TransformerEncoderLayer(16, 4, 32)
    >>> tuple(layer(torch.randn(2, 5, 16), torch.ones(2, 1, 5, dtype=torch.bool)).shape)
    (2, 5, 16)
    """

    def __init__(self, d_model: int, num_heads: int, ffn_dim: int, dropout: float = 0.1):
        super().__init__()
        self.attn_norm = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, num_heads, dropout)
        self.ffn_norm = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, ffn_dim, dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.attn_norm(x)
        x = x + self.dropout(self.attn(h, h, mask)[0])
        return x + self.dropout(self.ffn(self.ffn_norm(x)))


class TransformerEncoder(nn.Module):
    """Conv2d 4× subsampling + sinusoidal positions + Transformer layers.

    ``forward(features (B,T,F), lengths (B,)) -> (states (B,T',d_model), lengths' (B,))``,
    ``T' = ceil(ceil(T/2)/2)``.

    >>> cfg = TransformerEncoderConfig(input_dim=40, d_model=32, num_heads=4, ffn_dim=64, num_layers=2,
    ...                                subsampling_channels=8)
    >>> states, lens = TransformerEncoder(cfg)(torch.randn(2, 30, 40), torch.tensor([30, 17]))
    >>> tuple(states.shape), lens.tolist()
    ((2, 8, 32), [8, 5])
    """

    def __init__(self, config: TransformerEncoderConfig):
        super().__init__()
        self.config = config
        self.subsampling = Conv2dSubsampling(config.input_dim, config.subsampling_channels, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(config.d_model, config.num_heads, config.ffn_dim, config.dropout)
            for _ in range(config.num_layers)
        )
        self.final_norm = nn.LayerNorm(config.d_model)
        self.output_dim = config.d_model

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """(B,) feature lengths -> (B,) encoder output lengths."""
        return self.subsampling.output_lengths(lengths)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, lengths = self.subsampling(features, lengths)
        positions = torch.arange(x.size(1), device=x.device)
        x = x * math.sqrt(self.config.d_model) + sinusoidal_embedding(positions, x.size(-1)).to(x.dtype)
        x = self.dropout(x)
        valid = lengths_to_mask(lengths, x.size(1))
        for layer in self.layers:
            x = layer(x, valid.unsqueeze(1))
        return self.final_norm(x) * valid.unsqueeze(-1).to(x.dtype), lengths
