"""RNN language model: step == teacher forcing, batching, save/load, perplexity, learning a tiny text."""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from pathlib import Path

import pytest
import torch

from speechseq.config import load_task_config
from speechseq.models import available_families, from_pretrained, register_family
from speechseq.models.lm import LMConfig, RNNLM, perplexity
from speechseq.recipes import available_recipes, register_recipe
from speechseq.train import train

if "lm" not in available_recipes():  # until the registry lists it
    register_recipe("lm", "speechseq.recipes.lm:LMRecipe")
if "lm" not in available_families():
    register_family("lm", "speechseq.models.lm:RNNLM")

EOS = 2


def pad(sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(s) for s in sequences])
    tokens = torch.zeros(len(sequences), int(lengths.max()), dtype=torch.long)
    for i, s in enumerate(sequences):
        tokens[i, : len(s)] = torch.tensor(s)
    return tokens, lengths


def tiny_lm(tie: bool, seed: int = 0, layers: int = 2) -> RNNLM:
    torch.manual_seed(seed)
    config = LMConfig(vocab_size=11, embedding_dim=6, hidden_size=10, num_layers=layers, dropout=0.3, tie_weights=tie)
    return RNNLM(config).eval()


@torch.no_grad()
@pytest.mark.parametrize("tie", [False, True])
@pytest.mark.parametrize("cell_rows", [128, 0])  # per-layer cells (few rows) and the fused nn.LSTM step
def test_step_by_step_equals_teacher_forcing(tie, cell_rows, monkeypatch):
    monkeypatch.setattr("speechseq.models.lm.CELL_ROWS", cell_rows)
    lm = tiny_lm(tie)
    tokens, lengths = pad([[3, 4, 5, 6, 7], [8, 9, 10]])
    teacher = lm(tokens, lengths).logits  # (B, L+1, V)
    state = lm.init_state(2)
    prev = torch.full((2,), EOS)
    for t in range(tokens.size(1) + 1):
        out = lm.step(prev, state)
        for b in range(2):
            if t <= int(lengths[b]):
                assert torch.allclose(out.logits[b], teacher[b, t], atol=1e-5)
        state = out.state
        prev = tokens[:, t] if t < tokens.size(1) else prev


@torch.no_grad()
def test_padded_batch_loss_equals_sum_of_single_sentences():
    lm = tiny_lm(False)
    sentences = [[3, 4, 5, 6, 7], [8, 9], [10, 3, 3]]
    batch = lm(*pad(sentences))
    singles = [lm(*pad([s])) for s in sentences]
    assert batch.num_tokens == sum(len(s) + 1 for s in sentences)
    assert batch.nll_sum.item() == pytest.approx(sum(o.nll_sum.item() for o in singles), rel=1e-5)


def test_uniform_model_has_perplexity_equal_to_vocabulary_size():
    lm = tiny_lm(False)
    with torch.no_grad():
        for p in lm.parameters():
            p.zero_()
    assert perplexity(lm, [pad([[3, 4, 5], [6]])]) == pytest.approx(11.0, rel=1e-5)


@torch.no_grad()
def test_tied_weights_are_shared_and_survive_save_load(tmp_path):
    lm = tiny_lm(True, layers=1)
    assert lm.output.weight.data_ptr() == lm.embedding.weight.data_ptr()
    assert lm.projection is not None  # hidden 10 -> embedding 6 before the tied output
    lm.save_pretrained(tmp_path)
    loaded = RNNLM.from_pretrained(tmp_path)
    assert loaded.output.weight.data_ptr() == loaded.embedding.weight.data_ptr()
    tokens, lengths = pad([[3, 4, 5], [6, 7]])
    assert torch.equal(lm(tokens, lengths).logits, loaded(tokens, lengths).logits)


def _grammar_sentences(count: int, rng: random.Random) -> list[str]:
    subjects, verbs, objects = ["the cat", "a dog", "my bird"], ["sees", "likes", "eats"], ["fish", "seeds", "milk"]
    return [f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}" for _ in range(count)]


def test_lm_trained_on_tiny_text_beats_unigram_perplexity():
    rng = random.Random(0)
    train_text, test_text = _grammar_sentences(96, rng), _grammar_sentences(32, rng)
    symbols = sorted(set("".join(train_text + test_text)))
    ids = {ch: i + 3 for i, ch in enumerate(symbols)}
    encode = lambda texts: [[ids[ch] for ch in t] for t in texts]
    train, test = pad(encode(train_text)), pad(encode(test_text))

    # Unigram model (add-one smoothed over symbols + eos) estimated on train, evaluated on test.
    counts = Counter(tok for s in encode(train_text) for tok in s) + Counter({EOS: len(train_text)})
    total = sum(counts.values()) + len(ids) + 1
    test_tokens = [tok for s in encode(test_text) for tok in s] + [EOS] * len(test_text)
    unigram_ppl = math.exp(-sum(math.log((counts[t] + 1) / total) for t in test_tokens) / len(test_tokens))

    torch.manual_seed(0)
    lm = RNNLM(LMConfig(vocab_size=len(ids) + 3, embedding_dim=24, hidden_size=48, num_layers=1, dropout=0.0))
    optimizer = torch.optim.Adam(lm.parameters(), lr=1e-2)
    initial = perplexity(lm, [test])
    for _ in range(50):
        loss = lm(*train).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    trained = perplexity(lm, [test])
    assert initial > unigram_ppl  # an untrained model is worse than counting
    assert trained < 0.5 * unigram_ppl  # the LSTM has learned the spelling and the grammar


def test_lm_task_trains_through_the_loop_and_exports_a_loadable_model(tmp_path: Path):
    rng = random.Random(1)
    files = {}
    for split, count in (("train", 80), ("validation", 16)):
        files[split] = tmp_path / f"{split}.txt"
        files[split].write_text("\n".join(_grammar_sentences(count, rng)) + "\n")
    out = tmp_path / "run"
    cfg = load_task_config("lm", [
        "data.source=text", f"data.text_files.train={files['train']}",
        f"data.text_files.validation={files['validation']}", f"output_dir={out}",
        "model.embedding_dim=16", "model.hidden_size=32", "model.num_layers=1", "model.dropout=0.0",
        "train.max_steps=60", "train.lr=1e-2", "train.warmup_steps=0", "train.eval_every=30",
        "train.batch_seconds=600", "train.progress=false", "train.tensorboard=false",
    ])
    metrics = train(cfg)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["validation"]["perplexity"] == pytest.approx(metrics["validation"]["perplexity"])
    assert saved["validation"]["perplexity"] == pytest.approx(math.exp(saved["validation"]["loss"]), rel=1e-6)
    assert saved["validation"]["perplexity"] < 0.5 * saved["validation"]["unigram_perplexity"]
    model = from_pretrained(out / "final")
    assert isinstance(model, RNNLM) and model.tokenizer is not None
    sentence = "the cat likes milk"
    tokens = torch.tensor([model.tokenizer.encode(sentence)])
    per_token = model(tokens, torch.tensor([tokens.size(1)])).loss.item()
    assert math.exp(per_token) < saved["validation"]["unigram_perplexity"]
