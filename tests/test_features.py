"""speechseq.features: LogMel against librosa on real speech, padding invariance, SpecAugment, Griffin-Lim."""

from __future__ import annotations

import math
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch

from speechseq.audio import load_audio
from speechseq.errors import ConfigError
from speechseq.features import (
    FeatureConfig,
    LogMel,
    SpecAugment,
    SpecAugmentConfig,
    griffin_lim,
    mel_to_linear,
    reflect_pad_each,
)

LJ_IDS = ("LJ001-0002", "LJ001-0008", "LJ001-0013")
FSDD_IDS = ("0_george_0", "7_jackson_12", "4_yweweler_31")


def _librosa_mel(wave: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Reference (n_mels, T) magnitude mel, computed in float64."""
    wave = wave.astype(np.float64)
    center = cfg.center
    if not center:  # HiFi-GAN: reflect-pad (n_fft - hop) / 2 by hand, then frame without centring
        wave = np.pad(wave, (cfg.pad, cfg.pad), mode="reflect")
    return librosa.feature.melspectrogram(
        y=wave, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
        n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax, power=1.0, center=center, pad_mode="reflect",
    )


def _real_waves(ljspeech_dir: Path, fsdd_dir: Path) -> list[tuple[FeatureConfig, np.ndarray]]:
    lj = [(FeatureConfig(), load_audio(ljspeech_dir / "wavs" / f"{i}.wav")) for i in LJ_IDS[:2]]
    asr = FeatureConfig.asr_16k()
    fsdd = [(asr, load_audio(fsdd_dir / f"{i}.wav", sample_rate=16000)) for i in FSDD_IDS]
    return lj + fsdd + [(FeatureConfig(center=False), lj[0][1])]


def test_logmel_equals_librosa_on_real_speech(ljspeech_dir: Path, fsdd_dir: Path) -> None:
    # Tolerance: the log amplifies float32 FFT round-off (~1e-7 of the frame's peak) in quiet bins,
    # so the bound is 2e-3 where mel > log_floor (measured max 5.6e-4) and 1e-4 where mel > 1e-2
    # (measured 3.7e-6). Constant instead of reflect padding is off by 0.7-3.0, HTK mels by > 4.
    strict_bins = 0
    for cfg, wave in _real_waves(ljspeech_dir, fsdd_dir):
        ref = _librosa_mel(wave, cfg)
        mel, frames = LogMel(cfg)(torch.from_numpy(wave)[None])
        ours = mel[0].numpy().T.astype(np.float64)
        assert ours.shape == ref.shape and int(frames[0]) == ref.shape[1] == cfg.num_frames(wave.size)
        diff = np.abs(ours - np.log(np.maximum(ref, cfg.log_floor)))
        assert diff[ref > cfg.log_floor].max() < 2e-3
        assert diff[ref > 1e-2].max() < 1e-4
        strict_bins += int((ref > 1e-2).sum())
    assert strict_bins > 10000  # the strict bound covers a real share of the bins (measured 17.6k)


@pytest.mark.parametrize("center", [True, False])
def test_padding_invariance_in_a_batch(ljspeech_dir: Path, fsdd_dir: Path, center: bool) -> None:
    cfg = FeatureConfig(center=center)
    waves = [torch.from_numpy(load_audio(ljspeech_dir / "wavs" / f"{i}.wav")) for i in LJ_IDS]
    waves.append(torch.from_numpy(load_audio(fsdd_dir / "0_george_0.wav", sample_rate=22050)))
    waves.append(waves[-1][:300])  # shorter than n_fft // 2: reflection folds more than once
    lengths = torch.tensor([w.numel() for w in waves])
    batch = torch.randn(len(waves), int(lengths.max()))  # padding is garbage, not even zeros
    for b, w in enumerate(waves):
        batch[b, : w.numel()] = w
    logmel = LogMel(cfg)
    mel, frame_lengths = logmel(batch, lengths)
    for b, w in enumerate(waves):
        alone, alone_frames = logmel(w[None])
        assert int(alone_frames[0]) == int(frame_lengths[b]) == cfg.num_frames(w.numel())
        torch.testing.assert_close(mel[b, : frame_lengths[b]], alone[0], atol=1e-5, rtol=0)
        assert torch.all(mel[b, frame_lengths[b]:] == math.log(cfg.log_floor))


@pytest.mark.parametrize("length", [1, 2, 3, 7, 300, 513, 2000])
def test_reflect_pad_each_equals_numpy_reflect(length: int) -> None:
    pad = 512
    wave = torch.randn(2, 2000)
    lengths = torch.tensor([length, 2000])
    padded = reflect_pad_each(wave, lengths, pad)
    expected = np.pad(wave[0, :length].numpy(), (pad, pad), mode="reflect")
    np.testing.assert_array_equal(padded[0, : length + 2 * pad].numpy(), expected)
    np.testing.assert_array_equal(padded[1].numpy(), np.pad(wave[1].numpy(), (pad, pad), mode="reflect"))


def test_num_frames_int_and_tensor_agree_with_output() -> None:
    for cfg in (FeatureConfig(), FeatureConfig.asr_16k(), FeatureConfig(center=False)):
        logmel = LogMel(cfg)
        for samples in (cfg.n_fft, cfg.n_fft + 1, 5 * cfg.hop_length - 1, 5 * cfg.hop_length, 12345):
            mel, frames = logmel(torch.zeros(1, samples))
            assert mel.shape[1] == int(frames[0]) == cfg.num_frames(samples)
            assert int(cfg.num_frames(torch.tensor([samples]))[0]) == cfg.num_frames(samples)


def test_feature_config_round_trip_and_validation() -> None:
    asr = FeatureConfig.asr_16k()
    assert (asr.sample_rate, asr.n_fft, asr.win_length, asr.hop_length, asr.n_mels, asr.fmax) == (
        16000, 512, 400, 160, 80, 8000.0,
    )
    assert FeatureConfig.from_dict(asr.to_dict()) == asr
    with pytest.raises(ConfigError, match="n_melz"):
        FeatureConfig.from_dict({**asr.to_dict(), "n_melz": 40})
    with pytest.raises(ConfigError, match="win_length"):
        FeatureConfig(win_length=2048)
    with pytest.raises(ConfigError, match="fmax"):
        FeatureConfig(sample_rate=8000, fmax=8000.0)


def test_logmel_gradient_is_finite_on_silence_and_autocast_keeps_float32() -> None:
    # HiFi-GAN's mel loss backpropagates through LogMel into generated audio, which starts silent.
    cfg = FeatureConfig.asr_16k()
    logmel = LogMel(cfg)
    wave = torch.zeros(2, 3200, requires_grad=True)
    mel, _ = logmel(wave, torch.tensor([3200, 1600]))
    mel.sum().backward()
    assert torch.isfinite(wave.grad).all()
    speech = torch.randn(1, 3200)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mel_bf16, _ = logmel(speech)
    assert mel_bf16.dtype == torch.float32
    torch.testing.assert_close(mel_bf16, logmel(speech)[0])


def _ramp_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """(3, 120, 80) features with distinct values everywhere, lengths 120/90/40."""
    feats = torch.arange(120, dtype=torch.float32).view(1, 120, 1) + 0.001 * torch.arange(80).view(1, 1, 80)
    return feats.repeat(3, 1, 1) + 1000 * torch.arange(3).view(3, 1, 1), torch.tensor([120, 90, 40])


def test_specaugment_eval_is_identity_and_train_masks_whole_bands() -> None:
    feats, lengths = _ramp_batch()
    cfg = SpecAugmentConfig(freq_masks=2, freq_width=10, time_masks=2, time_width_ratio=0.1, mask_value=-5.0)
    aug = SpecAugment(cfg, seed=3)
    assert aug.eval()(feats, lengths) is feats
    out = aug.train()(feats, lengths)
    masked = out == -5.0
    assert masked.any()
    for b, length in enumerate(lengths.tolist()):
        assert torch.equal(out[b, length:], feats[b, length:])  # padding untouched
        item = masked[b, :length]
        full_cols = item.all(dim=0)  # frequency masks cover every valid frame
        full_rows = item.all(dim=1)  # time masks cover every bin
        assert torch.equal(item, full_cols.unsqueeze(0) | full_rows.unsqueeze(1))  # nothing else masked
        assert full_cols.sum() <= 2 * cfg.freq_width
        assert full_rows.sum() <= 2 * int(cfg.time_width_ratio * length)
        assert torch.equal(out[b, :length][~item], feats[b, :length][~item])


def test_specaugment_is_deterministic_per_seed_and_uses_the_mean() -> None:
    feats, lengths = _ramp_batch()
    cfg = SpecAugmentConfig(freq_width=15, time_width_ratio=0.2)
    first = SpecAugment(cfg, seed=7).train()(feats, lengths)
    assert torch.equal(first, SpecAugment(cfg, seed=7).train()(feats, lengths))
    assert not torch.equal(first, SpecAugment(cfg, seed=8).train()(feats, lengths))
    gen_a, gen_b = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    aug = SpecAugment(cfg).train()
    assert torch.equal(aug(feats, lengths, generator=gen_a), aug(feats, lengths, generator=gen_b))
    changed = first != feats
    for b, length in enumerate(lengths.tolist()):
        mean = feats[b, :length].mean()
        assert torch.allclose(first[b][changed[b]], mean.expand(int(changed[b].sum())))


def test_specaugment_time_warp_is_monotone_inside_lengths() -> None:
    feats, lengths = _ramp_batch()
    cfg = SpecAugmentConfig(freq_masks=0, time_masks=0, time_warp=10)
    out = SpecAugment(cfg, seed=0).train()(feats, lengths)
    assert not torch.equal(out, feats)
    for b, length in enumerate(lengths.tolist()):
        track = out[b, :length, 0]
        assert torch.all(track[1:] >= track[:-1] - 1e-4)  # a warp moves frames, never reorders them
        assert track.min() >= feats[b, 0, 0] - 1e-4 and track.max() <= feats[b, length - 1, 0] + 1e-4
        assert torch.equal(out[b, length:], feats[b, length:])


def test_mel_to_linear_is_a_nonnegative_inverse(ljspeech_dir: Path) -> None:
    cfg = FeatureConfig()
    wave = torch.from_numpy(load_audio(ljspeech_dir / "wavs" / "LJ001-0002.wav"))
    mel = LogMel(cfg)(wave[None])[0][0].exp().T  # (n_mels, T)
    linear = mel_to_linear(mel, cfg)
    basis = LogMel(cfg).mel_basis
    assert linear.min() >= 0
    # Measured 1.3e-3; the clamped pseudo-inverse alone (n_iter=0) leaves 3.2e-2.
    assert (basis @ linear - mel).norm() / mel.norm() < 5e-3
    assert (basis @ mel_to_linear(mel, cfg, n_iter=0) - mel).norm() / mel.norm() > 2e-2


@pytest.mark.parametrize("center", [True, False])
def test_griffin_lim_reproduces_the_log_mel_of_real_speech(ljspeech_dir: Path, center: bool) -> None:
    cfg = FeatureConfig(center=center)
    logmel = LogMel(cfg)
    wave = torch.from_numpy(load_audio(ljspeech_dir / "wavs" / "LJ001-0002.wav"))
    mel = logmel(wave[None])[0][0]

    def spectral_convergence(rebuilt: torch.Tensor) -> float:
        again = logmel(rebuilt[None])[0][0]
        frames = min(again.shape[0], mel.shape[0])
        target, got = mel[:frames].exp(), again[:frames].exp()
        return float((target - got).norm() / target.norm())

    # Measured 0.070 (center) / 0.066 (HiFi-GAN padding) after 60 iterations, 0.11 without momentum;
    # random phase gives 0.56-0.59, frames misaligned by half a hop 0.22, a wrong hop (240) 0.78.
    rebuilt = griffin_lim(mel, cfg, n_iter=60)
    assert rebuilt.shape == ((mel.shape[0] - 1) * cfg.hop_length if center else mel.shape[0] * cfg.hop_length,)
    assert spectral_convergence(rebuilt) < 0.12
    assert spectral_convergence(griffin_lim(mel, cfg, n_iter=0)) > 0.4
