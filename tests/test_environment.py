"""environment.json: what a run ran on, and a resume on another environment named key by key."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch

from speechseq.environment import ENVIRONMENT_NAME, changed, cpu_model, describe, read_starts, record_start
from speechseq.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_describe_reports_this_process() -> None:
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        now = describe()
    finally:
        torch.set_num_threads(threads)
    assert now["torch"] == torch.__version__ and now["threads"] == 1
    assert now["cpu"] == cpu_model() and now["cpu"]
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file() and "model name" in cpuinfo.read_text():
        assert any(line.endswith(now["cpu"]) for line in cpuinfo.read_text().splitlines() if "model name" in line)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout: no commit to compare")
    assert now["commit"].split("+")[0] == head.stdout.strip()


def test_record_start_appends_on_resume_and_names_what_changed(tmp_path: Path) -> None:
    assert record_start(tmp_path, 0, resumed=False) == []
    assert record_start(tmp_path, 6, resumed=True) == []  # same process, same environment
    assert [s["step"] for s in read_starts(tmp_path)] == [0, 6]

    path = tmp_path / ENVIRONMENT_NAME
    text = path.read_text().replace(f'"torch": "{torch.__version__}"', '"torch": "1.0.0"')
    path.write_text(text)
    assert record_start(tmp_path, 9, resumed=True) == [f"torch: 1.0.0 -> {torch.__version__}"]
    assert [s["step"] for s in read_starts(tmp_path)] == [0, 6, 9]

    # A fresh run into the same folder starts a new history.
    assert record_start(tmp_path, 0, resumed=False) == []
    assert [s["step"] for s in read_starts(tmp_path)] == [0]
    assert not list(tmp_path.glob("*.tmp"))

    # A damaged record does not stop a resume: it is named, and a new history begins.
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="environment.json: not a speechseq environment record"):
        read_starts(tmp_path)
    (message,) = record_start(tmp_path, 12, resumed=True)
    assert message.startswith("earlier starts unknown: ") and str(path) in message
    assert [s["step"] for s in read_starts(tmp_path)] == [12]


def test_changed_ignores_bookkeeping() -> None:
    before = {"torch": "2.13.0", "threads": 2, "commit": "abc", "step": 0, "argv": ["a"]}
    now = {"torch": "2.13.0", "threads": 1, "commit": "def", "step": 9, "argv": ["b"]}
    assert changed(before, now) == ["threads: 2 -> 1"]
