"""speechseq.endpoint: energy endpointing and a relative floor of log-mel features, alone, in a batch, in a LAS model."""

from __future__ import annotations

import math
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch
from test_las import tiny_rnn_las

from speechseq.audio import load_audio
from speechseq.endpoint import floor_relative, frame_levels_db, trim_silence
from speechseq.errors import ConfigError
from speechseq.features import FeatureConfig, LogMel
from speechseq.models.ctc import normalize_utterances
from speechseq.models.las import LASConfig, LASModel
from speechseq.text import CharTokenizer

HOP = 160


def test_trim_keeps_the_span_between_the_first_and_last_loud_frames_and_the_quiet_inside() -> None:
    # Frame levels: 3 mel bins of magnitude e^x each; loud frames at x=0, quiet at x=-10 (87 dB down).
    features = torch.full((2, 10, 3), -10.0)
    features[0, 3:7] = 0.0
    features[0, 4] = -10.0  # a pause inside the speech stays
    features[1, 1] = 0.0
    features[1, 6:] = 0.0  # beyond item 1's length: padding must not count
    trimmed, lengths = trim_silence(features, torch.tensor([10, 4]), top_db=20.0, fill_value=7.0)
    assert lengths.tolist() == [4, 1]
    assert trimmed.shape == (2, 4, 3)
    torch.testing.assert_close(trimmed[0], features[0, 3:7])
    torch.testing.assert_close(trimmed[1, 0], features[1, 1])
    assert bool((trimmed[1, 1:] == 7.0).all())


def test_trim_margin_widens_the_span_but_never_past_the_utterance() -> None:
    features = torch.full((2, 10, 3), -10.0)
    features[0, 3:7] = 0.0
    features[1, 0] = 0.0
    features[1, 3] = 0.0
    trimmed, lengths = trim_silence(features, torch.tensor([10, 5]), top_db=20.0, margin=2)
    assert lengths.tolist() == [8, 5]  # frames 1-8, and 0-4 (clamped at both ends of item 1)
    torch.testing.assert_close(trimmed[0], features[0, 1:9])
    torch.testing.assert_close(trimmed[1, :5], features[1, :5])


def test_frame_levels_are_the_summed_mel_power_in_db() -> None:
    logmel = torch.log(torch.tensor([[[1.0, 2.0], [0.1, 0.0]]]))
    torch.testing.assert_close(frame_levels_db(logmel), torch.tensor([[10 * math.log10(5.0), -20.0]]))


def test_trim_of_an_utterance_alone_equals_its_trim_inside_a_padded_batch(fsdd_dir: Path) -> None:
    frontend = LogMel(FeatureConfig.asr_16k())
    short = load_audio(fsdd_dir / "0_lucas_0.wav", 16000)
    long = load_audio(fsdd_dir / "3_george_10.wav", 16000)
    batch = torch.zeros(2, max(short.size, long.size) + 3000)
    batch[0, : short.size] = torch.from_numpy(short)
    batch[1, : long.size] = torch.from_numpy(long)
    batch[0, short.size :] = 0.5  # garbage past the length must not be read
    feats, frames = frontend(batch, torch.tensor([short.size, long.size]))
    alone, alone_frames = frontend(torch.from_numpy(short)[None], torch.tensor([short.size]))
    trimmed, lengths = trim_silence(feats, frames, 25.0)
    trimmed_alone, lengths_alone = trim_silence(alone, alone_frames, 25.0)
    assert lengths[0] == lengths_alone[0] < alone_frames[0]  # lucas's recordings start with a lead-in
    torch.testing.assert_close(trimmed[0, : lengths[0]], trimmed_alone[0])


def test_trim_finds_lucas_lead_in_where_librosa_does(fsdd_dir: Path) -> None:
    wave = load_audio(fsdd_dir / "0_lucas_0.wav", 16000)
    feats, frames = LogMel(FeatureConfig.asr_16k())(torch.from_numpy(wave)[None])
    trimmed, lengths = trim_silence(feats, frames, 25.0)
    loud = torch.nonzero(frame_levels_db(feats)[0] >= frame_levels_db(feats)[0].max() - 25.0)[:, 0]
    first, last = int(loud[0]), int(loud[-1])
    assert int(lengths[0]) == last - first + 1
    torch.testing.assert_close(trimmed[0], feats[0, first : last + 1])
    # librosa measures the waveform's RMS, not mel power: the same lead-in within 50 ms.
    _, (start, _) = librosa.effects.trim(wave, top_db=25, frame_length=400, hop_length=HOP)
    assert start >= 10 * HOP  # a real lead-in of 100 ms or more, not a frame or two
    assert abs(first - start / HOP) <= 5


def test_las_with_trim_ignores_a_lead_in_and_tail_of_digital_silence(fsdd_dir: Path) -> None:
    tokenizer = CharTokenizer.from_texts(["zero"])
    speech = load_audio(fsdd_dir / "0_george_10.wav", 16000)
    # Both versions start and end with 800 zeros, so every frame that touches speech is identical; the longer
    # silences add 30 and 50 whole frames that the endpointer must drop.
    base = np.concatenate([np.zeros(800, np.float32), speech, np.zeros(800, np.float32)])
    longer = np.concatenate([np.zeros(30 * HOP, np.float32), base, np.zeros(50 * HOP, np.float32)])
    for trim_db, same in ((30.0, True), (None, False)):
        model = tiny_rnn_las(tokenizer, trim_db=trim_db).eval()
        with torch.no_grad():
            a = model.encode(torch.from_numpy(base)[None], torch.tensor([base.size]))
            b = model.encode(torch.from_numpy(longer)[None], torch.tensor([longer.size]))
        if same:
            assert int(a.lengths[0]) == int(b.lengths[0])
            torch.testing.assert_close(a.memory, b.memory)
        else:
            assert int(b.lengths[0]) > int(a.lengths[0])


def test_floor_is_relative_to_each_utterances_loudest_cell_and_leaves_padding_alone() -> None:
    magnitudes = torch.tensor([[[1.0, 1e-3], [1e-5, 0.5], [1e-9, 1e-9]], [[1e-2, 1e-4], [9.0, 9.0], [9.0, 9.0]]])
    floored = floor_relative(torch.log(magnitudes), torch.tensor([2, 1]), range_db=40.0).exp()
    expected = torch.tensor([[[1.0, 1e-2], [1e-2, 0.5], [1e-9, 1e-9]], [[1e-2, 1e-4], [9.0, 9.0], [9.0, 9.0]]])
    torch.testing.assert_close(floored, expected)


def test_with_a_floor_the_empty_bands_of_8khz_recordings_normalise_to_zero(fsdd_dir: Path) -> None:
    # FSDD is 8 kHz: upsampled to 16 kHz, the mel bands above 4 kHz hold only faint resampling leftovers,
    # which per-band normalisation would blow up into recording-specific patterns.
    frontend = LogMel(FeatureConfig.asr_16k())
    high = torch.from_numpy(librosa.mel_frequencies(82, fmin=0.0, fmax=8000.0)[1:-1] > 4300.0)
    for name in ("2_jackson_3", "2_nicolas_3"):
        feats, frames = frontend(torch.from_numpy(load_audio(fsdd_dir / f"{name}.wav", 16000))[None])
        plain = normalize_utterances(feats, frames)[0][:, high]
        floored = normalize_utterances(floor_relative(feats, frames, 60.0), frames)[0][:, high]
        assert float(plain.abs().mean()) > 0.2  # without the floor: leftovers at a third of speech's spread
        assert float(floored.abs().max()) < 1e-3  # constant bands: zero up to float32 rounding


def test_a_non_positive_trim_db_or_floor_db_is_a_config_error() -> None:
    cases = [("trim_db", {"trim_db": 0.0}), ("floor_db", {"floor_db": -3.0}),
             ("trim_margin", {"trim_db": 20.0, "trim_margin": -1})]
    for key, bad in cases:
        with pytest.raises(ConfigError, match=key):
            LASModel(LASConfig(vocab_size=8, **bad), FeatureConfig.asr_16k())


def test_utterance_normalisation_removes_gain_but_keeps_the_spectral_envelope_that_band_normalisation_drops() -> None:
    # Two one-"word" utterances with the same movement over time but different average spectra (envelopes).
    time = torch.linspace(0, 1, 12).unsqueeze(-1)  # (T, 1)
    movement = torch.sin(6.0 * time) * torch.tensor([1.0, 0.5, 0.2, 0.1])  # (T, F)
    word_a = movement + torch.tensor([0.0, -1.0, -4.0, -6.0])
    word_b = movement + torch.tensor([-6.0, -1.0, -1.0, 0.0])
    feats = torch.stack([word_a, word_b])
    frames = torch.tensor([12, 12])
    band = normalize_utterances(feats, frames)
    torch.testing.assert_close(band[0], band[1])  # per-band normalisation: the envelope is gone
    whole = normalize_utterances(feats, frames, per_band=False)
    assert float((whole[0] - whole[1]).abs().mean()) > 0.5  # one mean/variance per utterance keeps it
    # gain (a constant in the log domain) and padding change nothing
    louder = normalize_utterances(feats + 3.0, frames, per_band=False)
    torch.testing.assert_close(louder, whole)
    padded = torch.cat([feats[:1], torch.full((1, 5, 4), 9.0)], dim=1)
    alone = normalize_utterances(padded, torch.tensor([12]), per_band=False)
    torch.testing.assert_close(alone[0, :12], whole[0])
    assert float(alone[0, 12:].abs().max()) == 0.0
    flat = whole.reshape(2, -1)
    torch.testing.assert_close(flat.mean(1), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(flat.var(1, unbiased=False), torch.ones(2), atol=1e-3, rtol=0)


def test_an_unknown_normalisation_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="normalization"):
        LASModel(LASConfig(vocab_size=8, normalization="speaker"), FeatureConfig.asr_16k())
