"""Dynamic int8 quantisation (speechseq.quantize) of tiny CTC and LAS models overfit to real FSDD speech."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_inference import OTHERS, overfit, tiny_ctc, training_batch
from test_las import FILES, WORDS, tiny_rnn_las

from speechseq.audio import load_audio
from speechseq.data.collate import pad_waves
from speechseq.decoding import DecodingOptions
from speechseq.errors import ConfigError
from speechseq.inference import transcribe
from speechseq.models.lm import LMConfig, RNNLM
from speechseq.quantize import count_quantized_layers, quantize_dynamic, state_dict_bytes
from speechseq.text import CharTokenizer

# int8 weights with one scale per tensor: log-probabilities move by a few hundredths of a nat on average.
# A shift of 0.5 nat would change a probability by a factor 1.65: far beyond what int8 rounding should do.
MAX_LOGPROB_SHIFT = 0.5
MEAN_LOGPROB_SHIFT = 0.1


@pytest.fixture(scope="module")
def data(fsdd_dir: Path):
    waves = [load_audio(fsdd_dir / f"{name}.wav", 16000) for name in FILES + OTHERS]
    tokenizer = CharTokenizer.from_texts(WORDS)
    return waves, tokenizer, training_batch(waves[:5], tokenizer)


def frame_shift(a: torch.Tensor, b: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """|a − b| of (B, T, V) log-probs on valid frames only, flattened."""
    valid = torch.arange(a.size(1)).unsqueeze(0) < lengths.unsqueeze(1)
    return (a - b).abs()[valid]


def test_int8_ctc_model_keeps_its_transcripts_and_shrinks(data) -> None:
    waves, tokenizer, batch = data
    model = overfit(tiny_ctc(tokenizer), batch, waves[:5])
    wave, lengths = pad_waves(waves)
    with torch.no_grad():
        before = model(wave, lengths).log_probs
    small = quantize_dynamic(model)
    assert count_quantized_layers(small) == 2 and count_quantized_layers(model) == 0  # BiLSTM + CTC head
    assert small.transcribe(waves[:5]) == WORDS
    with torch.no_grad():
        out = small(wave, lengths)
        torch.testing.assert_close(model(wave, lengths).log_probs, before, rtol=0, atol=0)  # original untouched
    shift = frame_shift(before, out.log_probs, out.lengths)
    assert shift.max() < MAX_LOGPROB_SHIFT and shift.mean() < MEAN_LOGPROB_SHIFT
    assert state_dict_bytes(small) < 0.5 * state_dict_bytes(model)


def test_int8_las_model_keeps_its_transcripts_for_every_search(data) -> None:
    waves, tokenizer, batch = data
    # The first match can hinge on a 0.1-nat margin at one step; train on so that int8 rounding cannot flip it.
    model = overfit(tiny_rnn_las(tokenizer, "location"), batch, waves[:5], extra_steps=30)
    small = quantize_dynamic(model)
    assert small.transcribe(waves[:5]) == WORDS
    joint = DecodingOptions(beam_size=3, ctc_weight=0.3)
    assert [r.text for r in transcribe(small, waves[:5], joint)] == WORDS
    with torch.no_grad():
        float_out, int8_out = model(*batch), small(*batch)
    token_lengths = batch[3] + 1  # targets and <eos>
    decoder_shift = frame_shift(float_out.logits.log_softmax(-1), int8_out.logits.log_softmax(-1), token_lengths)
    ctc_shift = frame_shift(float_out.encoder.ctc_log_probs, int8_out.encoder.ctc_log_probs, float_out.encoder.lengths)
    for shift in (decoder_shift, ctc_shift):
        assert shift.max() < MAX_LOGPROB_SHIFT and shift.mean() < MEAN_LOGPROB_SHIFT
    assert float(int8_out.loss) == pytest.approx(float(float_out.loss), abs=0.05)
    assert state_dict_bytes(small) < 0.4 * state_dict_bytes(model)  # LSTMs are most of a LAS model


def test_int8_language_model_scores_stay_close() -> None:
    torch.manual_seed(0)
    lm = RNNLM(LMConfig(vocab_size=20, embedding_dim=32, hidden_size=64, num_layers=2, dropout=0.0)).eval()
    tokens = torch.randint(3, 20, (4, 9), generator=torch.Generator().manual_seed(1))
    lengths = torch.tensor([9, 7, 5, 3])
    small = quantize_dynamic(lm)
    with torch.no_grad():
        a, b = lm(tokens, lengths), small(tokens, lengths)
        step = small.step(torch.full((4,), 2), small.init_state(4))
    shift = (a.logits.log_softmax(-1) - b.logits.log_softmax(-1)).abs()
    assert shift.max() < MAX_LOGPROB_SHIFT and shift.mean() < MEAN_LOGPROB_SHIFT
    # Step-wise scoring (what shallow fusion uses) stays close to the quantised teacher-forced forward, but not
    # equal: activations are quantised with the range of each call's input, so the batch shape matters.
    torch.testing.assert_close(step.logits, b.logits[:, 0], atol=0.05, rtol=0)


def test_fp16_weights_and_bad_dtypes() -> None:
    lm = RNNLM(LMConfig(vocab_size=10, embedding_dim=8, hidden_size=8, num_layers=1)).eval()
    assert count_quantized_layers(quantize_dynamic(lm, dtype=torch.float16)) == 2
    with pytest.raises(ConfigError, match="dtype"):
        quantize_dynamic(lm, dtype=torch.int32)
