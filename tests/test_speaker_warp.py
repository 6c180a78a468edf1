"""speechseq.speaker_warp: the shift whose transcripts a model scores best is chosen, on the shifted audio."""

from __future__ import annotations

import types

import numpy as np
import torch

from speechseq.speaker_warp import choose_shift, transcript_scores

RATE = 16000


class PitchLovingModel:
    """Stands in for a LAS model that fits one voice: its score of any transcript is the negative distance
    (in semitones) of the recording's dominant frequency from 247 Hz; it transcribes everything as "a"."""

    feature_config = types.SimpleNamespace(sample_rate=RATE)
    config = types.SimpleNamespace(label_smoothing=0.1)
    tokenizer = types.SimpleNamespace(encode=lambda text: [1] * len(text))
    seen_smoothing: list[float] = []

    def transcribe(self, waves, sample_rate=None):
        return ["a"] * len(waves)

    def __call__(self, wave, lengths, tokens, token_lengths):
        self.seen_smoothing.append(self.config.label_smoothing)
        peaks = []
        for row, n in zip(wave.numpy(), lengths.tolist()):
            spectrum = np.abs(np.fft.rfft(row[:n]))
            peaks.append(np.fft.rfftfreq(n, 1 / RATE)[spectrum.argmax()])
        distance = np.abs(12 * np.log2(np.array(peaks) / 247.0))
        return types.SimpleNamespace(utterance_loss=torch.tensor(distance, dtype=torch.float32) / (token_lengths + 1))


def test_the_shift_that_brings_a_voice_where_the_model_wants_it_wins() -> None:
    time = np.arange(RATE) / RATE
    voice = [(0.3 * np.sin(2 * np.pi * 220.0 * time * (1 + 0.001 * k))).astype(np.float32) for k in range(3)]
    model = PitchLovingModel()
    choice = choose_shift(model, voice, RATE, shifts=(-2.0, 0.0, 2.0, 4.0))
    assert choice.shift == 2.0  # 220 Hz * 2^(2/12) = 247 Hz
    assert choice.mean_scores[2.0] > max(choice.mean_scores[0.0], choice.mean_scores[4.0]) > choice.mean_scores[-2.0]
    assert abs(choice.mean_scores[0.0] + 2.0) < 0.1  # two semitones away, scored on the audio as given
    assert choice.transcripts[2.0] == ["a", "a", "a"]
    assert set(model.seen_smoothing) == {0.0} and model.config.label_smoothing == 0.1  # off while scoring, restored


def test_transcript_scores_undo_the_per_token_average_and_resample() -> None:
    time = np.arange(8000) / 8000
    tone = (0.3 * np.sin(2 * np.pi * 220.0 * time)).astype(np.float32)
    model = PitchLovingModel()
    scores = transcript_scores(model, [tone, tone], ["a", "abc"], 8000)  # resampled to 16 kHz first
    np.testing.assert_allclose(scores, [-2.0, -2.0], atol=0.1)
