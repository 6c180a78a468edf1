"""Post-training dynamic INT8 quantisation of ASR models for CPU inference.

``torch.ao.quantization.quantize_dynamic`` stores the weights of every ``nn.LSTM``, ``nn.LSTMCell`` and
``nn.Linear`` as int8 and quantises their input activations on the fly, per batch; everything else (the
log-mel front end, convolutions, embeddings, attention energies) stays float32. It needs no calibration data
and no retraining, the recurrent layers that dominate LAS/CTC models shrink about 4×, and on x86 CPUs (fbgemm
/ onednn kernels) matrix products run in int8.

The quantised model is a copy of the same class, so ``transcribe``, ``encode``, ``decode`` and the decoding
API of :mod:`speechseq.inference` work unchanged. It runs on CPU only and is meant for inference: quantise
right after ``from_pretrained`` and keep the float checkpoint as the thing you save and share
(``save_pretrained`` of a quantised model is refused by safetensors: its packed weights are not tensors).

>>> from speechseq.models import from_pretrained
>>> model = from_pretrained("runs/ctc/final")              # doctest: +SKIP
>>> small = quantize_dynamic(model)                        # doctest: +SKIP
>>> small.transcribe([wave])                               # doctest: +SKIP
['three seven']
>>> state_dict_bytes(small) / state_dict_bytes(model)      # doctest: +SKIP
0.29
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import torch
from torch import nn

from speechseq.errors import ConfigError

# The layer types whose weights become int8. Embeddings and convolutions have no dynamic kernels.
QUANTIZED_LAYERS: frozenset[type[nn.Module]] = frozenset({nn.LSTM, nn.LSTMCell, nn.Linear})


def quantize_dynamic(model: Any, dtype: torch.dtype = torch.qint8) -> Any:
    """A dynamically quantised copy of ``model`` (LSTM, LSTMCell and Linear weights in int8), in eval mode.

    Args:
        model: any speechseq model (ASR model or language model) on the CPU; it is not modified.
        dtype: ``torch.qint8`` (int8 weights) or ``torch.float16`` (fp16 weights, for comparison).

    Returns:
        A model of the same class with the same methods, for CPU inference.

    Raises:
        ConfigError: the model is not on the CPU, the dtype is not supported, or the CPU has no
            quantised kernels.

    Example:
        >>> from speechseq.models.lm import LMConfig, RNNLM
        >>> lm = RNNLM(LMConfig(vocab_size=12, embedding_dim=16, hidden_size=32, num_layers=1))
        >>> small = quantize_dynamic(lm)
        >>> type(small).__name__, type(small.lstm).__name__, type(lm.lstm).__name__
        ('RNNLM', 'LSTM', 'LSTM')
        >>> type(small.lstm).__module__.endswith("dynamic.modules.rnn")
        True
    """
    if dtype not in (torch.qint8, torch.float16):
        raise ConfigError(f"quantize_dynamic: dtype must be torch.qint8 or torch.float16, got {dtype}")
    devices = {p.device.type for p in model.parameters()}
    if devices - {"cpu"}:
        raise ConfigError(f"quantize_dynamic: dynamic quantisation runs on CPU only; the model is on {sorted(devices)}")
    if not torch.backends.quantized.supported_engines or torch.backends.quantized.engine == "none":
        raise ConfigError("quantize_dynamic: this PyTorch build has no quantised CPU engine")
    with warnings.catch_warnings():
        # torch.ao.quantization announces its move to torchao; the eager API still works in torch < 2.14
        # (the range pyproject.toml admits).
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)
        warnings.filterwarnings("ignore", message=r".*quantized tensor creation functions.*")
        quantized = torch.ao.quantization.quantize_dynamic(model, quantized_layer_names(model), dtype=dtype, inplace=False)
    return quantized.eval()


def quantized_layer_names(model: nn.Module) -> set[str]:
    """Names of the layers to quantise: every LSTM / LSTMCell / Linear except those a parent lists in its
    ``float_submodules`` (layers whose weights it reads directly, e.g. the fused location-attention energies).

    >>> from speechseq.nn.attention import LocationAwareAttention
    >>> sorted(quantized_layer_names(LocationAwareAttention(8, 6, 4)))
    ['memory_proj', 'query_proj']
    """
    keep_float = {
        f"{parent}.{child}" if parent else child
        for parent, module in model.named_modules()
        for child in getattr(module, "float_submodules", ())
    }
    return {
        name
        for name, module in model.named_modules()
        if type(module) in QUANTIZED_LAYERS and name not in keep_float
    }


def state_dict_bytes(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``: the size of the weights as stored (packed int8 included).

    >>> state_dict_bytes(nn.Linear(256, 256)) > 256 * 256 * 4
    True
    """
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def count_quantized_layers(model: nn.Module) -> int:
    """Number of LSTM / LSTMCell / Linear layers replaced by dynamically quantised ones (0 for a float model)."""
    import torch.ao.nn.quantized.dynamic as dynamic

    kinds = (dynamic.LSTM, dynamic.LSTMCell, dynamic.Linear)
    return sum(1 for m in model.modules() if isinstance(m, kinds))
