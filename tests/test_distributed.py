"""Two-process data-parallel training on CPU through torchrun: different data per rank, identical weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from speechseq.recipes.ctc import CTCRecipe
from speechseq.train_logging import read_scalars

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "speechseq" / "configs" / "ctc_tiny.yaml"
MAX_STEPS = 6


def _rank() -> int:
    return int(os.environ.get("RANK", "0"))


class RecordingRecipe(CTCRecipe):
    """The CTC recipe, recording per rank the utterances of every training step and the evaluated weights."""

    def train_step(self, model: torch.nn.Module, batch: dict[str, Any]) -> dict[str, Any]:
        with open(Path(self.config.output_dir) / f"ids_rank{_rank()}.jsonl", "a") as handle:
            handle.write(json.dumps(batch["ids"]) + "\n")
        return super().train_step(model, batch)

    def eval_records(self, model: torch.nn.Module, batch: dict[str, Any]) -> list[dict[str, Any]]:
        # Overwritten at every evaluation batch: what remains are the weights of the final evaluation.
        weights = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
        save_file(weights, str(Path(self.config.output_dir) / f"weights_rank{_rank()}.safetensors"))
        return super().eval_records(model, batch)


def test_two_cpu_processes_see_different_data_and_end_identical(fsdd_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "speechseq.train", f"task={__name__}:RecordingRecipe", f"config={TINY}", f"data.root={fsdd_dir}",
        f"output_dir={out}", f"train.max_steps={MAX_STEPS}", "train.eval_every=3", "train.load_best_at_end=false",
    ]
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    steps = [[json.loads(line) for line in (out / f"ids_rank{r}.jsonl").read_text().splitlines()] for r in (0, 1)]
    assert len(steps[0]) == len(steps[1]) == MAX_STEPS
    for ids0, ids1 in zip(*steps):
        assert ids0 and ids1 and not set(ids0) & set(ids1)  # each step: two different batches
    train_ids = {i for rank in steps for batch in rank for i in batch}
    assert len(train_ids) == 16  # between them the ranks covered the whole (tiny) training set

    weights = [load_file(str(out / f"weights_rank{r}.safetensors")) for r in (0, 1)]
    final = load_file(str(out / "final" / "model.safetensors"))
    assert weights[0].keys() == weights[1].keys() == final.keys()
    for key in final:
        assert torch.equal(weights[0][key], weights[1][key]), key
        assert torch.equal(weights[0][key], final[key]), key
    # Only the main process logs: one record per update.
    assert sorted(read_scalars(out)) == list(range(1, MAX_STEPS + 1))
    assert set(json.loads((out / "metrics.json").read_text())) == {"validation", "test", "test_unseen"}
