"""Recurrent speech encoders (ConvBiLSTM, pyramidal BiLSTM listener) and the ``build_encoder`` factory.

Every encoder maps ``(features (B,T,F), lengths (B,)) -> (states (B,T',D), lengths' (B,))``, exposes
``output_dim`` (= D) and ``output_lengths(lengths)``, and is padding-invariant: frames within an utterance's
output length do not depend on how much padding follows it. States past the output length are zero.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from speechseq.errors import ConfigError
from speechseq.nn.masking import lengths_to_mask
from speechseq.nn.subsampling import Conv1dSubsampling


def run_bilstm(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Run a (bidirectional) batch-first LSTM so that padding never enters the valid outputs.

    On CUDA the input is packed (cuDNN runs packed sequences well). On CPU, packing sends the LSTM to
    PyTorch's step-by-step implementation, whose backward pass materialises and adds a full-size gradient
    per time step: backward 1.7 s against 0.27 s for one 40 × 212-frame pyramid layer at 2 threads (forward
    about 0.14 s either way; ``bench/bilstm_backward.py``). There each direction runs unpacked on oneDNN's
    fused kernel instead (``padded_bilstm``), with the same weights and the same values.

    Args:
        lstm: a ``batch_first=True`` LSTM.
        x: (B, T, D) inputs.
        lengths: (B,) valid lengths, all >= 1.

    Returns:
        (B, T, H * directions) outputs, zero past each length.
    """
    if x.device.type == "cpu" and isinstance(lstm, nn.LSTM) and lstm.proj_size == 0:  # not INT8 LSTMs
        return padded_bilstm(lstm, x, lengths)
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, _ = lstm(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.size(1))
    return out


def reversal_index(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """(B, T) frame index that reverses each utterance's first ``lengths[b]`` frames; padding stays put.

    An involution: gathering with it twice restores the input.

    >>> reversal_index(torch.tensor([4, 2]), 4).tolist()
    [[3, 2, 1, 0], [1, 0, 2, 3]]
    """
    time = torch.arange(frames, device=lengths.device).unsqueeze(0)  # (1, T)
    source = lengths.unsqueeze(1) - 1 - time  # (B, T)
    return torch.where(source >= 0, source, time)


def padded_bilstm(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``lstm`` over padded ``x`` (B, T, D), one unpacked pass per direction and layer (oneDNN on CPU).

    The forward direction reads the padding only after each utterance's last frame, so its valid outputs
    do not see it. The backward direction reads each utterance reversed within its length
    (``reversal_index``), then its outputs are put back in order. Dropout between layers is applied
    as ``nn.LSTM`` does (training only). Returns (B, T, H * directions), zero past each length.
    """
    lengths = lengths.to(x.device)
    reverse = reversal_index(lengths, x.size(1)).unsqueeze(-1)  # (B, T, 1), one for every layer

    def reversed_(y: torch.Tensor) -> torch.Tensor:
        return y.gather(1, reverse.expand_as(y))

    weights = lstm._flat_weights  # per layer and direction: w_ih, w_hh[, b_ih, b_hh]
    per_direction = 4 if lstm.bias else 2
    directions = 2 if lstm.bidirectional else 1
    zeros = x.new_zeros(1, x.size(0), lstm.hidden_size)
    for layer in range(lstm.num_layers):
        if layer > 0 and lstm.dropout > 0 and lstm.training:
            x = nn.functional.dropout(x, lstm.dropout, training=True)
        outputs = []
        for direction in range(directions):
            start = (layer * directions + direction) * per_direction
            params = weights[start : start + per_direction]
            inputs = x if direction == 0 else reversed_(x)
            out = torch.lstm(inputs, (zeros, zeros), params, lstm.bias, 1, 0.0, lstm.training, False, True)[0]
            outputs.append(out if direction == 0 else reversed_(out))
        x = torch.cat(outputs, dim=-1) if directions == 2 else outputs[0]
    return x * lengths_to_mask(lengths, x.size(1)).unsqueeze(-1).to(x.dtype)


def _check_lengths(lengths: torch.Tensor, name: str) -> None:
    if lengths.numel() and int(lengths.min()) < 1:
        raise ValueError(f"{name}: every utterance needs at least one frame, got lengths {lengths.tolist()}")


@dataclass
class ConvBiLSTMEncoderConfig:
    """Conv1d subsampling (2× or 4×) followed by BiLSTM layers.

    Attributes:
        input_dim: feature size F (e.g. 80 mel bins).
        conv_channels: channels of every Conv1d layer.
        conv_strides: one stride per Conv1d layer; (2, 2) subsamples 4×, (2,) or (2, 1) 2×.
        conv_kernel: odd kernel width of the Conv1d layers.
        hidden_size: LSTM units per direction; the output size is ``2 * hidden_size``.
        num_layers: number of stacked BiLSTM layers.
        dropout: dropout between BiLSTM layers and on the conv output.
    """

    input_dim: int = 80
    conv_channels: int = 256
    conv_strides: tuple[int, ...] = (2, 2)
    conv_kernel: int = 3
    hidden_size: int = 256
    num_layers: int = 3
    dropout: float = 0.1


class ConvBiLSTMEncoder(nn.Module):
    """Strided Conv1d front end + BiLSTM stack (the CTC baseline and RNN-LAS encoder).

    ``forward(features (B,T,F), lengths (B,)) -> (states (B,T',2H), lengths' (B,))`` with
    ``T' = ceil(T / 2)`` per stride-2 layer.

    >>> enc = ConvBiLSTMEncoder(ConvBiLSTMEncoderConfig(input_dim=40, conv_channels=32, hidden_size=16, num_layers=1))
    >>> states, lens = enc(torch.randn(2, 20, 40), torch.tensor([20, 13]))
    >>> tuple(states.shape), lens.tolist(), enc.output_dim
    ((2, 5, 32), [5, 4], 32)
    """

    def __init__(self, config: ConvBiLSTMEncoderConfig):
        super().__init__()
        self.config = config
        self.subsampling = Conv1dSubsampling(
            config.input_dim, config.conv_channels, tuple(config.conv_strides), config.conv_kernel
        )
        self.dropout = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(
            config.conv_channels,
            config.hidden_size,
            num_layers=config.num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        self.output_dim = 2 * config.hidden_size

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """(B,) feature lengths -> (B,) encoder output lengths."""
        return self.subsampling.output_lengths(lengths)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_lengths(lengths, type(self).__name__)
        x, lengths = self.subsampling(features, lengths)
        states = run_bilstm(self.lstm, self.dropout(x), lengths)
        return states, lengths


@dataclass
class PyramidBiLSTMEncoderConfig:
    """The LAS listener: BiLSTM layers, then pyramidal BiLSTM layers that each halve the time axis.

    Attributes:
        input_dim: feature size F.
        hidden_size: LSTM units per direction (output size ``2 * hidden_size``).
        num_bottom_layers: BiLSTM layers at full frame rate before the pyramid.
        num_pyramid_layers: pyramidal layers; the time axis shrinks by ``2 ** num_pyramid_layers``.
        dropout: dropout on every layer's output except the last.
    """

    input_dim: int = 80
    hidden_size: int = 256
    num_bottom_layers: int = 1
    num_pyramid_layers: int = 3
    dropout: float = 0.1


def concat_adjacent_frames(x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Halve the time axis by concatenating frames 2t and 2t+1: (B,T,D) -> (B,ceil(T/2),2D).

    Odd lengths are **padded**, not truncated: the last frame is paired with a zero frame, so no audio is
    dropped and the new length is ``ceil(L/2)``. Frames past each length are zeroed first, which makes the
    padded pair identical whether the utterance is alone or inside a longer batch.
    """
    x = x * lengths_to_mask(lengths, x.size(1)).unsqueeze(-1).to(x.dtype)
    if x.size(1) % 2:
        x = nn.functional.pad(x, (0, 0, 0, 1))
    batch, time, dim = x.shape
    return x.reshape(batch, time // 2, 2 * dim), torch.div(lengths + 1, 2, rounding_mode="floor")


class PyramidBiLSTMEncoder(nn.Module):
    """Listener of Listen-Attend-Spell (Chan et al., 2016): T -> T/2 -> T/4 -> T/8 with pyramidal BiLSTMs.

    ``forward(features (B,T,F), lengths (B,)) -> (states (B,T',2H), lengths' (B,))`` where each pyramid layer
    maps a length L to ``ceil(L/2)`` (see :func:`concat_adjacent_frames`).

    >>> cfg = PyramidBiLSTMEncoderConfig(input_dim=40, hidden_size=16, num_pyramid_layers=3)
    >>> states, lens = PyramidBiLSTMEncoder(cfg)(torch.randn(2, 17, 40), torch.tensor([17, 9]))
    >>> tuple(states.shape), lens.tolist()
    ((2, 3, 32), [3, 2])
    """

    def __init__(self, config: PyramidBiLSTMEncoderConfig):
        super().__init__()
        self.config = config
        hidden, layers = config.hidden_size, []
        in_dim = config.input_dim
        for _ in range(config.num_bottom_layers):
            layers.append(nn.LSTM(in_dim, hidden, batch_first=True, bidirectional=True))
            in_dim = 2 * hidden
        for _ in range(config.num_pyramid_layers):
            layers.append(nn.LSTM(2 * in_dim, hidden, batch_first=True, bidirectional=True))
            in_dim = 2 * hidden
        self.layers = nn.ModuleList(layers)
        self.dropout = nn.Dropout(config.dropout)
        self.output_dim = in_dim

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """(B,) feature lengths -> (B,) listener output lengths (ceil-halved per pyramid layer)."""
        for _ in range(self.config.num_pyramid_layers):
            lengths = torch.div(lengths + 1, 2, rounding_mode="floor")
        return lengths

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_lengths(lengths, type(self).__name__)
        x = features
        for i, lstm in enumerate(self.layers):
            if i >= self.config.num_bottom_layers:
                x, lengths = concat_adjacent_frames(x, lengths)
            x = run_bilstm(lstm, x, lengths)
            if i < len(self.layers) - 1:
                x = self.dropout(x)
        return x, lengths


def _encoder_registry() -> dict[str, tuple[type, type[nn.Module]]]:
    """kind -> (config dataclass, encoder class); imported here because those modules are larger."""
    from speechseq.nn.conformer import ConformerEncoder, ConformerEncoderConfig
    from speechseq.nn.transformer_encoder import TransformerEncoder, TransformerEncoderConfig

    return {
        "conv_bilstm": (ConvBiLSTMEncoderConfig, ConvBiLSTMEncoder),
        "pyramid_bilstm": (PyramidBiLSTMEncoderConfig, PyramidBiLSTMEncoder),
        "transformer": (TransformerEncoderConfig, TransformerEncoder),
        "conformer": (ConformerEncoderConfig, ConformerEncoder),
    }


ENCODER_KINDS = ("conv_bilstm", "pyramid_bilstm", "transformer", "conformer")


def encoder_config(kind: str, **fields: Any) -> Any:
    """Build the config dataclass of encoder ``kind`` from keyword fields (unknown keys are errors).

    >>> encoder_config("conformer", d_model=144).d_model
    144
    """
    registry = _encoder_registry()
    if kind not in registry:
        raise ConfigError(f"encoder kind {kind!r} is unknown; valid kinds: {', '.join(registry)}")
    config_cls = registry[kind][0]
    valid = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(fields) - valid)
    if unknown:
        raise ConfigError(f"encoder {kind!r}: unknown key(s) {unknown}; valid keys: {sorted(valid)}")
    return config_cls(**fields)


def build_encoder(config: Any) -> nn.Module:
    """Build an encoder from its config dataclass, or from a mapping ``{"kind": ..., **fields}``.

    >>> enc = build_encoder({"kind": "pyramid_bilstm", "input_dim": 40, "hidden_size": 8})
    >>> type(enc).__name__, enc.output_dim
    ('PyramidBiLSTMEncoder', 16)
    """
    registry = _encoder_registry()
    if isinstance(config, Mapping):
        fields = dict(config)
        kind = fields.pop("kind", None)
        if kind is None:
            raise ConfigError(f"encoder config needs a 'kind' key; valid kinds: {', '.join(registry)}")
        config = encoder_config(str(kind), **fields)
    for config_cls, encoder_cls in registry.values():
        if type(config) is config_cls:
            return encoder_cls(config)
    raise ConfigError(f"no encoder is built from {type(config).__name__}; valid kinds: {', '.join(registry)}")
