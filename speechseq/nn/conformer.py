"""Conformer encoder (Gulati et al. 2020): macaron feed-forward, relative-position MHSA, convolution module.

Positions: **relative** (Transformer-XL style, see ``RelPositionMultiHeadAttention``); no absolute encoding
is added. Padding: key padding mask in self-attention, and the convolution module zeroes padded frames
before its depthwise convolution, so a valid frame never sees another utterance's padding. The module uses
LayerNorm instead of the paper's BatchNorm after the depthwise convolution: batch statistics would mix
padded frames and other utterances into each output and break padding invariance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from speechseq.nn.masking import lengths_to_mask
from speechseq.nn.mha import RelPositionMultiHeadAttention
from speechseq.nn.subsampling import Conv2dSubsampling
from speechseq.nn.transformer_encoder import FeedForward


@dataclass
class ConformerEncoderConfig:
    """Conformer encoder.

    Attributes:
        input_dim: feature size F.
        d_model: model width (the output size).
        num_heads: attention heads.
        ffn_dim: hidden size of each of the two (half-step) feed-forward blocks.
        num_layers: Conformer blocks.
        conv_kernel: odd kernel width of the depthwise convolution.
        dropout: dropout on residual branches and attention weights.
        subsampling_channels: channels of the two stride-2 Conv2d layers (4× subsampling).
    """

    input_dim: int = 80
    d_model: int = 256
    num_heads: int = 4
    ffn_dim: int = 1024
    num_layers: int = 8
    conv_kernel: int = 15
    dropout: float = 0.1
    subsampling_channels: int = 256


class ConvolutionModule(nn.Module):
    """Pointwise conv + GLU, padding-aware depthwise conv, LayerNorm, SiLU, pointwise conv.

    ``forward(x (B,T,D), valid (B,T) bool) -> (B,T,D)``.

    >>> m = ConvolutionModule(8, kernel_size=5)
    >>> tuple(m(torch.randn(2, 7, 8), torch.ones(2, 7, dtype=torch.bool)).shape)
    (2, 7, 8)
    """

    def __init__(self, d_model: int, kernel_size: int, dropout: float = 0.0):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"conv_kernel must be odd, got {kernel_size}")
        self.norm = nn.LayerNorm(d_model)
        self.pointwise_in = nn.Conv1d(d_model, 2 * d_model, 1)
        self.depthwise = nn.Conv1d(d_model, d_model, kernel_size, padding=kernel_size // 2, groups=d_model)
        self.depthwise_norm = nn.LayerNorm(d_model)
        self.pointwise_out = nn.Conv1d(d_model, d_model, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        h = nn.functional.glu(self.pointwise_in(self.norm(x).transpose(1, 2)), dim=1)  # (B, D, T)
        h = h * valid.unsqueeze(1).to(h.dtype)  # zero padding: the conv then sees what it sees alone
        h = self.depthwise(h).transpose(1, 2)  # (B, T, D)
        h = nn.functional.silu(self.depthwise_norm(h))
        return self.dropout(self.pointwise_out(h.transpose(1, 2)).transpose(1, 2))


class ConformerBlock(nn.Module):
    """½FFN → MHSA (relative) → conv module → ½FFN → LayerNorm, each with a residual connection.

    ``forward(x (B,T,D), valid (B,T) bool) -> (B,T,D)``.

    >>> block = ConformerBlock(16, 4, 32, kernel_size=3)
    >>> tuple(block(torch.randn(2, 5, 16), torch.ones(2, 5, dtype=torch.bool)).shape)
    (2, 5, 16)
    """

    def __init__(self, d_model: int, num_heads: int, ffn_dim: int, kernel_size: int, dropout: float = 0.1):
        super().__init__()
        self.ffn1_norm, self.ffn2_norm = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.ffn1 = FeedForward(d_model, ffn_dim, dropout, activation=nn.SiLU)
        self.ffn2 = FeedForward(d_model, ffn_dim, dropout, activation=nn.SiLU)
        self.attn_norm = nn.LayerNorm(d_model)
        self.attn = RelPositionMultiHeadAttention(d_model, num_heads, dropout)
        self.conv = ConvolutionModule(d_model, kernel_size, dropout)
        self.final_norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        x = x + 0.5 * self.dropout(self.ffn1(self.ffn1_norm(x)))
        x = x + self.dropout(self.attn(self.attn_norm(x), valid.unsqueeze(1))[0])
        x = x + self.conv(x, valid)
        x = x + 0.5 * self.dropout(self.ffn2(self.ffn2_norm(x)))
        return self.final_norm(x)


class ConformerEncoder(nn.Module):
    """Conv2d 4× subsampling + Conformer blocks with relative positional self-attention.

    ``forward(features (B,T,F), lengths (B,)) -> (states (B,T',d_model), lengths' (B,))``.

    >>> cfg = ConformerEncoderConfig(input_dim=40, d_model=32, num_heads=4, ffn_dim=64, num_layers=2,
    ...                              conv_kernel=5, subsampling_channels=8)
    >>> states, lens = ConformerEncoder(cfg)(torch.randn(2, 30, 40), torch.tensor([30, 17]))
    >>> tuple(states.shape), lens.tolist()
    ((2, 8, 32), [8, 5])
    """

    def __init__(self, config: ConformerEncoderConfig):
        super().__init__()
        self.config = config
        self.subsampling = Conv2dSubsampling(config.input_dim, config.subsampling_channels, config.d_model)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            ConformerBlock(config.d_model, config.num_heads, config.ffn_dim, config.conv_kernel, config.dropout)
            for _ in range(config.num_layers)
        )
        self.output_dim = config.d_model

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """(B,) feature lengths -> (B,) encoder output lengths."""
        return self.subsampling.output_lengths(lengths)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, lengths = self.subsampling(features, lengths)
        x = self.dropout(x)
        valid = lengths_to_mask(lengths, x.size(1))
        for block in self.blocks:
            x = block(x, valid)
        return x * valid.unsqueeze(-1).to(x.dtype), lengths
