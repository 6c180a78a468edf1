"""Audio I/O and sample-rate handling: the one place where waveforms enter or leave speechseq.

Everything here works on float32 mono numpy arrays in [-1, 1]. Decoding is done with ``soundfile``
(libsndfile: WAV, FLAC, OGG/Vorbis, ...) and resampling with ``soxr`` (the same "HQ" resampler
that ``librosa.resample`` uses by default), because torchaudio/torchcodec cannot be imported on this
stack and ``datasets`` cannot decode audio (see ``docs/architecture.md``).

A *source* is a path (``str`` / ``os.PathLike``) or the ``{"path": ..., "bytes": ...}`` dict stored in a
``datasets.Audio(decode=False)`` column. In the dict, ``bytes`` wins over ``path`` when present: the Hub
stores the audio in ``bytes`` and keeps ``path`` only as an (often relative, unreadable) file name.

Example:
    >>> import numpy as np, tempfile, os
    >>> tone = np.sin(2 * np.pi * 440 * np.arange(8000) / 8000).astype(np.float32) * 0.5
    >>> path = os.path.join(tempfile.mkdtemp(), "tone.flac")
    >>> save_audio(path, tone, 8000)
    >>> audio_info(path).duration
    1.0
    >>> load_audio(path, sample_rate=16000).shape
    (16000,)
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Union

import numpy as np
import soundfile as sf
import soxr
import torch

from speechseq.errors import AudioError

AudioSource = Union[str, os.PathLike, Mapping[str, Any]]

# Integer PCM subtypes wrap around (not clip) when given floats outside [-1, 1]; we clip first.
_INTEGER_SUBTYPES = ("PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32")


@dataclass(frozen=True)
class AudioInfo:
    """What the header of an audio file says; no samples are decoded.

    Attributes:
        num_samples: frames per channel.
        sample_rate: in Hz.
        channels: number of interleaved channels.
        duration: ``num_samples / sample_rate`` in seconds.
    """

    num_samples: int
    sample_rate: int
    channels: int
    duration: float


def _open_source(source: AudioSource) -> tuple[str, Any]:
    """Resolve a source to ``(name used in errors, something soundfile can open)``.

    Raises:
        AudioError: the file is missing or empty, or the dict holds neither bytes nor a path.
    """
    if isinstance(source, Mapping):
        path, data = source.get("path"), source.get("bytes")
        name = str(path) if path else "<bytes>"
        if data is not None:
            if len(data) == 0:
                raise AudioError(name, "empty audio bytes")
            return name, io.BytesIO(data)
        if not path:
            raise AudioError(name, "audio dict has neither 'bytes' nor 'path'")
        source = path
    name = os.fspath(source)
    if not os.path.isfile(name):
        raise AudioError(name, "file not found")
    if os.path.getsize(name) == 0:
        raise AudioError(name, "empty file (0 bytes)")
    return name, name


def audio_info(source: AudioSource) -> AudioInfo:
    """Read only the header of an audio file (fast: use it to screen or bucket a corpus).

    Args:
        source: a path or a ``datasets.Audio(decode=False)`` dict.

    Raises:
        AudioError: missing, empty or not an audio file.
    """
    name, handle = _open_source(source)
    try:
        info = sf.info(handle)
    except (sf.SoundFileError, RuntimeError, TypeError) as err:
        raise AudioError(name, f"not a readable audio file ({err})") from err
    return AudioInfo(
        num_samples=int(info.frames),
        sample_rate=int(info.samplerate),
        channels=int(info.channels),
        duration=info.frames / info.samplerate,
    )


def load_audio(source: AudioSource, sample_rate: int | None = None) -> np.ndarray:
    """Decode a file into a float32 mono waveform, optionally resampled.

    Args:
        source: a path or a ``datasets.Audio(decode=False)`` dict (``bytes`` take precedence).
        sample_rate: target rate in Hz; ``None`` keeps the file's own rate.

    Returns:
        (S,) float32 array in [-1, 1]; channels are averaged (mono mix-down).

    Raises:
        AudioError: missing, empty, non-audio or corrupt input, zero samples, or NaN/inf samples
            (possible in float WAVs); the message names the file.
    """
    name, handle = _open_source(source)
    try:
        data, file_rate = sf.read(handle, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, TypeError) as err:
        raise AudioError(name, f"not a readable audio file ({err})") from err
    if data.shape[0] == 0:
        raise AudioError(name, "audio has zero samples")
    wave = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(wave).all():
        raise AudioError(name, "audio contains NaN or infinite samples")
    if sample_rate is not None and sample_rate != file_rate:
        wave = resample(wave, file_rate, sample_rate)
    return np.ascontiguousarray(wave, dtype=np.float32)


def resample(wave: np.ndarray, orig_sr: float, target_sr: float) -> np.ndarray:
    """Band-limited resampling with soxr ("HQ", the quality ``librosa.resample`` uses by default).

    Args:
        wave: (S,) waveform (any float dtype).
        orig_sr: its sample rate in Hz (may be fractional, e.g. for speed perturbation).
        target_sr: wanted rate in Hz.

    Returns:
        (round(S * target_sr / orig_sr),) float32 waveform; the input itself when the rates are equal.

    >>> resample(np.zeros(800, dtype=np.float32), 8000, 16000).shape
    (1600,)
    """
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {target_sr}")
    wave = np.asarray(wave, dtype=np.float32)
    if orig_sr == target_sr:
        return wave
    return soxr.resample(wave, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


def save_audio(
    path: str | os.PathLike,
    wave: np.ndarray | torch.Tensor,
    sample_rate: int,
    subtype: str | None = None,
) -> None:
    """Write a mono waveform; the container (WAV, FLAC, OGG, ...) follows the file suffix.

    Args:
        path: destination; parent folders are created.
        wave: (S,) float waveform in [-1, 1] (numpy or torch, any device).
        sample_rate: in Hz.
        subtype: libsndfile subtype (e.g. ``"FLOAT"`` for lossless float WAV); default is the
            container's default (16-bit PCM for WAV/FLAC, Vorbis for OGG).

    Raises:
        AudioError: the waveform is empty or not 1-D, or the suffix is not a known format.
    """
    if isinstance(wave, torch.Tensor):
        wave = wave.detach().to("cpu", torch.float32).numpy()
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1 or wave.size == 0:
        raise AudioError(path, f"expected a non-empty 1-D waveform, got shape {wave.shape}")
    suffix = Path(path).suffix.lstrip(".").upper()
    fmt = "OGG" if suffix == "OGA" else suffix
    if fmt not in sf.available_formats():
        raise AudioError(path, f"unknown audio format {Path(path).suffix!r}")
    chosen = subtype or sf.default_subtype(fmt)
    if chosen in _INTEGER_SUBTYPES:
        wave = np.clip(wave, -1.0, 1.0)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(os.fspath(path), wave, int(sample_rate), subtype=chosen, format=fmt)


def rms_db(wave: np.ndarray) -> float:
    """Root-mean-square level in dB relative to full scale (a full-scale sine is about -3 dB).

    Returns ``-inf`` for an empty or all-zero waveform.
    """
    wave = np.asarray(wave, dtype=np.float64)
    if wave.size == 0:
        return float("-inf")
    power = float(np.mean(wave * wave))
    return float(10.0 * np.log10(power)) if power > 0 else float("-inf")


def is_silent(wave: np.ndarray, threshold_db: float = -60.0) -> bool:
    """True when the RMS level of ``wave`` is below ``threshold_db`` dBFS (used by data screening).

    >>> is_silent(np.zeros(100)), is_silent(np.full(100, 0.1))
    (True, False)
    """
    return rms_db(wave) < threshold_db
