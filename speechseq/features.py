"""Log-mel front end shared by every model, SpecAugment, and Griffin-Lim inversion.

One :class:`FeatureConfig` describes the features of a model and is stored with every checkpoint: a
mismatch between acoustic model and vocoder settings is the most reported cause of buzzing TTS output.
The defaults equal the Tacotron 2 / HiFi-GAN references at 22.05 kHz (n_fft 1024, hop 256, win 1024,
80 mels, 0-8000 Hz, natural log of the magnitude clamped at 1e-5); ``FeatureConfig.asr_16k()`` is the
usual 25 ms / 10 ms ASR front end.

The STFT is ``torch.stft`` (no torchaudio on this stack) and the filterbank ``librosa.filters.mel``
(Slaney scale and norm, as in HiFi-GAN), so ``LogMel`` equals ``librosa.feature.melspectrogram(...,
power=1.0, pad_mode="reflect")`` followed by the same log.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

import librosa
import torch
from torch import nn

from speechseq.errors import ConfigError
from speechseq.nn.masking import lengths_to_mask


@dataclass
class FeatureConfig:
    """Settings of the log-mel front end.

    Attributes:
        sample_rate: Hz of the input waveform.
        n_fft: FFT size (samples); ``n_fft // 2 + 1`` linear bins.
        hop_length: frame shift in samples.
        win_length: Hann window length in samples (<= n_fft; centred in the FFT frame).
        n_mels: mel bands.
        fmin: lowest mel filter edge in Hz.
        fmax: highest mel filter edge in Hz (<= sample_rate / 2).
        log_floor: magnitudes are clamped to this before the natural log.
        center: True pads ``n_fft // 2`` on each side (frame t centred on sample t * hop);
            False pads ``(n_fft - hop) // 2`` (the HiFi-GAN convention). Both reflect each
            utterance's own samples.

    Example:
        >>> cfg = FeatureConfig.asr_16k()
        >>> cfg.num_frames(16000), FeatureConfig.from_dict(cfg.to_dict()) == cfg
        (101, True)
    """

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float = 8000.0
    log_floor: float = 1e-5
    center: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.win_length <= self.n_fft:
            raise ConfigError(f"win_length must be in (0, n_fft={self.n_fft}], got {self.win_length}")
        if self.hop_length <= 0 or (not self.center and self.hop_length > self.n_fft):
            raise ConfigError(f"hop_length {self.hop_length} invalid for n_fft {self.n_fft}")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise ConfigError(
                f"need 0 <= fmin < fmax <= sample_rate/2, got fmin={self.fmin}, fmax={self.fmax}, "
                f"sample_rate={self.sample_rate}"
            )
        if self.log_floor <= 0:
            raise ConfigError(f"log_floor must be positive, got {self.log_floor}")

    @classmethod
    def asr_16k(cls) -> "FeatureConfig":
        """ASR front end: 16 kHz, 25 ms Hann window (400) in a 512 FFT, 10 ms hop, 80 mels to 8 kHz."""
        return cls(sample_rate=16000, n_fft=512, hop_length=160, win_length=400, n_mels=80, fmax=8000.0)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON/YAML friendly) of every field."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FeatureConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise :class:`ConfigError` naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown FeatureConfig key(s) {unknown}; valid keys: {sorted(known)}")
        return cls(**dict(data))

    @property
    def pad(self) -> int:
        """Samples of reflection padding added on each side before framing."""
        return self.n_fft // 2 if self.center else (self.n_fft - self.hop_length) // 2

    def num_frames(self, num_samples: int | torch.Tensor) -> int | torch.Tensor:
        """Frames produced for an utterance of ``num_samples`` samples (int or LongTensor (B,))."""
        if isinstance(num_samples, torch.Tensor):
            frames = torch.div(num_samples + 2 * self.pad - self.n_fft, self.hop_length, rounding_mode="floor")
            return (frames + 1).clamp(min=0)
        return max(0, (num_samples + 2 * self.pad - self.n_fft) // self.hop_length + 1)


def _reflect_index(positions: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Map sample positions (any integer, may be < 0 or >= length) to indices inside each item.

    Reflection without repeating the edge sample (numpy/torch ``"reflect"``), repeated as often as
    needed so it also works for items shorter than the padding: period ``2 * (L - 1)``.

    Args:
        positions: (B, N) int64 positions relative to each item's first sample.
        lengths: (B,) int64 item lengths.

    Returns:
        (B, N) int64 indices in ``[0, L_b)``.
    """
    last = (lengths - 1).clamp(min=0).unsqueeze(1)  # (B, 1)
    period = (2 * last).clamp(min=1)
    folded = torch.remainder(positions.abs(), period)
    return torch.where(folded > last, period - folded, folded).clamp(max=last.expand_as(folded))


def reflect_pad_each(wave: torch.Tensor, lengths: torch.Tensor, pad: int) -> torch.Tensor:
    """Reflect-pad every item of a zero-padded batch at *its own* start and end.

    ``F.pad(mode="reflect")`` would reflect the batch padding (zeros) into the last frames of the
    shorter items, so their features would depend on the batch: this is what breaks padding
    invariance. Only the 2 * pad edge samples per item are gathered, so memory stays O(B * pad).

    Args:
        wave: (B, S) waveforms, item b valid on ``[0, lengths[b])``.
        lengths: (B,) int64.
        pad: samples added on each side.

    Returns:
        (B, S + 2 * pad); item b is its reflect-padded signal on ``[0, lengths[b] + 2 * pad)``.
    """
    if pad == 0:
        return wave
    batch = wave.shape[0]
    padded = nn.functional.pad(wave, (pad, pad))
    offsets = torch.arange(pad, device=wave.device).expand(batch, pad)
    left_src = _reflect_index(offsets - pad, lengths)  # positions -pad .. -1
    right_pos = lengths.unsqueeze(1) + offsets  # positions L .. L + pad - 1
    right_src = _reflect_index(right_pos, lengths)
    sources = torch.cat([left_src, right_src], dim=1)
    targets = torch.cat([offsets, right_pos + pad], dim=1)
    return padded.scatter(1, targets, wave.gather(1, sources))


class LogMel(nn.Module):
    """Batched log-mel spectrogram: natural log of the magnitude (power 1) mel, clamped at ``log_floor``.

    Frames inside ``frame_lengths`` do not depend on the batch they were computed in; frames past
    them are filled with ``log(log_floor)`` (the value of digital silence). Computed in float32 even
    under autocast (``torch.stft`` has no bf16 kernel and the log of small magnitudes needs the range).

    Example:
        >>> logmel = LogMel(FeatureConfig.asr_16k())
        >>> mel, frames = logmel(torch.randn(2, 16000), torch.tensor([16000, 8000]))
        >>> tuple(mel.shape), frames.tolist()
        ((2, 101, 80), [101, 51])
    """

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__()
        self.config = config
        basis = librosa.filters.mel(
            sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels, fmin=config.fmin, fmax=config.fmax
        )
        # Not persistent: both buffers are rebuilt from the FeatureConfig every checkpoint carries.
        self.register_buffer("mel_basis", torch.from_numpy(basis).float(), persistent=False)  # (n_mels, F)
        self.register_buffer("window", torch.hann_window(config.win_length), persistent=False)

    def num_frames(self, num_samples: int | torch.Tensor) -> int | torch.Tensor:
        """Frames for ``num_samples`` samples (see :meth:`FeatureConfig.num_frames`)."""
        return self.config.num_frames(num_samples)

    def magnitude(self, wave: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Linear STFT magnitude of each item with its own reflection padding.

        Args:
            wave: (B, S) float32.
            lengths: (B,) int64.

        Returns:
            (B, n_fft // 2 + 1, T) with ``T = num_frames(S)``.
        """
        cfg = self.config
        padded = reflect_pad_each(wave, lengths, cfg.pad)
        spec = torch.stft(
            padded, cfg.n_fft, cfg.hop_length, cfg.win_length, self.window, center=False, return_complex=True
        )
        # |z| (not sqrt(re^2 + im^2 + eps)): exact like librosa; its gradient at 0 is 0, not NaN.
        return spec.abs()

    def forward(
        self, wave: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Compute log-mel features.

        Args:
            wave: (B, S) waveforms, zero-padded after each item's end.
            lengths: (B,) valid samples per item; ``None`` means all ``S``.

        Returns:
            ``(mel, frame_lengths)``: mel is (B, T, n_mels) float32, frame_lengths (B,) int64.
        """
        if wave.dim() != 2:
            raise ValueError(f"LogMel expects (B, S) waveforms, got shape {tuple(wave.shape)}")
        batch, samples = wave.shape
        if self.num_frames(samples) < 1:
            raise ValueError(f"{samples} samples are too few for one frame with {self.config}")
        if lengths is None:
            lengths = torch.full((batch,), samples, dtype=torch.long, device=wave.device)
        lengths = lengths.to(device=wave.device, dtype=torch.long)
        if lengths.numel() != batch or int(lengths.max()) > samples:
            raise ValueError(f"lengths {lengths.tolist()} do not fit waveforms of shape {tuple(wave.shape)}")
        with torch.autocast(device_type=wave.device.type, enabled=False):
            magnitude = self.magnitude(wave.float(), lengths)
            mel = torch.matmul(self.mel_basis, magnitude)  # (B, n_mels, T)
            logmel = torch.log(torch.clamp(mel, min=self.config.log_floor)).transpose(1, 2)
        frame_lengths = self.num_frames(lengths)
        valid = lengths_to_mask(frame_lengths, logmel.shape[1]).unsqueeze(-1)
        return logmel.masked_fill(~valid, math.log(self.config.log_floor)), frame_lengths


def checkpointed_generator() -> torch.Generator:
    """A fresh CPU generator seeded from the global torch RNG.

    Training augmentations draw from it rather than from a generator of their own: the global RNG is
    saved in every checkpoint, so a resumed run draws exactly what the uninterrupted run draws.

    >>> _ = torch.manual_seed(0); a = torch.rand(2, generator=checkpointed_generator())
    >>> _ = torch.manual_seed(0); b = torch.rand(2, generator=checkpointed_generator())
    >>> bool((a == b).all())
    True
    """
    return torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,)).item()))


@dataclass
class SpecAugmentConfig:
    """SpecAugment policy (Park et al. 2019; time masks adaptive to length as in Park et al. 2020).

    Attributes:
        freq_masks: number of frequency masks per utterance.
        freq_width: maximum width of a frequency mask (bins); widths are uniform in [0, freq_width].
        time_masks: number of time masks per utterance.
        time_width_ratio: maximum width of a time mask as a fraction of the utterance's frames.
        max_time_width: absolute cap on a time mask's width (frames).
        time_warp: maximum warp distance W in frames; 0 turns time warping off (the default:
            it costs a per-utterance interpolation, and Park et al. found it the least influential).
        mask_value: value written into masks; ``None`` uses each utterance's mean over its valid
            frames, which is neutral whether or not the features are normalised.
    """

    freq_masks: int = 2
    freq_width: int = 27
    time_masks: int = 2
    time_width_ratio: float = 0.05
    max_time_width: int = 100
    time_warp: int = 0
    mask_value: float | None = None


class SpecAugment(nn.Module):
    """Frequency/time masking (and optional time warping) of (B, T, F) features, in training mode only.

    Randomness comes from the ``generator`` given to ``forward`` or else from the module's own CPU
    generator seeded with ``seed``; random numbers are drawn on the CPU so results are the same on any
    device. Frames at or past ``lengths`` are never touched.

    Example:
        >>> aug = SpecAugment(SpecAugmentConfig(time_masks=1), seed=0).train()
        >>> feats = torch.zeros(2, 50, 80)
        >>> out = aug(feats, torch.tensor([50, 30]))
        >>> bool((out[1, 30:] == feats[1, 30:]).all())
        True
    """

    def __init__(self, config: SpecAugmentConfig | None = None, seed: int = 0) -> None:
        super().__init__()
        self.config = config or SpecAugmentConfig()
        self._generator = torch.Generator().manual_seed(seed)

    def forward(
        self,
        features: torch.Tensor,
        lengths: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Augment a batch.

        Args:
            features: (B, T, F).
            lengths: (B,) valid frames per item; ``None`` means all T.
            generator: CPU generator to draw from (default: the module's own).

        Returns:
            (B, T, F) augmented features (the input itself in eval mode).
        """
        if not self.training:
            return features
        gen = generator or self._generator
        batch, frames, bins = features.shape
        lengths_cpu = torch.full((batch,), frames) if lengths is None else lengths.detach().long().cpu()
        cfg = self.config
        if cfg.time_warp > 0:
            features = self._time_warp(features, lengths_cpu, gen)
        freq_start, freq_end = _random_spans(
            torch.full((batch,), bins), torch.full((batch,), cfg.freq_width), cfg.freq_masks, gen
        )
        max_width = torch.clamp((lengths_cpu * cfg.time_width_ratio).long(), max=cfg.max_time_width)
        time_start, time_end = _random_spans(lengths_cpu, max_width, cfg.time_masks, gen)
        device = features.device
        freq_mask = _spans_to_mask(freq_start.to(device), freq_end.to(device), bins)  # (B, F)
        time_mask = _spans_to_mask(time_start.to(device), time_end.to(device), frames)  # (B, T)
        valid = lengths_to_mask(lengths_cpu.to(device), frames)
        mask = (time_mask.unsqueeze(2) | freq_mask.unsqueeze(1)) & valid.unsqueeze(2)
        return features.masked_fill(mask, 0.0) + mask * self._fill_value(features, valid)

    def _fill_value(self, features: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(B, 1, 1) value for masked cells: the configured constant or each item's valid mean."""
        if self.config.mask_value is not None:
            return features.new_full((features.shape[0], 1, 1), self.config.mask_value)
        weights = valid.unsqueeze(2).to(features.dtype)
        count = (weights.sum(dim=(1, 2)) * features.shape[2]).clamp(min=1)
        return ((features * weights).sum(dim=(1, 2)) / count).view(-1, 1, 1)

    def _time_warp(self, features: torch.Tensor, lengths: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Move a random anchor frame by up to ``time_warp`` frames, stretching both sides linearly."""
        warp = self.config.time_warp
        out = features.clone()
        for b, length in enumerate(lengths.tolist()):
            draws = torch.rand(2, generator=gen)  # drawn for every item to keep the stream aligned
            if length < 2 * warp + 3:  # both sides must keep at least one frame
                continue
            anchor = warp + 1 + int(draws[0] * (length - 2 * warp - 2))
            target = anchor + int(draws[1] * (2 * warp + 1)) - warp
            item = features[b, :length].transpose(0, 1).unsqueeze(0)  # (1, F, L)
            left = nn.functional.interpolate(item[..., :anchor], size=target, mode="linear", align_corners=False)
            right = nn.functional.interpolate(
                item[..., anchor:], size=length - target, mode="linear", align_corners=False
            )
            out[b, :length] = torch.cat([left, right], dim=2)[0].transpose(0, 1)
        return out


def _random_spans(
    extent: torch.Tensor, max_width: torch.Tensor, count: int, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``count`` spans per item, each of width in [0, max_width] lying inside [0, extent).

    Returns:
        ``(start, end)``, both (B, count) int64 (end exclusive).
    """
    draws = torch.rand(2, extent.shape[0], count, generator=gen)
    width = torch.minimum((draws[0] * (max_width + 1).unsqueeze(1)).long(), extent.unsqueeze(1))
    start = (draws[1] * (extent.unsqueeze(1) - width + 1)).long()
    return start, start + width


def _spans_to_mask(start: torch.Tensor, end: torch.Tensor, size: int) -> torch.Tensor:
    """(B, count) spans -> (B, size) bool, True inside any span."""
    positions = torch.arange(size, device=start.device).view(1, 1, -1)
    return ((positions >= start.unsqueeze(2)) & (positions < end.unsqueeze(2))).any(dim=1)


def mel_to_linear(mel: torch.Tensor, config: FeatureConfig, n_iter: int = 100) -> torch.Tensor:
    """Non-negative least-squares inverse of the mel filterbank (projected gradient from the pseudo-inverse).

    Args:
        mel: (..., n_mels, T) linear (not log) mel magnitudes.
        config: the features' settings.
        n_iter: projected-gradient steps; 0 gives the clamped pseudo-inverse.

    Returns:
        (..., n_fft // 2 + 1, T) non-negative linear magnitudes.
    """
    basis = torch.from_numpy(
        librosa.filters.mel(
            sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels, fmin=config.fmin, fmax=config.fmax
        )
    ).to(mel.device)
    linear = (torch.linalg.pinv(basis) @ mel).clamp(min=0)
    # Step 1/L with L = ||B||_2^2, the Lipschitz constant of the gradient of ||B S - M||^2 / 2.
    step = 1.0 / torch.linalg.matrix_norm(basis, ord=2) ** 2
    for _ in range(n_iter):
        linear = (linear - step * (basis.T @ (basis @ linear - mel))).clamp(min=0)
    return linear


@torch.no_grad()
def griffin_lim(
    mel: torch.Tensor,
    config: FeatureConfig,
    n_iter: int = 60,
    momentum: float = 0.99,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Invert log-mel features to a waveform with fast Griffin-Lim (Perraudin et al. 2013).

    A torch version rather than ``librosa.feature.inverse.mel_to_stft`` + ``librosa.griffinlim``: it
    takes a padded batch on the model's device (e.g. to listen to Tacotron 2 outputs during
    training without a vocoder), and on a 1.9 s LJSpeech clip it was 2-6x faster on one CPU thread
    (0.4-0.7 s vs 1.6-4 s; this shared machine's timings are noisy) and closer: the projected-gradient
    mel inversion leaves a 1e-3 relative mel residual where librosa's leaves 3e-2, and the spectral
    convergence of the re-analysed log-mel is 0.070 vs 0.094.

    Args:
        mel: (T, n_mels) or (B, T, n_mels) natural-log mel magnitudes as produced by :class:`LogMel`.
        config: the settings the features were made with.
        n_iter: phase-retrieval iterations.
        momentum: "fast Griffin-Lim" momentum (0 is the classic algorithm).
        generator: CPU generator for the random initial phase (default: seed 0).

    Returns:
        (S,) or (B, S) float32 waveform with ``S = (T - 1) * hop`` (center=True) or ``T * hop``.
        For a padded batch, item b is valid on ``frame_lengths[b]`` frames' worth of samples.

    Example:
        >>> cfg = FeatureConfig()
        >>> wave = griffin_lim(torch.full((20, 80), -5.0), cfg, n_iter=2)
        >>> tuple(wave.shape)
        (4864,)
    """
    single = mel.dim() == 2
    log_mel = mel.unsqueeze(0) if single else mel
    magnitude = mel_to_linear(torch.exp(log_mel.float()).transpose(1, 2), config)  # (B, F, T)
    gen = generator or torch.Generator().manual_seed(0)
    phase = torch.rand(magnitude.shape, generator=gen).to(magnitude.device)
    angles = torch.polar(torch.ones_like(magnitude), 2 * math.pi * phase)
    window = torch.hann_window(config.win_length, device=magnitude.device)
    # A consistent centred STFT/ISTFT pair is used for the iterations whatever ``config.center`` says.
    stft_args = dict(n_fft=config.n_fft, hop_length=config.hop_length, win_length=config.win_length, window=window)
    frames = magnitude.shape[-1]
    length = (frames - 1) * config.hop_length
    previous = torch.zeros_like(angles)
    for _ in range(n_iter):
        wave = torch.istft(magnitude * angles, length=length, **stft_args)
        rebuilt = torch.stft(wave, pad_mode="reflect", return_complex=True, **stft_args)
        angles = rebuilt - (momentum / (1 + momentum)) * previous
        angles = angles / angles.abs().clamp(min=1e-16)
        previous = rebuilt
    wave = torch.istft(magnitude * angles, length=length, **stft_args)
    if not config.center:
        # center=False frame t is centred on sample t * hop + hop / 2 of the original signal.
        shift = config.hop_length // 2
        wave = nn.functional.pad(wave, (shift, config.hop_length - shift))
    return wave[0] if single else wave
