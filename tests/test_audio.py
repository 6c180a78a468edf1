"""speechseq.audio: round trips, resampling of real speech, mono mix-down, and every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import scipy.signal
import soundfile as sf
import torch

from speechseq.audio import AudioInfo, audio_info, is_silent, load_audio, resample, rms_db, save_audio
from speechseq.errors import AudioError


@pytest.fixture(scope="module")
def fsdd_file(fsdd_dir: Path) -> Path:
    return fsdd_dir / "3_jackson_7.wav"


@pytest.mark.parametrize("suffix", [".wav", ".flac"])
def test_round_trip_of_real_speech_is_exact(tmp_path: Path, fsdd_file: Path, suffix: str) -> None:
    # FSDD is 16-bit PCM, so a 16-bit WAV/FLAC round trip must reproduce every sample exactly.
    wave = load_audio(fsdd_file)
    path = tmp_path / f"copy{suffix}"
    save_audio(path, wave, 8000)
    again = load_audio(path)
    assert again.dtype == np.float32
    np.testing.assert_array_equal(again, wave)
    assert audio_info(path) == AudioInfo(num_samples=wave.size, sample_rate=8000, channels=1, duration=wave.size / 8000)


def test_float_wav_and_torch_input_round_trip(tmp_path: Path) -> None:
    wave = torch.linspace(-0.9, 0.9, 1001) ** 3  # values that 16-bit PCM could not hold exactly
    save_audio(tmp_path / "f.wav", wave, 16000, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(tmp_path / "f.wav"), wave.numpy())


def test_ogg_vorbis_round_trip_keeps_length_and_content(tmp_path: Path, fsdd_file: Path) -> None:
    wave = load_audio(fsdd_file)
    save_audio(tmp_path / "x.ogg", wave, 8000)
    again = load_audio(tmp_path / "x.ogg")
    assert again.size == wave.size
    snr = 10 * np.log10(np.sum(wave**2) / np.sum((wave - again) ** 2))
    assert snr > 20.0  # lossy, but the same speech (measured 28 dB)


def test_audio_info_matches_decoded_file(fsdd_dir: Path, ljspeech_dir: Path) -> None:
    for path in (fsdd_dir / "0_george_0.wav", ljspeech_dir / "wavs" / "LJ001-0002.wav"):
        data, rate = sf.read(path)
        info = audio_info(path)
        assert (info.num_samples, info.sample_rate, info.channels) == (data.shape[0], rate, 1)
        assert info.duration == pytest.approx(data.shape[0] / rate)


def test_resampling_real_speech_8k_to_16k(fsdd_file: Path) -> None:
    wave = load_audio(fsdd_file)
    up = load_audio(fsdd_file, sample_rate=16000)
    assert up.size == 2 * wave.size  # same duration
    np.testing.assert_array_equal(up, resample(wave, 8000, 16000))
    # librosa's default resampler is soxr HQ too: identical up to float rounding.
    np.testing.assert_allclose(up, librosa.resample(wave, orig_sr=8000, target_sr=16000), atol=1e-6)
    # An independent polyphase FIR resampler agrees to within 1 % of the signal energy.
    poly = scipy.signal.resample_poly(wave, 2, 1)
    assert np.linalg.norm(up - poly) / np.linalg.norm(up) < 0.01
    # Downsampling back recovers the original (band-limited speech at 8 kHz).
    back = resample(up, 16000, 8000)
    assert np.linalg.norm(back - wave) / np.linalg.norm(wave) < 0.01


def test_stereo_is_mixed_down_to_the_channel_mean(tmp_path: Path) -> None:
    left = np.sin(np.linspace(0, 40, 4000)).astype(np.float32) * 0.5
    right = np.cos(np.linspace(0, 13, 4000)).astype(np.float32) * 0.25
    sf.write(tmp_path / "st.wav", np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    assert audio_info(tmp_path / "st.wav").channels == 2
    np.testing.assert_allclose(load_audio(tmp_path / "st.wav"), (left + right) / 2, atol=1e-7)


def test_datasets_audio_dict_bytes_take_precedence(tmp_path: Path, fsdd_dir: Path) -> None:
    real = fsdd_dir / "0_george_0.wav"
    other = fsdd_dir / "1_lucas_3.wav"
    from_bytes = load_audio({"path": str(other), "bytes": real.read_bytes()})
    np.testing.assert_array_equal(from_bytes, load_audio(real))
    # Hub datasets keep only a bare file name in "path": it must not be opened when bytes exist.
    np.testing.assert_array_equal(load_audio({"path": "0_george_0.wav", "bytes": real.read_bytes()}), from_bytes)
    np.testing.assert_array_equal(load_audio({"path": str(other), "bytes": None}), load_audio(other))
    assert audio_info({"path": None, "bytes": real.read_bytes()}).num_samples == from_bytes.size


def test_pcm_writing_clips_instead_of_wrapping(tmp_path: Path) -> None:
    save_audio(tmp_path / "loud.wav", np.array([1.5, -2.0, 0.5], dtype=np.float32), 8000)
    np.testing.assert_allclose(load_audio(tmp_path / "loud.wav"), [1.0, -1.0, 0.5], atol=1e-4)


def _make_bad(kind: str, folder: Path) -> object:
    """Build one kind of unusable input; returns the source to pass to load_audio."""
    path = folder / f"{kind}.wav"
    if kind == "missing":
        return path
    if kind == "empty_file":
        path.write_bytes(b"")
    elif kind == "text_renamed":
        path.write_text("this is a transcript, not audio\n" * 20)
    elif kind == "truncated_header":
        save_audio(path, np.zeros(100, dtype=np.float32), 8000)
        path.write_bytes(path.read_bytes()[:20])
    elif kind == "zero_samples":
        with sf.SoundFile(path, "w", samplerate=8000, channels=1, subtype="PCM_16"):
            pass
    elif kind == "nan_samples":
        sf.write(path, np.array([0.1, np.nan, 0.2], dtype=np.float32), 8000, subtype="FLOAT")
    elif kind == "dict_empty_bytes":
        return {"path": str(path), "bytes": b""}
    elif kind == "dict_nothing":
        return {"path": None, "bytes": None}
    return path


BAD_KINDS = [
    "missing",
    "empty_file",
    "text_renamed",
    "truncated_header",
    "zero_samples",
    "nan_samples",
    "dict_empty_bytes",
    "dict_nothing",
]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_input_raises_audio_error_naming_the_file(tmp_path: Path, kind: str) -> None:
    source = _make_bad(kind, tmp_path)
    with pytest.raises(AudioError) as caught:
        load_audio(source)
    expected_name = "<bytes>" if kind == "dict_nothing" else f"{kind}.wav"
    assert expected_name in str(caught.value)
    assert caught.value.path.endswith(expected_name)


@pytest.mark.parametrize("kind", ["missing", "empty_file", "text_renamed", "truncated_header"])
def test_audio_info_rejects_bad_files(tmp_path: Path, kind: str) -> None:
    with pytest.raises(AudioError, match=f"{kind}.wav"):
        audio_info(_make_bad(kind, tmp_path))


def test_save_audio_rejects_bad_waves_and_suffixes(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="x.wav"):
        save_audio(tmp_path / "x.wav", np.zeros((2, 10), dtype=np.float32), 8000)
    with pytest.raises(AudioError, match="unknown audio format"):
        save_audio(tmp_path / "x.mp4", np.zeros(10, dtype=np.float32), 8000)


def test_silence_detection_on_real_speech(fsdd_file: Path) -> None:
    speech = load_audio(fsdd_file)
    assert not is_silent(speech)
    assert is_silent(speech * 1e-4)  # 80 dB quieter than the recording
    assert is_silent(np.zeros(1000, dtype=np.float32))
    assert is_silent(np.zeros(0, dtype=np.float32))
    sine = np.sin(2 * np.pi * 100 * np.arange(8000) / 8000)
    assert rms_db(sine) == pytest.approx(-3.0103, abs=1e-3)
    quiet = sine * 10 ** (-55 / 20)  # RMS -58 dBFS
    assert is_silent(quiet, threshold_db=-60) is False
    assert is_silent(quiet, threshold_db=-55) is True
