"""Speaker equalisation: per-speaker mean normalisation of the log spectrum, applied to the audio.

Kaldi normalises features per speaker (CMN over all of a speaker's utterances); this does the same on the
waveform, so that any model and front end can use it. A speaker's *long-term spectrum* is the mean natural-log
STFT magnitude over the loud frames of all their recordings, smoothed along frequency. Filtering each of their
recordings by ``reference − speaker`` (in the log domain) gives every speaker the reference's long-term
spectrum: what the recording chain and the speaker's vocal tract add to every sound alike is gone, what tells
one word from another stays. It needs a speaker's audio, no transcripts. With per-utterance (not per-band)
feature normalisation it halved the FSDD fold models' mean held-out-speaker WER, 23.2 -> 12.1 %
(``tasks/las/fsdd_experiments.md``).

Example (a speaker recorded through a bright microphone is brought to a flat reference):
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> config = EqualizerConfig()
    >>> noise = [rng.standard_normal(8000).astype(np.float32) * 0.1 for _ in range(3)]
    >>> bright = [np.diff(w, prepend=0.0).astype(np.float32) for w in noise]   # +6 dB per octave
    >>> ref, spk = long_term_spectrum(noise, 8000, config), long_term_spectrum(bright, 8000, config)
    >>> fixed = [equalize(w, 8000, ref - spk, config) for w in bright]
    >>> bool(np.abs(long_term_spectrum(fixed, 8000, config) - ref)[4:-4].max() < 0.1)
    True
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterable

import librosa
import numpy as np
from scipy.ndimage import uniform_filter1d

from speechseq.errors import AudioError


@dataclasses.dataclass(frozen=True)
class EqualizerConfig:
    """Analysis settings; the FFT size follows the sample rate so that one curve means the same in Hz.

    Attributes:
        window_seconds: STFT window (rounded to a power-of-two FFT size; 32 ms -> 256 at 8 kHz).
        hop_seconds: STFT hop.
        top_db: frames more than this below a recording's loudest frame are silence and left out of the mean
            (a speaker's long pauses would otherwise weigh their recording noise in).
        smooth_hz: width of the moving average along frequency, wider than a man's harmonic spacing, so the
            curve holds the spectral envelope and not the speaker's mean pitch.
    """

    window_seconds: float = 0.032
    hop_seconds: float = 0.008
    top_db: float = 30.0
    smooth_hz: float = 150.0

    def n_fft(self, sample_rate: int) -> int:
        """FFT size at ``sample_rate``: the power of two closest to ``window_seconds``."""
        return 2 ** round(math.log2(self.window_seconds * sample_rate))

    def hop(self, sample_rate: int) -> int:
        """Hop in samples at ``sample_rate``."""
        return max(1, round(self.hop_seconds * sample_rate))


def _stft(wave: np.ndarray, sample_rate: int, config: EqualizerConfig) -> np.ndarray:
    """Complex STFT (K, frames), K = n_fft // 2 + 1."""
    return librosa.stft(wave, n_fft=config.n_fft(sample_rate), hop_length=config.hop(sample_rate))


def long_term_spectrum(
    waves: Iterable[np.ndarray], sample_rate: int, config: EqualizerConfig, source: str = "recordings"
) -> np.ndarray:
    """Mean log magnitude per STFT bin over the loud frames of ``waves`` (one speaker's recordings).

    Args:
        waves: float mono recordings at ``sample_rate``.
        sample_rate: their rate in Hz.
        config: analysis settings.
        source: what the recordings are (a speaker, a folder), for the error message.

    Returns:
        (K,) float64 natural-log magnitudes, K = n_fft // 2 + 1, smoothed over ``smooth_hz``.

    Raises:
        AudioError: when no recording has a frame above silence (nothing to measure).
    """
    total, count = None, 0
    for wave in waves:
        magnitude = np.abs(_stft(np.asarray(wave, dtype=np.float32), sample_rate, config)) + 1e-8  # (K, N)
        level_db = 10.0 * np.log10((magnitude**2).sum(axis=0))
        loud = np.log(magnitude[:, level_db >= level_db.max() - config.top_db])
        frame_sum = loud.sum(axis=1, dtype=np.float64)  # float64 throughout: a curve saved as JSON reloads exactly
        total = frame_sum if total is None else total + frame_sum
        count += loud.shape[1]
    if total is None or count == 0:
        raise AudioError(source, "no recordings (or none with sound) to measure a long-term spectrum from")
    bin_hz = sample_rate / config.n_fft(sample_rate)
    width = max(1, round(config.smooth_hz / bin_hz))
    return uniform_filter1d(total / count, size=width, mode="nearest")


def equalize(wave: np.ndarray, sample_rate: int, log_gain: np.ndarray, config: EqualizerConfig) -> np.ndarray:
    """Filter ``wave`` by ``exp(log_gain)`` per STFT bin (overlap-add), keeping its length.

    The result is scaled down when it would clip, never up: the gain of a recording is not information
    any model here keeps (it normalises each utterance).

    Args:
        wave: (S,) float mono.
        sample_rate: its rate (fixes the FFT size ``log_gain`` must match).
        log_gain: (K,) natural-log gain per bin, e.g. ``reference - long_term_spectrum(speaker)``.
        config: the settings the curves were measured with.

    Returns:
        (S,) float32.

    Raises:
        ValueError: when ``log_gain`` does not have the bins of an STFT at ``sample_rate``.
    """
    spectrum = _stft(np.asarray(wave, dtype=np.float32), sample_rate, config)
    if log_gain.shape != (spectrum.shape[0],):
        raise ValueError(
            f"equalize: gain curve has {log_gain.shape[0]} bins, audio at {sample_rate} Hz has {spectrum.shape[0]}"
            " (curves are tied to the sample rate they were measured at)"
        )
    out = librosa.istft(spectrum * np.exp(log_gain)[:, None], hop_length=config.hop(sample_rate), length=len(wave))
    peak = float(np.abs(out).max()) if out.size else 0.0
    return (out * (0.99 / peak) if peak > 0.99 else out).astype(np.float32)
