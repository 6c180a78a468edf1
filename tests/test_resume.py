"""Checkpoints: a run killed with SIGKILL and resumed ends exactly like an uninterrupted one; saves are atomic."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from speechseq.checkpoint import STATE_NAME, CheckpointManager, TrainerState, complete_checkpoints
from speechseq.config import to_dict
from speechseq.environment import ENVIRONMENT_NAME, read_starts
from speechseq.train_logging import read_scalars

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "speechseq" / "configs" / "ctc_tiny.yaml"
MAX_STEPS = 12


def _command(fsdd_dir: Path, out: Path, *extra: str) -> list[str]:
    # Dropout, SpecAugment and waveform noise are all on: the resumed run must replay every random draw.
    return [
        sys.executable, "-m", "speechseq.train", f"config={TINY}", f"data.root={fsdd_dir}", f"output_dir={out}",
        f"train.max_steps={MAX_STEPS}", "train.checkpoint_every=3", "train.eval_every=6", "train.keep_last=10",
        "train.load_best_at_end=false", "augment.noise_prob=0.5", *extra,
    ]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}


def _start(command: list[str], log: Path) -> subprocess.Popen:
    with open(log, "w") as handle:
        return subprocess.Popen(command, cwd=REPO, env=_env(), stdout=handle, stderr=subprocess.STDOUT)


def _wait(process: subprocess.Popen, log: Path, timeout: float = 240) -> None:
    assert process.wait(timeout=timeout) == 0, log.read_text()[-3000:]


def _kill_after_step(process: subprocess.Popen, out: Path, kill_step: int, log: Path) -> None:
    """SIGKILL the run as soon as it has logged ``kill_step`` and holds a complete checkpoint."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        done = max(read_scalars(out), default=0)
        if done >= kill_step and complete_checkpoints(out / "checkpoints"):
            process.send_signal(signal.SIGKILL)
            process.wait()
            return
        assert process.poll() is None, f"run ended before the kill at step {kill_step}:\n{log.read_text()[-3000:]}"
        time.sleep(0.02)
    raise AssertionError("the run never reached the kill step")


def test_sigkill_then_resume_reproduces_the_uninterrupted_run(fsdd_dir: Path, tmp_path: Path) -> None:
    kill_step = random.randint(4, MAX_STEPS - 2)
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    # Both runs start together (two cores); the second one is killed and resumed.
    ref_proc = _start(_command(fsdd_dir, reference), tmp_path / "reference.log")
    proc = _start(_command(fsdd_dir, interrupted), tmp_path / "interrupted.log")
    _kill_after_step(proc, interrupted, kill_step, tmp_path / "interrupted.log")
    assert not (interrupted / "final").exists()
    # As if the first part had run on another CPU: the resume must say so (and still replay the run here).
    record = json.loads((interrupted / ENVIRONMENT_NAME).read_text())
    record["starts"][-1]["cpu"] = "another CPU"
    (interrupted / ENVIRONMENT_NAME).write_text(json.dumps(record))
    resumed = _start(_command(fsdd_dir, interrupted, "resume=true"), tmp_path / "resumed.log")
    _wait(ref_proc, tmp_path / "reference.log")
    _wait(resumed, tmp_path / "resumed.log")
    resumed_log = (tmp_path / "resumed.log").read_text()
    assert "resumed from" in resumed_log
    assert "resumed on another environment" in resumed_log and "cpu: another CPU -> " in resumed_log
    assert "another environment" not in (tmp_path / "reference.log").read_text()
    starts = read_starts(interrupted)
    assert [s["step"] for s in read_starts(reference)] == [0] and len(starts) == 2
    assert starts[0]["step"] == 0 and kill_step - 3 < starts[1]["step"] <= kill_step  # checkpoints every 3

    expected, got = read_scalars(reference), read_scalars(interrupted)
    assert sorted(got) == sorted(expected) == list(range(1, MAX_STEPS + 1))
    for step in expected:
        for key, value in expected[step].items():
            assert got[step][key] == pytest.approx(value, rel=1e-6, abs=1e-7), (kill_step, step, key)
    ref_weights = load_file(str(reference / "final" / "model.safetensors"))
    weights = load_file(str(interrupted / "final" / "model.safetensors"))
    assert ref_weights.keys() == weights.keys()
    for key in ref_weights:
        assert torch.allclose(weights[key], ref_weights[key], rtol=0, atol=1e-6), (kill_step, key)
    assert (reference / "metrics.json").read_text() == (interrupted / "metrics.json").read_text()


class _DyingAccelerator:
    """Stands in for ``accelerate.Accelerator``: writes part of a state, then dies (or succeeds)."""

    is_main_process = True

    def __init__(self) -> None:
        self.die = False
        self.loaded: list[str] = []

    def wait_for_everyone(self) -> None:
        pass

    def save_state(self, folder: str) -> None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / "model.safetensors").write_bytes(b"partial")
        if self.die:
            raise KeyboardInterrupt("killed in the middle of save_state")
        (Path(folder) / "optimizer.bin").write_bytes(b"done")

    def load_state(self, folder: str) -> None:
        self.loaded.append(Path(folder).name)


def test_a_kill_during_save_leaves_no_checkpoint_that_loads(tmp_path: Path) -> None:
    accelerator = _DyingAccelerator()
    manager = CheckpointManager(tmp_path, accelerator, keep_last=5)
    manager.save(TrainerState(step=3))
    accelerator.die = True
    with pytest.raises(KeyboardInterrupt):
        manager.save(TrainerState(step=6))
    assert (tmp_path / ".tmp-step_6").is_dir() and not (tmp_path / "step_6").exists()
    assert manager.latest() == tmp_path / "step_3"
    assert manager.load(manager.latest()).step == 3 and accelerator.loaded == ["step_3"]
    # The next save clears the leftover and publishes a complete folder.
    accelerator.die = False
    manager.save(TrainerState(step=6))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_3", "step_6"]
    assert {p.name for p in (tmp_path / "step_6").iterdir()} == {"model.safetensors", "optimizer.bin", STATE_NAME}


def test_incomplete_folders_are_never_resumed_from(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path, _DyingAccelerator(), keep_last=5)
    manager.save(TrainerState(step=4, best_metric=0.5, best_step=4))
    (tmp_path / "step_9").mkdir()  # a folder without trainer state (e.g. copied by hand, half-deleted)
    (tmp_path / "step_9" / "model.safetensors").write_bytes(b"x")
    (tmp_path / ".tmp-step_12").mkdir()  # a save that never got published
    (tmp_path / ".tmp-step_12" / STATE_NAME).write_text("{}")
    assert complete_checkpoints(tmp_path) == [tmp_path / "step_4"]
    state = manager.load(manager.latest())
    assert to_dict(state) == to_dict(TrainerState(step=4, best_metric=0.5, best_step=4))


def test_retention_keeps_the_best_and_the_last_k(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path, _DyingAccelerator(), keep_last=2)
    for step in (1, 2, 3, 4, 5):
        manager.save(TrainerState(step=step, best_step=2))
    assert [p.name for p in complete_checkpoints(tmp_path)] == ["step_2", "step_4", "step_5"]
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())

