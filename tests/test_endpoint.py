"""speechseq.endpoint: energy endpointing of log-mel features, alone, in a batch, and inside a LAS model."""

from __future__ import annotations

import math
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch
from test_las import tiny_rnn_las

from speechseq.audio import load_audio
from speechseq.endpoint import frame_levels_db, trim_silence
from speechseq.errors import ConfigError
from speechseq.features import FeatureConfig, LogMel
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


def test_a_non_positive_trim_db_is_a_config_error() -> None:
    config = LASConfig(vocab_size=8, trim_db=0.0)
    with pytest.raises(ConfigError, match="trim_db"):
        LASModel(config, FeatureConfig.asr_16k())
