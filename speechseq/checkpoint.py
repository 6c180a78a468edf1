"""Training checkpoints that survive a kill at any moment, with best + last-K retention.

A checkpoint is ``OUTPUT_DIR/checkpoints/step_N/``: what ``accelerator.save_state`` writes (model,
optimiser, registered scheduler, grad scaler, and one RNG file per process) plus ``trainer_state.json``
(step, epoch, sampler position, best metric, NaN counters). It is written into a hidden temporary folder
``.tmp-step_N``, flushed to disk, and published with one ``os.replace`` (atomic on POSIX), so a folder named
``step_N`` is always complete; a kill during the save leaves only a ``.tmp-*`` folder, which loading ignores
and the next save deletes. Old checkpoints are renamed to ``.trash-*`` before deletion for the same reason.

Every process calls :meth:`CheckpointManager.save` and :meth:`CheckpointManager.load` (each saves and
restores its own RNG state); the file system must be shared by the processes, as Accelerate assumes.

>>> mgr = CheckpointManager("runs/x/checkpoints", accelerator, keep_last=2)  # doctest: +SKIP
>>> mgr.save(TrainerState(step=100))  # doctest: +SKIP
PosixPath('runs/x/checkpoints/step_100')
>>> mgr.latest()  # doctest: +SKIP
PosixPath('runs/x/checkpoints/step_100')
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from speechseq.config import from_dict, to_dict
from speechseq.errors import SpeechSeqError

STATE_NAME = "trainer_state.json"
_STEP_DIR = re.compile(r"^step_(\d+)$")


class ResumeError(SpeechSeqError):
    """``resume=true`` without a usable checkpoint, or a checkpoint that does not fit the run."""


@dataclasses.dataclass
class TrainerState:
    """The loop's own position and counters, saved beside the Accelerate state.

    Attributes:
        step: optimiser updates done.
        epoch: current epoch (passes over the training data started).
        batches_in_epoch: batches of this epoch consumed by each process (the sampler position).
        sampler: ``BucketBatchSampler.state_dict`` at the save (the configuration is checked on resume).
        best_metric: best value of the monitored metric so far (``None`` before the first evaluation).
        best_step: step of ``best_metric``.
        evals_without_improvement: evaluations since the best one (early-stopping counter).
        nan_in_a_row: consecutive skipped batches with a non-finite loss or gradient.
        nan_total: all such batches so far.
        oom_total: batches that ran out of memory so far.
    """

    step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    sampler: dict[str, Any] = dataclasses.field(default_factory=dict)
    best_metric: float | None = None
    best_step: int | None = None
    evals_without_improvement: int = 0
    nan_in_a_row: int = 0
    nan_total: int = 0
    oom_total: int = 0


def _fsync_tree(folder: Path) -> None:
    """Flush every file of ``folder`` and the folder itself, so a rename publishes complete data."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def complete_checkpoints(root: str | Path) -> list[Path]:
    """``step_N`` folders of ``root`` that hold a trainer state, sorted by step (temp folders excluded)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _STEP_DIR.match(path.name)
        if match and (path / STATE_NAME).is_file():
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def read_trainer_state(folder: str | Path) -> TrainerState:
    """Read ``trainer_state.json`` of a checkpoint folder."""
    path = Path(folder) / STATE_NAME
    try:
        values = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ResumeError(f"{path}: cannot read the trainer state ({err})") from err
    return from_dict(TrainerState, values, path=str(path))


class CheckpointManager:
    """Atomic save, load and retention of ``step_N`` checkpoints under ``root``.

    Args:
        root: the checkpoints folder (``OUTPUT_DIR/checkpoints``).
        accelerator: the run's ``accelerate.Accelerator`` (models/optimisers prepared, scheduler registered).
        keep_last: most recent checkpoints to keep, besides the best one.
    """

    def __init__(self, root: str | Path, accelerator: Any, keep_last: int = 2) -> None:
        self.root = Path(root)
        self.accelerator = accelerator
        self.keep_last = max(1, keep_last)

    def latest(self) -> Path | None:
        """The most recent complete checkpoint, or ``None``."""
        found = complete_checkpoints(self.root)
        return found[-1] if found else None

    def save(self, state: TrainerState) -> Path:
        """Write a checkpoint of the current state at ``state.step`` (all processes call this)."""
        acc = self.accelerator
        final = self.root / f"step_{state.step}"
        tmp = self.root / f".tmp-step_{state.step}"
        if acc.is_main_process:
            self._remove_leftovers()
            if final.exists():  # the same step saved twice (e.g. an evaluation at the last step)
                self._delete(final)
        acc.wait_for_everyone()
        acc.save_state(str(tmp))
        acc.wait_for_everyone()  # every process has written its RNG file
        if acc.is_main_process:
            (tmp / STATE_NAME).write_text(json.dumps(to_dict(state), indent=2) + "\n")
            _fsync_tree(tmp)
            os.replace(tmp, final)  # the atomic publish
            self._rotate(state.best_step)
        acc.wait_for_everyone()
        return final

    def load(self, folder: str | Path) -> TrainerState:
        """Restore model, optimiser, scheduler, scaler and this process's RNG from ``folder``."""
        folder = Path(folder)
        state = read_trainer_state(folder)
        self.accelerator.load_state(str(folder))
        return state

    # ------------------------------------------------------------------------------------ retention
    def _delete(self, folder: Path) -> None:
        # Rename first: a kill during rmtree must not leave a "step_N" that looks complete.
        trash = folder.with_name(f".trash-{folder.name}")
        if trash.exists():
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def _remove_leftovers(self) -> None:
        """Delete temp/trash folders left by a process killed while saving or deleting."""
        if self.root.is_dir():
            for path in self.root.iterdir():
                if path.name.startswith((".tmp-", ".trash-")):
                    shutil.rmtree(path, ignore_errors=True)

    def _rotate(self, best_step: int | None) -> None:
        """Keep the last ``keep_last`` checkpoints and the best one; delete the rest."""
        found = complete_checkpoints(self.root)
        keep = set(found[-self.keep_last :])
        if best_step is not None:
            keep.add(self.root / f"step_{best_step}")
        for path in found:
            if path not in keep:
                self._delete(path)
