"""Padding-aware convolutional time subsampling (Conv1d and Conv2d front ends of the encoders).

Every convolution uses "same" padding (``kernel // 2``) and the frames past each utterance's length are set
to zero before every convolution. A valid output frame then sees exactly what it would see if the utterance
were alone (its own frames, then zeros), so the output within the new length is padding-invariant.
Length arithmetic per layer: ``L' = floor((L + 2*(k//2) - k) / s) + 1`` (for k=3, s=2: ``ceil(L/2)``).
"""

from __future__ import annotations

import torch
from torch import nn

from speechseq.nn.masking import lengths_to_mask


def conv_output_lengths(lengths: torch.Tensor, kernel_size: int, stride: int) -> torch.Tensor:
    """Lengths after one "same"-padded convolution: (B,) -> (B,)."""
    padding = kernel_size // 2
    return torch.div(lengths + 2 * padding - kernel_size, stride, rounding_mode="floor") + 1


def _zero_time_padding(x: torch.Tensor, lengths: torch.Tensor, time_dim: int) -> torch.Tensor:
    """Zero every frame of ``x`` at or past ``lengths`` along ``time_dim`` (batch is dim 0)."""
    mask = lengths_to_mask(lengths, x.size(time_dim))
    shape = [1] * x.dim()
    shape[0], shape[time_dim] = mask.size(0), mask.size(1)
    return x * mask.view(shape).to(x.dtype)


class Conv1dSubsampling(nn.Module):
    """Stack of strided Conv1d + GELU layers over time, features as channels.

    Args:
        in_dim: input feature size F.
        channels: output channels of every layer (the output size).
        strides: one stride per layer; the product is the subsampling factor (e.g. (2, 2) → 4×).
        kernel_size: odd kernel width.

    Shapes: ``forward(x (B,T,F), lengths (B,)) -> (y (B,T',channels), lengths' (B,))``.

    >>> sub = Conv1dSubsampling(80, 64, strides=(2, 2))
    >>> y, lens = sub(torch.randn(2, 50, 80), torch.tensor([50, 33]))
    >>> tuple(y.shape), lens.tolist()
    ((2, 13, 64), [13, 9])
    """

    def __init__(self, in_dim: int, channels: int, strides: tuple[int, ...] = (2, 2), kernel_size: int = 3):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.kernel_size = kernel_size
        self.strides = tuple(strides)
        dims = [in_dim] + [channels] * len(self.strides)
        self.convs = nn.ModuleList(
            nn.Conv1d(dims[i], dims[i + 1], kernel_size, stride=s, padding=kernel_size // 2)
            for i, s in enumerate(self.strides)
        )
        self.activation = nn.GELU()

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """(B,) input lengths -> (B,) output lengths."""
        for stride in self.strides:
            lengths = conv_output_lengths(lengths, self.kernel_size, stride)
        return lengths

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.transpose(1, 2)  # (B, F, T)
        for conv, stride in zip(self.convs, self.strides):
            x = _zero_time_padding(x, lengths, time_dim=2)
            x = self.activation(conv(x))
            lengths = conv_output_lengths(lengths, self.kernel_size, stride)
        x = _zero_time_padding(x, lengths, time_dim=2)
        return x.transpose(1, 2), lengths


class Conv2dSubsampling(nn.Module):
    """Two (or more) strided Conv2d + ReLU layers over (time, frequency), then a linear map to ``out_dim``.

    The usual 4× front end of Transformer/Conformer ASR encoders (two layers of stride 2), made
    padding-aware: padded frames are zeroed before every convolution.

    Shapes: ``forward(x (B,T,F), lengths (B,)) -> (y (B,T',out_dim), lengths' (B,))``.

    >>> sub = Conv2dSubsampling(80, 32, out_dim=64)
    >>> y, lens = sub(torch.randn(2, 50, 80), torch.tensor([50, 33]))
    >>> tuple(y.shape), lens.tolist()
    ((2, 13, 64), [13, 9])
    """

    def __init__(
        self,
        in_dim: int,
        channels: int,
        out_dim: int,
        strides: tuple[int, ...] = (2, 2),
        kernel_size: int = 3,
    ):
        super().__init__()
        self.kernel_size = kernel_size
        self.strides = tuple(strides)
        convs, freq, in_ch = [], in_dim, 1
        for stride in self.strides:
            convs.append(nn.Conv2d(in_ch, channels, kernel_size, stride=stride, padding=kernel_size // 2))
            freq = (freq + 2 * (kernel_size // 2) - kernel_size) // stride + 1
            in_ch = channels
        self.convs = nn.ModuleList(convs)
        self.proj = nn.Linear(channels * freq, out_dim)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """(B,) input lengths -> (B,) output lengths."""
        for stride in self.strides:
            lengths = conv_output_lengths(lengths, self.kernel_size, stride)
        return lengths

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.unsqueeze(1)  # (B, 1, T, F)
        for conv, stride in zip(self.convs, self.strides):
            x = _zero_time_padding(x, lengths, time_dim=2)
            x = torch.relu(conv(x))
            lengths = conv_output_lengths(lengths, self.kernel_size, stride)
        batch, channels, time, freq = x.shape
        y = self.proj(x.permute(0, 2, 1, 3).reshape(batch, time, channels * freq))
        return _zero_time_padding(y, lengths, time_dim=1), lengths
