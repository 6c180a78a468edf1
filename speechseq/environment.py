"""What a run ran on: library versions, CPU, threads and source commit, kept in ``{output_dir}/environment.json``.

A seeded run reproduces bit for bit on the same machine and software (a SIGKILLed and resumed run ends
exactly like an uninterrupted one, ``tests/test_resume.py``), but not on another CPU or another build of
torch: their kernels sum in another order, and the rounding differences grow over hundreds of updates. On
FSDD the same pre-training command and seed, run on two machines, gave fine-tuned models a point of WER
apart (``tasks/las/fsdd_experiments.md``, stop 23). So every start of a run appends what it runs on, and a resume on
something else says which keys changed: its continuation is not the uninterrupted run's.

    >>> changed({"torch": "2.13.0", "cpu": "AMD EPYC"}, {"torch": "2.13.0", "cpu": "Intel Xeon"})
    ['cpu: AMD EPYC -> Intel Xeon']
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from speechseq.errors import ConfigError

ENVIRONMENT_NAME = "environment.json"
# The keys that change floating-point results; the commit and the start step are bookkeeping.
NUMERIC_KEYS = ("python", "torch", "numpy", "accelerate", "cpu", "machine", "threads", "cuda_device")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, ``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def source_commit(path: Path = Path(__file__).resolve().parent) -> str | None:
    """The git commit of the checkout holding ``path`` (speechseq's source), with ``+dirty`` when tracked files
    differ from it; None outside a git checkout or without git."""
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, timeout=10)

    try:
        head = run("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        dirty = run("status", "--porcelain", "--untracked-files=no").stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def describe() -> dict[str, Any]:
    """This process's environment: versions, CPU, intra-op threads, CUDA device and source commit."""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": _version("numpy"),
        "accelerate": _version("accelerate"),
        "cpu": cpu_model(),
        "machine": platform.machine(),
        "threads": torch.get_num_threads(),
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "commit": source_commit(),
        "argv": sys.argv,
    }


def changed(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """``key: old -> new`` for every key of :data:`NUMERIC_KEYS` whose value differs."""
    return [f"{key}: {before.get(key)} -> {now.get(key)}" for key in NUMERIC_KEYS if before.get(key) != now.get(key)]


def read_starts(output_dir: str | Path) -> list[dict[str, Any]]:
    """Every recorded start of the run in ``output_dir`` (oldest first); empty if none was recorded."""
    path = Path(output_dir) / ENVIRONMENT_NAME
    if not path.is_file():
        return []
    try:
        starts = json.loads(path.read_text())["starts"]
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{path}: not a speechseq environment record ({err})") from err
    return starts


def record_start(output_dir: str | Path, step: int, resumed: bool) -> list[str]:
    """Append this start (at update ``step``) to ``{output_dir}/environment.json``.

    Returns:
        For a resumed run, what changed since the last recorded start (:func:`changed`); else empty. A fresh
        (not resumed) run into a folder with earlier starts begins a new list, and so does a resume whose
        record is unreadable (it says so in the returned list rather than stop the run).
    """
    path = Path(output_dir) / ENVIRONMENT_NAME
    now = {"step": step, **describe()}
    try:
        starts = read_starts(output_dir) if resumed else []
        differences = changed(starts[-1], now) if starts else []
    except ConfigError as err:
        starts, differences = [], [f"earlier starts unknown: {err}"]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"starts": [*starts, now]}, indent=1))
    tmp.replace(path)
    return differences
