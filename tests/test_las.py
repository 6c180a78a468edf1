"""LAS / Transformer / Conformer attention ASR: overfitting real speech, training through the loop, pieces."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from speechseq.audio import load_audio
from speechseq.data.collate import pad_tokens, pad_waves
from speechseq.features import FeatureConfig
from speechseq.models.las import (
    LASConfig, LASModel, PyramidBiLSTMEncoderConfig, SamplingScheduleConfig, add_sos_eos, smoothed_nll,
)
from speechseq.nn.attention import AttentionConfig
from speechseq.nn.decoders import AttentionLSTMDecoderConfig
from speechseq.recipes import available_recipes, register_recipe
from speechseq.text import CharTokenizer

if "las" not in available_recipes():  # until the registry lists it
    register_recipe("las", "speechseq.recipes.las:LASRecipe")

FILES = ["0_jackson_0", "1_nicolas_0", "2_lucas_0", "3_yweweler_0", "7_george_0"]
WORDS = ["zero", "one", "two", "three", "seven"]
MELS = 20


def tiny_rnn_las(tokenizer: CharTokenizer, attention_kind: str = "location", **overrides) -> LASModel:
    torch.manual_seed(0)
    attention = AttentionConfig(kind=attention_kind, attention_dim=32, location_filters=4, location_kernel=5)
    config = LASConfig(
        vocab_size=tokenizer.vocab_size,
        listener=PyramidBiLSTMEncoderConfig(input_dim=MELS, hidden_size=32, num_pyramid_layers=2, dropout=0.0),
        speller=AttentionLSTMDecoderConfig(embedding_dim=16, hidden_size=64, dropout=0.0, attention=attention),
        use_specaugment=False, label_smoothing=0.0, **overrides,
    )
    return LASModel(config, dataclasses.replace(FeatureConfig.asr_16k(), n_mels=MELS), tokenizer)


@pytest.fixture(scope="module")
def five_utterances(fsdd_dir: Path):
    waves = [load_audio(fsdd_dir / f"{name}.wav", 16000) for name in FILES]
    tokenizer = CharTokenizer.from_texts(WORDS)
    wave, wave_lengths = pad_waves(waves)
    tokens, token_lengths = pad_tokens([tokenizer.encode(w) for w in WORDS])
    return waves, tokenizer, (wave, wave_lengths, tokens, token_lengths)


@pytest.mark.parametrize("attention_kind", ["location", "mocha"])
def test_tiny_las_overfits_five_fsdd_utterances(attention_kind: str, five_utterances, tmp_path: Path) -> None:
    """Zero errors on five real recordings after a short full-batch training; save/load keeps them.

    With MoChA, training uses the soft expected alignment and decoding the hard monotonic head.
    """
    waves, tokenizer, batch = five_utterances
    model = tiny_rnn_las(tokenizer, attention_kind)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    hypotheses: list[str] = []
    for step in range(200):
        model.train()
        loss = model(*batch).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        if step % 20 == 19:
            hypotheses = model.eval().transcribe(waves)
            if hypotheses == WORDS:
                break
    assert hypotheses == WORDS
    reloaded = LASModel.from_pretrained(model.save_pretrained(tmp_path / "las"))
    assert reloaded.transcribe(waves) == WORDS
    assert int(reloaded.batches_seen) == int(model.batches_seen) > 0


def test_greedy_hypothesis_is_a_fixed_point_of_teacher_forcing(five_utterances) -> None:
    """Teacher-forcing the greedy output (with <eos>) reproduces it as the argmax: sos/eos bookkeeping agrees."""
    _, tokenizer, batch = five_utterances
    wave, wave_lengths = batch[:2]
    model = tiny_rnn_las(tokenizer)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(15):  # half-trained: it stops with <eos> but is still often wrong
        optimizer.zero_grad()
        model(*batch).loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        enc = model.encode(wave, wave_lengths)
        greedy = model.greedy_decode(enc.memory, enc.lengths)
        tokens, lengths = pad_tokens(greedy.tokens)
        out = model(wave, wave_lengths, tokens, lengths)
    _, targets = add_sos_eos(tokens, lengths)
    stopped = [b for b in range(len(FILES)) if len(greedy.tokens[b]) < greedy.attention[b].shape[0]]
    assert len(stopped) >= 3  # most hypotheses ended with <eos> rather than at the length cap
    for b in stopped:
        steps = int(lengths[b]) + 1
        assert out.logits[b, :steps].argmax(-1).tolist() == targets[b, :steps].tolist()
        torch.testing.assert_close(
            torch.from_numpy(greedy.attention[b]), out.attention[b, :steps, : int(enc.lengths[b])], atol=1e-5, rtol=0
        )


def test_scheduled_sampling_follows_the_ramp_and_is_checkpointed(five_utterances) -> None:
    _, tokenizer, batch = five_utterances
    schedule = SamplingScheduleConfig(start_prob=0.0, end_prob=1.0, start_batch=1, ramp_batches=2)
    model = tiny_rnn_las(tokenizer, sampling=schedule).train()
    probs = [model(*batch).sampling_prob for _ in range(4)]
    assert probs == [0.0, 0.0, 0.5, 1.0]
    model.eval()
    assert model(*batch).sampling_prob == 0.0 and int(model.batches_seen) == 4  # eval does not advance it
    assert int(model.state_dict()["batches_seen"]) == 4


def test_smoothed_nll_reference() -> None:
    gen = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(2, 4, 7, generator=gen), torch.randint(0, 7, (2, 4), generator=gen)
    lengths = torch.tensor([4, 2])
    log_probs = logits.log_softmax(-1)
    plain = -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    expected = torch.stack([plain[0].sum(), plain[1, :2].sum()])
    torch.testing.assert_close(smoothed_nll(logits, targets, lengths, 0.0), expected)
    smooth = 0.9 * plain - 0.1 * log_probs.mean(-1)  # (1-e)·NLL + e·uniform cross-entropy
    torch.testing.assert_close(smoothed_nll(logits, targets, lengths, 0.1), torch.stack([smooth[0].sum(), smooth[1, :2].sum()]))


TINY = [
    "data.corpus=fsdd", "data.max_utterances=8", "data.screen_silence=false", "features.n_mels=20",
    "model.listener.hidden_size=16", "model.listener.num_pyramid_layers=2",
    "model.speller.embedding_dim=8", "model.speller.hidden_size=32", "model.speller.attention.attention_dim=16",
    "model.speller.attention.location_filters=4", "model.speller.attention.location_kernel=5",
    "model.transformer_encoder.d_model=16", "model.transformer_encoder.num_heads=2",
    "model.transformer_encoder.ffn_dim=32", "model.transformer_encoder.num_layers=1",
    "model.transformer_encoder.subsampling_channels=4",
    "model.conformer_encoder.d_model=16", "model.conformer_encoder.num_heads=2", "model.conformer_encoder.ffn_dim=32",
    "model.conformer_encoder.num_layers=1", "model.conformer_encoder.conv_kernel=5",
    "model.conformer_encoder.subsampling_channels=4",
    "model.transformer_decoder.d_model=16", "model.transformer_decoder.num_heads=2",
    "model.transformer_decoder.ffn_dim=32", "model.transformer_decoder.num_layers=1",
    "model.sampling.end_prob=0.5", "model.sampling.start_batch=0", "model.sampling.ramp_batches=2",
    "train.max_steps=4", "train.warmup_steps=1", "train.lr=3e-3", "train.batch_seconds=2.0",
    "train.max_batch_size=4", "train.eval_batch_seconds=20.0", "train.eval_every=2", "train.log_every=1",
    "train.progress=false", "train.tensorboard=false",
]


@pytest.mark.parametrize("backbone", ["rnn", "transformer", "conformer"])
def test_every_backbone_trains_through_the_loop(backbone: str, fsdd_dir: Path, tmp_path: Path) -> None:
    from speechseq.config import load_task_config
    from speechseq.train import train

    out_dir = tmp_path / backbone
    config = load_task_config("las", TINY + [f"model.backbone={backbone}", f"data.root={fsdd_dir}", f"output_dir={out_dir}"])
    metrics = train(config)
    assert set(metrics) >= {"validation", "test"}
    for values in metrics.values():
        assert {"loss", "wer", "cer", "att_focus", "att_diagonality"} <= set(values)
        assert all(torch.isfinite(torch.tensor(v)) for v in values.values())
    steps = [json.loads(line) for line in (out_dir / "scalars.jsonl").read_text().splitlines()]
    assert [s["step"] for s in steps] == [1, 2, 3, 4]
    assert [s["sampling_prob"] for s in steps][:3] == [0.0, 0.25, 0.5]  # the ramp, 2 batches per step
    assert list((out_dir / "attention").glob("validation_*.png")), "attention heatmaps are saved"
    model = LASModel.from_pretrained(out_dir / "final")
    assert model.config.backbone == backbone and int(model.batches_seen) > 0
