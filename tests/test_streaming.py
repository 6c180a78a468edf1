"""Streaming recognition (speechseq.streaming): MoChA LAS and CTC models on real FSDD speech.

Three levels, from exact to bounded:

* decoding a prefix of a fixed memory with hard MoChA repeats the offline steps until the head leaves it;
* with an encoder whose past frames never change (an oracle "causal encoder": the offline memory cut to the
  received audio), the streamed final transcript equals offline greedy decoding exactly;
* with the real bidirectional encoders (re-run on the audio so far), stable texts only grow, are prefixes of
  every later text, and the final text equals offline greedy decoding whenever the commits were right (the
  bound stated in speechseq/streaming.py).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from test_inference import overfit, tiny_ctc, training_batch
from test_las import FILES, WORDS, tiny_rnn_las

from speechseq.audio import load_audio
from speechseq.errors import ConfigError
from speechseq.models.ctc import ctc_greedy
from speechseq.streaming import StreamingRecognizer, StreamTrace, collapse_ctc, monotonic_greedy
from speechseq.text import CharTokenizer

RATE = 16000


@pytest.fixture(scope="module")
def data(fsdd_dir: Path):
    waves = [load_audio(fsdd_dir / f"{name}.wav", RATE) for name in FILES]
    tokenizer = CharTokenizer.from_texts(WORDS)
    return waves, tokenizer, training_batch(waves, tokenizer)


@pytest.fixture(scope="module")
def mocha_las(data):
    """A tiny LAS with MoChA attention overfit to five FSDD recordings (soft training, hard decoding)."""
    waves, tokenizer, batch = data
    return overfit(tiny_rnn_las(tokenizer, "mocha"), batch, waves)


@pytest.fixture(scope="module")
def moving_head_las(data):
    """An untrained MoChA LAS whose hard head does move (energy offset 0): positions 0 -> ~20 -> ... on the
    concatenated recordings, so prefixes of its memory cut its output at several places."""
    model = tiny_rnn_las(data[1], "mocha").eval()
    model.decoder.attention.energy_bias.data.fill_(0.0)
    return model


@pytest.fixture(scope="module")
def ctc_model(data):
    waves, tokenizer, batch = data
    return overfit(tiny_ctc(tokenizer), batch, waves)


def offline_greedy(model, wave: np.ndarray):
    with torch.no_grad():
        enc = model.encode(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))
        return enc, model.greedy_decode(enc.memory, enc.lengths)


def causal_oracle(model, wave: np.ndarray, ctc: bool = False):
    """``encode`` (or CTC ``forward``) of an encoder whose past frames never change: the offline output for
    the whole ``wave`` cut to the frames of the audio received so far."""
    with torch.no_grad():
        full = model(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))
    full = full if ctc else full.encoder

    def encode(received: torch.Tensor, lengths: torch.Tensor, *rest):
        frames = int(model.encoder.output_lengths(model.frontend.num_frames(lengths))[0])
        cut = {k: v[:, :frames] for k, v in vars(full).items() if torch.is_tensor(v) and v.dim() == 3}
        return dataclasses.replace(full, **cut, lengths=torch.tensor([frames]))

    return encode


def check_stability(trace: StreamTrace) -> None:
    """Stable texts only grow, each is a prefix of its hypothesis, of every later one and of the final text."""
    updates = [p for p in trace.partials if p.updated]
    assert updates, "the stream never ran the model"
    for earlier, later in zip(updates, updates[1:]):
        assert later.stable_text.startswith(earlier.stable_text)
    for p in updates:
        assert p.text.startswith(p.stable_text)
        assert all(q.text.startswith(p.stable_text) for q in updates if q.audio_seconds >= p.audio_seconds)
        assert trace.final_text.startswith(p.stable_text)
        assert math.isfinite(p.latency_ms) and p.latency_ms > 0
        assert p.settled_seconds <= p.audio_seconds + 1e-9


def test_decoding_a_memory_prefix_repeats_the_offline_steps_until_the_head_leaves_it(moving_head_las, data) -> None:
    """Hard MoChA needs no frame after the one it selects: cut the memory at k frames and the decoder emits
    exactly the offline tokens whose head position is < k, then stops (never attending past the cut)."""
    model = moving_head_las
    enc, greedy = offline_greedy(model, np.concatenate(data[0]))
    frames = int(enc.lengths[0])
    steps = math.ceil(model.config.max_decode_ratio * frames) + 5
    attention = greedy.attention[0]  # (steps, frames), <eos> step included when it ended
    attended = attention.sum(-1) > 0
    # The head's frame is the last one of its chunk (the weights' argmax may be an earlier chunk frame).
    last_nonzero = attention.shape[1] - 1 - (attention[:, ::-1] > 0).argmax(-1)
    positions = np.where(attended, last_nonzero, frames)  # "no frame" counts as past the end
    assert len(set(positions.tolist())) >= 3, "the fixture's head should visit several frames"
    offline = monotonic_greedy(model.decoder, enc.memory, [], steps, stop_at_edge=False)
    assert offline == greedy.tokens[0]
    cuts = 0
    for k in range(1, frames + 1):
        prefix = monotonic_greedy(model.decoder, enc.memory[:, :k], [], steps, stop_at_edge=True)
        leaves = next((i for i, p in enumerate(positions) if p >= k), len(positions))
        assert prefix == greedy.tokens[0][:leaves], f"memory cut at {k} frames"
        cuts += 0 < leaves < len(greedy.tokens[0])
    assert cuts > 0  # some cuts stopped the decoder mid-way


def test_forced_prefix_is_kept_and_the_rest_is_greedy(moving_head_las, data) -> None:
    model = moving_head_las
    enc, greedy = offline_greedy(model, data[0][0])
    steps = math.ceil(model.config.max_decode_ratio * int(enc.lengths[0])) + 5
    tokens = greedy.tokens[0]
    assert monotonic_greedy(model.decoder, enc.memory, tokens[:3], steps, stop_at_edge=False) == tokens
    forced = [tokens[0], 3, 4]  # a commit the model would not make: kept verbatim
    assert monotonic_greedy(model.decoder, enc.memory, forced, steps, stop_at_edge=False)[:3] == forced


def test_stream_with_a_causal_encoder_equals_offline_greedy_exactly(moving_head_las, data, monkeypatch) -> None:
    model = moving_head_las
    wave = np.concatenate(data[0])  # 2.4 s: five recordings in a row
    _, greedy = offline_greedy(model, wave)
    monkeypatch.setattr(model, "encode", causal_oracle(model, wave))
    trace = StreamingRecognizer(model, chunk_seconds=0.1, lookahead_seconds=0.0).run(wave)
    assert trace.final_text == model.tokenizer.decode(greedy.tokens[0])
    check_stability(trace)
    # Tokens were committed while audio was still arriving, not only at the end.
    assert any(p.stable_text for p in trace.partials if p.audio_seconds < 0.8 * len(wave) / RATE)


def test_stream_of_the_overfit_mocha_model_is_stable_and_bounded(mocha_las, data) -> None:
    """The real path (bidirectional listener re-run on the audio so far): stable texts never retract, and the
    final text equals offline greedy decoding whenever the commits were a prefix of it."""
    model = mocha_las
    exact = 0
    for wave, word in zip(data[0], WORDS):
        trace = StreamingRecognizer(model, chunk_seconds=0.05, lookahead_seconds=0.1).run(wave)
        check_stability(trace)
        assert sum(p.updated for p in trace.partials) >= 5
        assert model.tokenizer.decode(trace.committed) == trace.partials[-1].stable_text
        if model.tokenizer.encode(word)[: len(trace.committed)] == trace.committed:
            assert trace.final_text == word  # model.transcribe gives WORDS (the fixture checks it)
            exact += 1
    assert exact >= 1  # the bound is not vacuous


def test_ctc_stream_with_a_causal_encoder_equals_offline_greedy_exactly(ctc_model, data, monkeypatch) -> None:
    model = ctc_model
    wave = np.concatenate(data[0])
    with torch.no_grad():
        out = model(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))
    offline = model.tokenizer.decode(ctc_greedy(out.log_probs, out.lengths)[0])
    assert offline.replace(" ", "") != ""
    monkeypatch.setattr(model, "forward", causal_oracle(model, wave, ctc=True))
    trace = StreamingRecognizer(model, chunk_seconds=0.2, lookahead_seconds=0.0).run(wave)
    assert trace.final_text == offline
    check_stability(trace)
    assert any(p.stable_text for p in trace.partials if p.audio_seconds < 0.8 * len(wave) / RATE)


def test_ctc_stream_of_the_overfit_model_is_stable_and_bounded(ctc_model, data) -> None:
    """As for MoChA, with frame labels as the committed units."""
    exact = 0
    for wave, word in zip(data[0], WORDS):
        trace = StreamingRecognizer(ctc_model, chunk_seconds=0.1, lookahead_seconds=0.2).run(wave)
        check_stability(trace)
        with torch.no_grad():
            labels = ctc_model(torch.from_numpy(wave)[None], torch.tensor([len(wave)])).log_probs[0].argmax(-1)
        if labels[: len(trace.committed)].tolist() == trace.committed:
            assert trace.final_text == word
            exact += 1
    assert exact >= 1


def test_collapse_of_a_prefix_is_a_prefix() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        labels = rng.integers(0, 4, size=int(rng.integers(0, 12))).tolist()
        full = collapse_ctc(labels)
        for k in range(len(labels) + 1):
            assert full[: len(collapse_ctc(labels[:k]))] == collapse_ctc(labels[:k])
    assert collapse_ctc([3, 3, 0, 3, 4, 0, 0, 4]) == [3, 3, 4, 4]


def test_feed_buffers_until_a_chunk_arrived_and_finish_starts_a_new_stream(mocha_las, data) -> None:
    wave = data[0][4]
    rec = StreamingRecognizer(mocha_las, chunk_seconds=0.2, lookahead_seconds=0.1)
    quiet = rec.feed(wave[:1000])
    assert not quiet.updated and quiet.text == "" and quiet.audio_seconds == pytest.approx(1000 / RATE)
    first = rec.feed(wave[1000:4000])
    assert first.updated  # 4000 samples = 0.25 s >= one chunk
    assert not rec.feed(wave[4000:5000]).updated
    final = rec.finish()
    # One update commits nothing (agreement needs two), so the final pass is plain offline greedy decoding.
    assert final == mocha_las.transcribe([wave[:5000]])[0]
    assert rec.feed(np.zeros(100, dtype=np.float32)).audio_seconds == pytest.approx(100 / RATE)  # fresh stream


def test_streaming_refuses_models_that_look_at_future_frames(data) -> None:
    location = tiny_rnn_las(data[1], "location").eval()
    with pytest.raises(ConfigError, match="mocha"):
        StreamingRecognizer(location)
    with pytest.raises(ConfigError, match="eval mode"):
        StreamingRecognizer(tiny_rnn_las(data[1], "mocha").train())
    with pytest.raises(ConfigError, match="agreement"):
        StreamingRecognizer(tiny_rnn_las(data[1], "mocha").eval(), agreement=1)
    with pytest.raises(ConfigError, match="trim_db"):
        StreamingRecognizer(tiny_rnn_las(data[1], "mocha", trim_db=20.0).eval())
