"""What a person sees of a run: progress bar, one line per evaluation, TensorBoard, and files in the run folder.

Only the main process writes. Files in ``OUTPUT_DIR``:

* ``config.yaml``: the merged config the run used (reload it with ``config=OUTPUT_DIR/config.yaml``);
* ``scalars.jsonl``: one JSON line per optimiser update (step, loss, lr, grad norm, recipe scalars), flushed
  at once so that a killed run keeps its curve; a resumed run appends, and the last line of a step wins;
* ``metrics.json``: ``{split: {metric: value}}`` of the final evaluation;
* ``environment.json``: every start of the run (versions, CPU, threads, commit; ``speechseq.environment``),
  written by the trainer;
* ``tensorboard/``: event files (scalars, plus the images, audio and texts a recipe returns).

>>> log = RunLogger("runs/x", is_main=True, total_steps=100)  # doctest: +SKIP
>>> log.step(1, {"loss": 2.3, "lr": 1e-4})  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from speechseq.recipes.base import EvalResult

logger = logging.getLogger("speechseq.train")

SCALARS_NAME = "scalars.jsonl"
METRICS_NAME = "metrics.json"
CONFIG_NAME = "config.yaml"


class _TqdmHandler(logging.Handler):
    """Log records written with ``tqdm.write`` so they do not break the progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm.auto import tqdm

        tqdm.write(self.format(record))


def setup_console_logging(is_main: bool) -> None:
    """INFO lines on the main process (through tqdm), warnings only elsewhere."""
    root = logging.getLogger("speechseq")
    if not any(isinstance(h, _TqdmHandler) for h in root.handlers):
        handler = _TqdmHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        root.addHandler(handler)
    root.setLevel(logging.INFO if is_main else logging.WARNING)
    root.propagate = False
    import datasets

    # One line per split from screening says enough; per-map progress bars only clutter the console.
    datasets.disable_progress_bars()


def format_metrics(metrics: Mapping[str, float]) -> str:
    """``{"wer": 0.0123, "loss": 1.5}`` -> ``"wer 0.0123 | loss 1.5"``."""
    return " | ".join(f"{k} {v:.4g}" for k, v in metrics.items())


def _heatmap(matrix: np.ndarray, title: str) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(6, 3))
    image = axis.imshow(np.asarray(matrix), aspect="auto", origin="lower", interpolation="none")
    axis.set_title(title)
    fig.colorbar(image, ax=axis)
    fig.tight_layout()
    return fig


class RunLogger:
    """Progress bar, TensorBoard and run-folder files of one training run (silent off the main process).

    Args:
        output_dir: the run folder.
        is_main: whether this process writes (``accelerator.is_main_process``).
        total_steps: steps of the whole run, for the bar's ETA.
        initial_step: steps already done (after a resume).
        progress: show the tqdm bar.
        tensorboard: write TensorBoard events under ``output_dir/tensorboard``.
    """

    def __init__(
        self,
        output_dir: str | Path,
        is_main: bool,
        total_steps: int,
        initial_step: int = 0,
        progress: bool = True,
        tensorboard: bool = True,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.is_main = is_main
        self._bar = None
        self._writer = None
        self._scalars = None
        if not is_main:
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._scalars = open(self.output_dir / SCALARS_NAME, "a", encoding="utf-8")
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.output_dir / "tensorboard"))
        if progress:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total_steps, initial=initial_step, desc="train", unit="step", dynamic_ncols=True)

    def write_config(self, config_yaml: str) -> Path:
        """Save the merged config as ``config.yaml``."""
        path = self.output_dir / CONFIG_NAME
        if self.is_main:
            path.write_text(config_yaml)
        return path

    def step(self, step: int, scalars: Mapping[str, float], to_tensorboard: bool = True) -> None:
        """Record one optimiser update: advance the bar, append to ``scalars.jsonl``, maybe TensorBoard."""
        if not self.is_main:
            return
        clean = {k: float(v) for k, v in scalars.items()}
        if self._scalars is not None:
            self._scalars.write(json.dumps({"step": step, **clean}) + "\n")
            self._scalars.flush()
        if self._bar is not None:
            self._bar.update(step - self._bar.n)
            shown = {k: f"{clean[k]:.3g}" for k in ("loss", "lr", "grad_norm") if k in clean}
            self._bar.set_postfix(shown, refresh=False)
        if self._writer is not None and to_tensorboard:
            for key, value in clean.items():
                if math.isfinite(value):
                    self._writer.add_scalar(f"train/{key}", value, step)

    def evaluation(self, step: int, split: str, result: EvalResult, best: bool = False) -> None:
        """One clean log line, and the metrics and artifacts in TensorBoard under ``{split}/``."""
        if not self.is_main:
            return
        marker = " (best)" if best else ""
        logger.info("step %d | %s | %s%s", step, split, format_metrics(result.metrics), marker)
        if self._writer is None:
            return
        for key, value in result.metrics.items():
            self._writer.add_scalar(f"{split}/{key}", value, step)
        for name, matrix in result.images.items():
            self._writer.add_figure(f"{split}/{name}", _heatmap(matrix, name), step, close=True)
        for name, (wave, rate) in result.audio.items():
            self._writer.add_audio(f"{split}/{name}", np.asarray(wave, dtype=np.float32)[None], step, sample_rate=rate)
        for name, text in result.texts.items():
            self._writer.add_text(f"{split}/{name}", text, step)
        self._writer.flush()

    def write_metrics(self, metrics: Mapping[str, Mapping[str, float]]) -> Path:
        """Save ``{split: {metric: value}}`` as ``metrics.json``."""
        path = self.output_dir / METRICS_NAME
        if self.is_main:
            values = {split: {k: float(v) for k, v in m.items()} for split, m in metrics.items()}
            path.write_text(json.dumps(values, indent=2) + "\n")
        return path

    def close(self) -> None:
        """Close the bar, the TensorBoard writer and the scalars file."""
        if self._bar is not None:
            self._bar.close()
        if self._writer is not None:
            self._writer.close()
        if self._scalars is not None:
            self._scalars.close()


def read_scalars(output_dir: str | Path) -> dict[int, dict[str, float]]:
    """``scalars.jsonl`` as ``{step: scalars}``; the last record of a step wins (resumed runs append).

    A line cut short by a kill is ignored.
    """
    records: dict[int, dict[str, float]] = {}
    path = Path(output_dir) / SCALARS_NAME
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        records[int(record.pop("step"))] = record
    return records
