"""Waveform augmentation for ASR training: speed, pitch, silence padding, a discrete echo, synthetic
reverberation, additive noise at a set SNR.

Each effect is a plain function of a float32 mono waveform; :class:`WaveAugment` draws which effects
to apply (and their parameters) from an explicit ``numpy.random.Generator`` and chains them in the
order a recording would see them: talker (speed, pitch) -> when the recording starts and stops (silence
padding) -> room (a discrete echo, then reverberation) -> microphone (noise).
Noise comes last so that the requested SNR is the one of the final signal. Nothing needs noise or RIR
files: noise is generated (white or pink) and room responses are exponentially decaying noise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping

import librosa
import numpy as np
import scipy.signal

from speechseq.audio import resample
from speechseq.errors import ConfigError

# 60 dB of amplitude decay = a factor 10**-3; exp(-a * rt60) = 1e-3 gives a = 3 ln(10) / rt60.
_DECAY_60DB = 3.0 * np.log(10.0)


@dataclass
class AugmentConfig:
    """Which waveform augmentations to apply and how strongly; every effect is off by default.

    Attributes:
        speed_prob: probability of speed perturbation.
        speed_factors: factors drawn uniformly (Kaldi uses 0.9, 1.0, 1.1); > 1 is faster/shorter.
        pitch_prob: probability of a pitch shift (duration kept).
        pitch_semitones: ``[low, high]`` range of the shift, drawn uniformly.
        noise_prob: probability of additive noise.
        noise_snr_db: ``[low, high]`` range of the signal-to-noise ratio in dB, drawn uniformly.
        noise_colors: noise spectra to choose from (``"white"``, ``"pink"``).
        reverb_prob: probability of synthetic reverberation.
        reverb_rt60: ``[low, high]`` range of the reverberation time (s), drawn uniformly.
        pad_prob: probability of adding silence before and after the speech. Corpora trimmed to the
            speech (FSDD) teach a model that speech starts at frame 0; one recording with a lead-in
            of 60 ms then breaks it (see ``tasks/las/fsdd_experiments.md``).
        pad_seconds: ``[low, high]`` range of each end's added silence (s), drawn uniformly and
            independently for the start and the end.
        pad_floor_db: ``[low, high]`` range of the padding's white-noise floor in dB relative to the
            utterance's peak (digital silence never occurs in a real recording).
        echo_prob: probability of a discrete echo (one reflecting wall, or espeak's ``echo`` voice
            setting: the unseen embedded voices ``announcer`` and ``Alicia`` have echo amplitudes 26 and
            50 in espeak's units, the training voices at most 15).
        echo_delay_ms: ``[low, high]`` range of the echo's delay in milliseconds, drawn uniformly.
        echo_gain: ``[low, high]`` range of the echo's amplitude relative to the direct sound (< 1).

    Example:
        >>> cfg = AugmentConfig(noise_prob=1.0, noise_snr_db=[10.0, 10.0])
        >>> AugmentConfig.from_dict(cfg.to_dict()) == cfg
        True
    """

    speed_prob: float = 0.0
    speed_factors: list[float] = field(default_factory=lambda: [0.9, 1.0, 1.1])
    pitch_prob: float = 0.0
    pitch_semitones: list[float] = field(default_factory=lambda: [-2.0, 2.0])
    noise_prob: float = 0.0
    noise_snr_db: list[float] = field(default_factory=lambda: [5.0, 30.0])
    noise_colors: list[str] = field(default_factory=lambda: ["white", "pink"])
    reverb_prob: float = 0.0
    reverb_rt60: list[float] = field(default_factory=lambda: [0.2, 0.8])
    pad_prob: float = 0.0
    pad_seconds: list[float] = field(default_factory=lambda: [0.0, 0.3])
    pad_floor_db: list[float] = field(default_factory=lambda: [-70.0, -40.0])
    echo_prob: float = 0.0
    echo_delay_ms: list[float] = field(default_factory=lambda: [20.0, 160.0])
    echo_gain: list[float] = field(default_factory=lambda: [0.1, 0.5])

    PROBABILITIES = ("speed_prob", "pitch_prob", "noise_prob", "reverb_prob", "pad_prob", "echo_prob")

    def __post_init__(self) -> None:
        for name in self.PROBABILITIES:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"AugmentConfig.{name} must be in [0, 1], got {getattr(self, name)}")
        spans = ("pitch_semitones", "noise_snr_db", "reverb_rt60", "pad_seconds", "pad_floor_db", "echo_delay_ms",
                 "echo_gain")
        for name in spans:
            span = getattr(self, name)
            if len(span) != 2 or span[0] > span[1]:
                raise ConfigError(f"AugmentConfig.{name} must be [low, high], got {span}")
        if not self.speed_factors or min(self.speed_factors) <= 0:
            raise ConfigError(f"AugmentConfig.speed_factors must be positive, got {self.speed_factors}")
        if self.pad_seconds[0] < 0:
            raise ConfigError(f"AugmentConfig.pad_seconds must be >= 0, got {self.pad_seconds}")
        if self.echo_delay_ms[0] <= 0:
            raise ConfigError(f"AugmentConfig.echo_delay_ms must be positive, got {self.echo_delay_ms}")
        if self.echo_gain[0] < 0 or self.echo_gain[1] >= 1:
            raise ConfigError(f"AugmentConfig.echo_gain must lie in [0, 1), got {self.echo_gain}")
        if self.reverb_rt60[0] <= 0:
            raise ConfigError(f"AugmentConfig.reverb_rt60 must be positive, got {self.reverb_rt60}")
        unknown = sorted(set(self.noise_colors) - set(_NOISE_COLORS))
        if unknown or not self.noise_colors:
            raise ConfigError(f"unknown noise color(s) {unknown}; choose from {list(_NOISE_COLORS)}")

    @property
    def enabled(self) -> bool:
        """Whether any effect can fire (a probability above zero)."""
        return any(getattr(self, name) > 0.0 for name in self.PROBABILITIES)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "AugmentConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ConfigError` naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown AugmentConfig key(s) {unknown}; valid keys: {sorted(known)}")
        return cls(**{key: list(value) if isinstance(value, tuple) else value for key, value in data.items()})


def speed_perturb(wave: np.ndarray, sample_rate: int, factor: float) -> np.ndarray:
    """Kaldi/sox-style speed change: play ``factor`` times faster, so duration / factor and pitch * factor.

    Implemented as resampling from ``sample_rate * factor`` to ``sample_rate`` (soxr).

    Returns:
        (round(S / factor),) float32.
    """
    if factor == 1.0:
        return np.asarray(wave, dtype=np.float32)
    return resample(wave, sample_rate * factor, sample_rate)


def pitch_shift(wave: np.ndarray, sample_rate: int, semitones: float) -> np.ndarray:
    """Shift pitch by ``semitones`` keeping the duration (librosa phase vocoder + soxr resampling).

    About 10 ms for 2 s of 16 kHz audio on one core once librosa is warm, so it can run in the
    data loader.

    Returns:
        (S,) float32.
    """
    if semitones == 0.0:
        return np.asarray(wave, dtype=np.float32)
    shifted = librosa.effects.pitch_shift(np.asarray(wave, dtype=np.float32), sr=sample_rate, n_steps=semitones)
    return shifted.astype(np.float32, copy=False)


def white_noise(num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """(num_samples,) Gaussian noise with a flat spectrum."""
    return rng.standard_normal(num_samples)


def pink_noise(num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """(num_samples,) noise with power spectral density ~ 1/f (-3 dB per octave).

    White noise shaped in the frequency domain by 1/sqrt(f); the DC bin is zeroed.
    """
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    freqs = np.arange(spectrum.shape[0], dtype=np.float64)
    freqs[0] = np.inf  # no DC offset
    return np.fft.irfft(spectrum / np.sqrt(freqs), n=num_samples)


_NOISE_COLORS = {"white": white_noise, "pink": pink_noise}


def add_noise(
    wave: np.ndarray, snr_db: float, rng: np.random.Generator, color: str = "white"
) -> np.ndarray:
    """Add generated noise scaled so that ``10 log10(P_signal / P_noise) == snr_db`` exactly.

    Powers are means over the whole utterance (silences included), as most recipes do.

    Returns:
        (S,) float32; not clipped, so the SNR stays exact (features are computed in float).
    """
    if color not in _NOISE_COLORS:
        raise ValueError(f"unknown noise color {color!r}; choose from {list(_NOISE_COLORS)}")
    signal = np.asarray(wave, dtype=np.float64)
    noise = _NOISE_COLORS[color](signal.shape[0], rng)
    signal_power = np.mean(signal**2)
    noise_power = np.mean(noise**2)
    if signal_power == 0.0 or noise_power == 0.0:
        return signal.astype(np.float32)
    noise *= np.sqrt(signal_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    return (signal + noise).astype(np.float32)


def pad_silence(
    wave: np.ndarray, sample_rate: int, lead: float, trail: float, floor_db: float, rng: np.random.Generator
) -> np.ndarray:
    """Add ``lead`` and ``trail`` seconds of a quiet white-noise floor before and after the waveform.

    The floor's RMS is ``floor_db`` dB below the waveform's peak; the original samples are kept as they are.

    Returns:
        (round(lead * rate) + S + round(trail * rate),) float32.
    """
    signal = np.asarray(wave, dtype=np.float32)
    before, after = int(round(lead * sample_rate)), int(round(trail * sample_rate))
    level = np.abs(signal).max(initial=0.0) * 10.0 ** (floor_db / 20.0)
    floor = (rng.standard_normal(before + after) * level).astype(np.float32)
    return np.concatenate([floor[:before], signal, floor[before:]])


def _with_peak_of(wet: np.ndarray, dry: np.ndarray) -> np.ndarray:
    """``wet`` scaled to ``dry``'s peak level (room effects change the timbre, not the level), as float32."""
    peak_in, peak_out = np.abs(dry).max(initial=0.0), np.abs(wet).max(initial=0.0)
    if peak_out > 0.0:
        wet = wet * (peak_in / peak_out)
    return wet.astype(np.float32)


def add_echo(wave: np.ndarray, sample_rate: int, delay_ms: float, gain: float) -> np.ndarray:
    """A recirculating echo: ``y[n] = x[n] + gain * y[n - d]`` with ``d = round(delay_ms * rate / 1000)``.

    The echo repeats, fading by ``gain`` each time (a feedback comb filter, as espeak-ng's ``echo``
    voice setting and a pair of parallel walls give); the output keeps the input's length and peak.

    Returns:
        (S,) float32.
    """
    if not 0.0 <= gain < 1.0:
        raise ValueError(f"echo gain must lie in [0, 1), got {gain}")
    signal = np.asarray(wave, dtype=np.float64)
    delay = max(1, int(round(delay_ms * sample_rate / 1000.0)))
    # Block recursion: each block of `delay` samples needs only the previous (finished) block, so the
    # loop runs S / delay times (scipy's lfilter with a (delay+1)-tap denominator is O(S * delay): 3.4 s
    # against 0.018 s for a 75 s batch, ad hoc, one thread).
    wet = signal.copy()
    for start in range(delay, wet.shape[0], delay):
        stop = min(start + delay, wet.shape[0])
        wet[start:stop] += gain * wet[start - delay : stop - delay]
    return _with_peak_of(wet, signal)


def synthetic_rir(sample_rate: int, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """Room impulse response: a direct-path impulse followed by exponentially decaying Gaussian noise.

    The envelope falls by 60 dB after ``rt60`` seconds (the definition of RT60); the response is
    cut there and scaled to unit energy so reverberation does not change the overall level much.

    Returns:
        (round(rt60 * sample_rate),) float64 with ``rir[0]`` the largest sample.
    """
    length = max(2, int(round(rt60 * sample_rate)))
    times = np.arange(length) / sample_rate
    rir = rng.standard_normal(length) * np.exp(-_DECAY_60DB * times / rt60)
    rir[0] = np.abs(rir).max() * 2.0  # direct sound dominates the early tail
    return rir / np.sqrt(np.sum(rir**2))


def reverberate(wave: np.ndarray, sample_rate: int, rt60: float, rng: np.random.Generator) -> np.ndarray:
    """Convolve with :func:`synthetic_rir` (FFT convolution), keep the input length and peak level.

    The direct path is at lag 0, so the output stays aligned with the input; the reverberant tail
    past the end is cut (a transcript's timing does not change).

    Returns:
        (S,) float32.
    """
    signal = np.asarray(wave, dtype=np.float64)
    wet = scipy.signal.fftconvolve(signal, synthetic_rir(sample_rate, rt60, rng))[: signal.shape[0]]
    return _with_peak_of(wet, signal)


class WaveAugment:
    """Random chain of speed, pitch, silence padding, echo, reverberation and noise, drawn from an explicit generator.

    Stateless: the same ``rng`` state gives the same output, so a data loader worker can derive its
    generator from (seed, epoch, index) and results reproduce.

    Example:
        >>> aug = WaveAugment(AugmentConfig(speed_prob=1.0, speed_factors=[1.1]), sample_rate=16000)
        >>> aug(np.zeros(16500, dtype=np.float32), np.random.default_rng(0)).shape
        (15000,)
    """

    def __init__(self, config: AugmentConfig, sample_rate: int) -> None:
        self.config = config
        self.sample_rate = sample_rate

    def __call__(self, wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Augment one utterance.

        Args:
            wave: (S,) float waveform at ``self.sample_rate``.
            rng: source of every random decision.

        Returns:
            (S',) float32; S' differs from S only under speed perturbation and silence padding.
        """
        cfg, sr = self.config, self.sample_rate
        wave = np.asarray(wave, dtype=np.float32)
        # Draw every decision up front, in a fixed order, so enabling one effect does not shift
        # the random stream of the others.
        do_speed, do_pitch, do_reverb, do_noise = rng.random(4) < [
            cfg.speed_prob, cfg.pitch_prob, cfg.reverb_prob, cfg.noise_prob
        ]
        factor = float(rng.choice(cfg.speed_factors))
        semitones = rng.uniform(*cfg.pitch_semitones)
        rt60 = rng.uniform(*cfg.reverb_rt60)
        snr_db = rng.uniform(*cfg.noise_snr_db)
        color = str(rng.choice(cfg.noise_colors))
        # Padding draws only when padding is on: configs without it keep their random streams.
        if cfg.pad_prob > 0.0:
            do_pad = rng.random() < cfg.pad_prob
            lead, trail = rng.uniform(*cfg.pad_seconds, size=2)
            floor_db = rng.uniform(*cfg.pad_floor_db)
        else:
            do_pad = False
        # Likewise the echo (added after padding): older configs keep their streams.
        if cfg.echo_prob > 0.0:
            do_echo = rng.random() < cfg.echo_prob
            delay_ms, gain = rng.uniform(*cfg.echo_delay_ms), rng.uniform(*cfg.echo_gain)
        else:
            do_echo = False
        if do_speed:
            wave = speed_perturb(wave, sr, factor)
        if do_pitch:
            wave = pitch_shift(wave, sr, semitones)
        if do_pad:
            wave = pad_silence(wave, sr, float(lead), float(trail), float(floor_db), rng)
        if do_echo:
            wave = add_echo(wave, sr, float(delay_ms), float(gain))
        if do_reverb:
            wave = reverberate(wave, sr, rt60, rng)
        if do_noise:
            wave = add_noise(wave, snr_db, rng, color)
        return wave
