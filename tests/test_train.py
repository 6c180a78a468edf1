"""The training loop in one process: a whole tiny CTC run, NaN/OOM handling, early stopping, LR schedule."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from safetensors.torch import load_file
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from speechseq.checkpoint import complete_checkpoints, read_trainer_state
from speechseq.config import TrainConfig, load_task_config
from speechseq.errors import ConfigError, SpeechSeqError
from speechseq.metrics import word_error_rate
from speechseq.models import from_pretrained
from speechseq.recipes.base import EvalResult, load_asr_splits
from speechseq.recipes.ctc import CTCRecipe
from speechseq.train import Trainer, TrainingDiverged, lr_factor, split_batch
from speechseq.train_logging import read_scalars

TINY = Path(__file__).resolve().parents[1] / "speechseq" / "configs" / "ctc_tiny.yaml"


def tiny_config(fsdd_dir: Path, out: Path, *overrides: str) -> Any:
    return load_task_config(None, [f"config={TINY}", f"data.root={fsdd_dir}", f"output_dir={out}", *overrides])


class PoisonRecipe(CTCRecipe):
    """Turns the loss of chosen ``train_step`` calls (1-based) into NaN, and fakes OOM on large batches."""

    nan_calls: ClassVar[set[int]] = set()
    oom_above: ClassVar[int | None] = None
    log: ClassVar[dict[str, list]] = {}

    def train_step(self, model: torch.nn.Module, batch: dict[str, Any]) -> dict[str, Any]:
        calls = self.log.setdefault("calls", [])
        calls.append(list(batch["ids"]))
        if self.oom_above is not None and len(batch["ids"]) > self.oom_above:
            self.log.setdefault("oom", []).append(list(batch["ids"]))
            raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB (simulated)")
        out = super().train_step(model, batch)
        if len(calls) in self.nan_calls:
            self.log.setdefault("nan", []).append(list(batch["ids"]))
            out["loss"] = out["loss"] * float("nan")
        else:
            self.log.setdefault("trained", []).extend(batch["ids"])
        return out


class ConstantMetricRecipe(CTCRecipe):
    """Reports a metric that never improves after the first evaluation."""

    def summarize(self, records: list[dict[str, Any]], split: str) -> EvalResult:
        result = super().summarize(records, split)
        return EvalResult(metrics={**result.metrics, "score": 1.0})


class ImprovingMetricRecipe(CTCRecipe):
    """Reports a metric that improves at every evaluation (the number of evaluations so far, negated)."""

    calls: ClassVar[int] = 0

    def summarize(self, records: list[dict[str, Any]], split: str) -> EvalResult:
        result = super().summarize(records, split)
        ImprovingMetricRecipe.calls += 1
        return EvalResult(metrics={**result.metrics, "score": -float(ImprovingMetricRecipe.calls)})


@pytest.fixture(autouse=True)
def _reset_poison() -> None:
    PoisonRecipe.nan_calls, PoisonRecipe.oom_above, PoisonRecipe.log = set(), None, {}


def test_tiny_ctc_run_writes_everything_consistently(fsdd_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = tiny_config(fsdd_dir, out, "train.tensorboard=true")
    metrics = Trainer(cfg).fit()
    # metrics.json holds the final evaluation of every evaluation split.
    assert json.loads((out / "metrics.json").read_text()) == metrics
    assert set(metrics) == {"validation", "test", "test_unseen"}
    assert all(set(m) == {"loss", "wer", "cer"} for m in metrics.values())
    # The copy of the merged config reloads to the same config.
    assert load_task_config(None, [f"config={out / 'config.yaml'}"]) == cfg
    # Every update is in scalars.jsonl, with the learning rate the schedule prescribes.
    scalars = read_scalars(out)
    assert sorted(scalars) == list(range(1, cfg.train.max_steps + 1))
    for step, values in scalars.items():
        assert values["lr"] == pytest.approx(cfg.train.lr * lr_factor(step - 1, cfg.train))
        assert math.isfinite(values["loss"]) and values["grad_norm"] > 0
    # TensorBoard: training curves, evaluation metrics of every split, the recipe's images and texts.
    events = EventAccumulator(str(out / "tensorboard"), size_guidance={"images": 0, "tensors": 0})
    events.Reload()
    tags = events.Tags()
    assert {"train/loss", "train/lr", "train/grad_norm", "validation/wer", "test/wer", "test_unseen/cer"} <= set(
        tags["scalars"]
    )
    assert [e.value for e in events.Scalars("train/loss")] == pytest.approx([v["loss"] for v in scalars.values()])
    assert any(tag.startswith("validation/posteriors/") for tag in tags["images"])
    assert any(tag.startswith("test/samples") for tag in tags["tensors"])
    # The exported model reproduces the reported test WER on its own.
    model = from_pretrained(out / "final")
    test = load_asr_splits(cfg.data)["test"]
    hyps = model.transcribe([_load(row["audio"]["path"]) for row in test], sample_rate=8000)
    assert word_error_rate(test["text"], hyps) == pytest.approx(metrics["test"]["wer"])


def _load(path: str) -> Any:
    import soundfile

    return soundfile.read(path, dtype="float32")[0]


def test_ctc_recipe_overfits_four_utterances(fsdd_dir: Path, tmp_path: Path) -> None:
    cfg = tiny_config(fsdd_dir, tmp_path, "data.max_utterances=4", "model.use_specaugment=false",
                      "model.encoder.hidden_size=32", "model.dropout=0", "model.encoder.dropout=0")
    recipe = CTCRecipe(cfg)
    parts = recipe.build()
    rows = [parts.datasets["train"][i] for i in range(len(parts.datasets["train"]))]
    batch = parts.train_collator(rows)
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(parts.model.parameters(), 3e-3)
    for _ in range(200):
        parts.model.train()
        loss = recipe.train_step(parts.model, batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    result = recipe.evaluate(parts.model.eval(), [batch], "train")
    assert result.metrics["wer"] == 0.0 and result.metrics["loss"] < 0.2


def test_nan_batches_are_skipped_counted_and_named(
    fsdd_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    PoisonRecipe.nan_calls = {2, 3}
    cfg = tiny_config(fsdd_dir, tmp_path / "run", f"task={__name__}:PoisonRecipe", "train.eval_every=0",
                      "train.max_steps=5")
    trainer = Trainer(cfg)
    with caplog.at_level(logging.WARNING, logger="speechseq"):
        trainer.fit()
    assert trainer.state.step == 5
    assert trainer.state.nan_total == 2 and trainer.state.nan_in_a_row == 0
    assert len(PoisonRecipe.log["calls"]) == 7  # 5 applied updates + 2 skipped batches
    for ids in PoisonRecipe.log["nan"]:
        assert any("non-finite loss" in r.message and all(i in r.message for i in ids) for r in caplog.records)
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert all(math.isfinite(v["loss"]) for v in read_scalars(tmp_path / "run").values())


def test_too_many_nan_in_a_row_stops_with_a_clear_message(fsdd_dir: Path, tmp_path: Path) -> None:
    PoisonRecipe.nan_calls = set(range(2, 100))
    cfg = tiny_config(fsdd_dir, tmp_path, f"task={__name__}:PoisonRecipe", "train.eval_every=0",
                      "train.max_nan_in_a_row=2")
    with pytest.raises(TrainingDiverged, match=r"3 batches in a row .*train.max_nan_in_a_row=2"):
        Trainer(cfg).fit()
    assert len(PoisonRecipe.log["calls"]) == 4  # 1 good, then 3 NaN batches


def test_out_of_memory_batches_are_split_in_halves(fsdd_dir: Path, tmp_path: Path) -> None:
    PoisonRecipe.oom_above = 2
    cfg = tiny_config(fsdd_dir, tmp_path, f"task={__name__}:PoisonRecipe", "train.eval_every=0",
                      "train.max_steps=6")
    trainer = Trainer(cfg)
    trainer.fit()
    assert trainer.state.step == 6
    failed = PoisonRecipe.log.get("oom", [])
    assert failed and trainer.state.oom_total == len(failed)
    trained = PoisonRecipe.log["trained"]
    assert all(i in trained for ids in failed for i in ids)  # nothing of a failed batch was lost


def test_split_batch_cuts_per_utterance_fields_only() -> None:
    batch = {"ids": ["a", "b", "c"], "wave": torch.arange(6).view(3, 2), "skipped": [("x", "bad")]}
    first, second = split_batch(batch)
    assert first["ids"] == ["a"] and second["ids"] == ["b", "c"]
    assert torch.equal(torch.cat([first["wave"], second["wave"]]), batch["wave"])
    assert first["skipped"] == second["skipped"] == [("x", "bad")]


def test_early_stopping_keeps_and_exports_the_best_checkpoint(fsdd_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = tiny_config(fsdd_dir, out, f"task={__name__}:ConstantMetricRecipe", "train.metric=score",
                      "train.eval_every=2", "train.checkpoint_every=0", "train.patience=2", "train.keep_last=1",
                      "train.max_steps=20")
    trainer = Trainer(cfg)
    trainer.fit()
    assert trainer.state.step == 6 and trainer.state.best_step == 2  # evals at 2 (best), 4, 6 -> stop
    assert [p.name for p in complete_checkpoints(out / "checkpoints")] == ["step_2", "step_6"]
    assert read_trainer_state(out / "checkpoints" / "step_6").evals_without_improvement == 2
    best = load_file(str(out / "checkpoints" / "step_2" / "model.safetensors"))
    final = load_file(str(out / "final" / "model.safetensors"))
    assert best.keys() == final.keys() and all(torch.equal(best[k], final[k]) for k in best)


def test_last_updates_are_evaluated_before_the_best_checkpoint_is_chosen(fsdd_dir: Path, tmp_path: Path) -> None:
    # max_steps=5 with eval_every=2: step 5 is never a scheduled evaluation; without a final one the run
    # would export step 4 and throw the fifth update away.
    out = tmp_path / "run"
    ImprovingMetricRecipe.calls = 0
    cfg = tiny_config(fsdd_dir, out, f"task={__name__}:ImprovingMetricRecipe", "train.metric=score",
                      "train.eval_every=2", "train.max_steps=5", "train.keep_last=1")
    trainer = Trainer(cfg)
    trainer.fit()
    assert trainer.state.step == 5 and trainer.state.best_step == 5
    last = load_file(str(out / "checkpoints" / "step_5" / "model.safetensors"))
    final = load_file(str(out / "final" / "model.safetensors"))
    assert all(torch.equal(last[k], final[k]) for k in last)


@pytest.mark.parametrize("schedule", ["cosine", "linear", "noam", "constant"])
def test_lr_schedule_warms_up_linearly_then_decays(schedule: str) -> None:
    cfg = TrainConfig(max_steps=101, warmup_steps=10, schedule=schedule, min_lr_ratio=0.1)
    factors = [lr_factor(s, cfg) for s in range(101)]
    assert factors[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert factors[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[10:], factors[11:]))  # never increases after warm-up
    expected_end = {"cosine": 0.1, "linear": 0.1, "noam": math.sqrt(10 / 100), "constant": 1.0}[schedule]
    assert factors[-1] == pytest.approx(expected_end)


def test_bad_metric_name_lists_the_available_ones(fsdd_dir: Path, tmp_path: Path) -> None:
    cfg = tiny_config(fsdd_dir, tmp_path, "train.metric=bleu", "train.eval_every=1", "train.max_steps=1")
    with pytest.raises(ConfigError, match=r"train.metric: 'bleu' is not reported .*available: loss, wer, cer"):
        Trainer(cfg).fit()


def test_init_from_starts_from_the_saved_weights_and_tokenizer(fsdd_dir: Path, tmp_path: Path) -> None:
    first = tmp_path / "first"
    Trainer(tiny_config(fsdd_dir, first, "train.max_steps=4")).fit()
    saved = load_file(str(first / "final" / "model.safetensors"))
    # Fine-tune with a zero learning rate: the exported weights must be exactly the initial ones.
    second = tmp_path / "second"
    Trainer(tiny_config(fsdd_dir, second, "train.max_steps=2", "train.lr=0", f"train.init_from={first / 'final'}")).fit()
    tuned = load_file(str(second / "final" / "model.safetensors"))
    assert saved.keys() == tuned.keys()
    assert all(torch.equal(saved[k], tuned[k]) for k in saved)
    assert (first / "final" / "tokenizer.json").read_text() == (second / "final" / "tokenizer.json").read_text()


def test_init_from_a_model_of_another_shape_names_the_folder(fsdd_dir: Path, tmp_path: Path) -> None:
    first = tmp_path / "first"
    Trainer(tiny_config(fsdd_dir, first, "train.max_steps=1")).fit()
    other = tiny_config(fsdd_dir, tmp_path / "second", "model.encoder.hidden_size=8", f"train.init_from={first / 'final'}")
    with pytest.raises(SpeechSeqError, match="model.safetensors"):
        Trainer(other).fit()


def test_final_beam_search_of_width_one_reports_the_greedy_figures(fsdd_dir: Path, tmp_path: Path) -> None:
    # decode.beam_size=1 on a CTC model is best-path decoding again, through speechseq.inference instead of
    # the recipe's own greedy evaluation: both paths must score every split identically.
    cfg = tiny_config(fsdd_dir, tmp_path / "run", "decode.beam_size=1", "train.max_steps=4")
    metrics = Trainer(cfg).fit()
    for split, values in metrics.items():
        assert values["beam_wer"] == pytest.approx(values["wer"]), split
        assert values["beam_cer"] == pytest.approx(values["cer"]), split


def test_final_decode_lm_with_another_vocabulary_fails_before_training(fsdd_dir: Path, tmp_path: Path) -> None:
    from speechseq.models.lm import LMConfig, RNNLM

    lm_dir = tmp_path / "lm"
    RNNLM(LMConfig(vocab_size=7, embedding_dim=4, hidden_size=4, num_layers=1)).save_pretrained(lm_dir)
    cfg = tiny_config(fsdd_dir, tmp_path / "run", "decode.beam_size=4", f"decode.lm={lm_dir}")
    with pytest.raises(ConfigError, match="decode.lm: .*tokens"):
        CTCRecipe(cfg).build()
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_frozen_parameters_keep_their_pretrained_values_while_the_rest_trains(
    fsdd_dir: Path, tmp_path: Path
) -> None:
    first = tmp_path / "first"
    Trainer(tiny_config(fsdd_dir, first, "train.max_steps=2")).fit()
    saved = load_file(str(first / "final" / "model.safetensors"))
    second = tmp_path / "second"
    Trainer(tiny_config(fsdd_dir, second, "train.max_steps=3", "train.lr=1e-2", f"train.init_from={first / 'final'}",
                        "train.freeze=[encoder]")).fit()
    tuned = load_file(str(second / "final" / "model.safetensors"))
    frozen = [k for k in saved if k.startswith("encoder.")]
    assert frozen and all(torch.equal(saved[k], tuned[k]) for k in frozen)
    assert any(not torch.equal(saved[k], tuned[k]) for k in saved if k not in frozen)


def test_a_freeze_prefix_that_names_no_parameter_is_refused_by_name(fsdd_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"train.freeze: 'encodr' names no parameter.*encoder"):
        Trainer(tiny_config(fsdd_dir, tmp_path, "train.freeze=[encodr]")).fit()
    # "encoder.layer" is a prefix of names, not a module: it must not freeze "encoder.layers.*" by accident.
    with pytest.raises(ConfigError, match="'encoder.layer' names no parameter"):
        Trainer(tiny_config(fsdd_dir, tmp_path, "train.freeze=[encoder.layer]")).fit()
