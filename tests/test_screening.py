"""screen_dataset: each kind of bad file gets its reason; collate copes with damage done afterwards."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import datasets
import numpy as np
import pytest
import soundfile as sf

from speechseq.data.collate import SpeechCollator
from speechseq.data.readers import load_manifest
from speechseq.data.screening import REASONS, screen_dataset
from speechseq.errors import UnknownTokenError

datasets.disable_progress_bars()

GOOD = "7_jackson_32.wav"


class Letters:
    """Stand-in character tokenizer over a-z and space."""

    symbols = " abcdefghijklmnopqrstuvwxyz"

    def encode(self, text: str) -> list[int]:
        unknown = sorted({c for c in text if c not in self.symbols})
        if unknown:
            raise UnknownTokenError(unknown, text)
        return [3 + self.symbols.index(c) for c in text]


@pytest.fixture()
def bad_manifest(tmp_path: Path, fsdd_dir: Path) -> Path:
    """One good FSDD file and one file or transcript of each bad kind; the expected reason in the id."""
    speech, rate = sf.read(fsdd_dir / GOOD, dtype="float32")
    (tmp_path / "not_audio.wav").write_text("RIFF? no, just a text file renamed .wav\n")
    (tmp_path / "empty.wav").write_bytes(b"")
    sf.write(tmp_path / "silent.wav", np.zeros(rate, dtype=np.float32), rate)
    sf.write(tmp_path / "too_long.wav", np.tile(speech, 8), rate)  # about 3.4 s of real speech
    sf.write(tmp_path / "too_short.wav", speech[: rate // 100], rate)  # 10 ms
    good = (fsdd_dir / GOOD).as_posix()
    lines = [
        "id,path,text",
        f"good,{good},seven",
        "unreadable,missing.wav,seven",
        "not audio,not_audio.wav,seven",
        "empty,empty.wav,seven",
        "silent,silent.wav,seven",
        "too long,too_long.wav,seven",
        "too short,too_short.wav,seven",
        f"empty text,{good},",
        f"unknown characters,{good},se7en!",
    ]
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


@pytest.mark.parametrize("num_proc", [None, 2])
def test_each_bad_kind_is_dropped_with_its_reason(
    bad_manifest: Path, fsdd_dir: Path, num_proc: int | None, caplog: pytest.LogCaptureFixture
) -> None:
    ds = load_manifest(bad_manifest)
    with caplog.at_level(logging.WARNING, logger="speechseq.data.screening"):
        result = screen_dataset(ds, tokenizer=Letters(), max_seconds=2.0, num_proc=num_proc)
    assert result.dataset["id"] == ["good"]
    assert result.dataset.column_names == ds.column_names
    assert result.dataset[0]["duration"] == pytest.approx(sf.info(fsdd_dir / GOOD).duration)
    # The id of every bad row is the reason it must get; the report keeps the dataset order.
    assert [(p.id, p.reason) for p in result.report] == [(i, i) for i in ds["id"][1:]]
    assert set(result.counts) == set(REASONS) and set(result.counts.values()) == {1}
    by_reason = {p.reason: p for p in result.report}
    assert by_reason["not audio"].path == str(bad_manifest.parent / "not_audio.wav")
    assert by_reason["unreadable"].path.endswith("missing.wav")
    assert by_reason["unknown characters"].detail == "'!', '7'"
    assert by_reason["too long"].detail.endswith("> 2.0 s")
    # One summary line with counts and the first file names.
    summary = [r.getMessage() for r in caplog.records]
    assert len(summary) == 1 and "kept 1, dropped 8" in summary[0] and "silent: 1" in summary[0]
    assert "missing.wav (unreadable)" in summary[0]


def test_options_switch_checks_off(bad_manifest: Path) -> None:
    ds = load_manifest(bad_manifest)
    result = screen_dataset(ds, tokenizer=None, max_seconds=None, min_seconds=0.0, check_silence=False)
    # Without a tokenizer, a duration bound or the silence check those rows are kept.
    assert result.dataset["id"] == ["good", "silent", "too long", "too short", "unknown characters"]
    assert result.counts == {"unreadable": 1, "not audio": 1, "empty": 1, "empty text": 1}


def test_collate_skips_a_file_deleted_after_screening(tmp_path: Path, fsdd_dir: Path) -> None:
    for name in (GOOD, "2_nicolas_3.wav"):
        shutil.copy(fsdd_dir / name, tmp_path / name)  # a private copy we may delete
    (tmp_path / "m.jsonl").write_text(
        f'{{"path": "{GOOD}", "text": "seven"}}\n{{"path": "2_nicolas_3.wav", "text": "two"}}\n'
    )
    clean = screen_dataset(load_manifest(tmp_path / "m.jsonl"), tokenizer=Letters()).dataset
    assert len(clean) == 2
    (tmp_path / "2_nicolas_3.wav").unlink()
    batch = SpeechCollator(Letters(), sample_rate=8000)([clean[0], clean[1]])
    assert batch["ids"] == ["7_jackson_32"]
    assert [u for u, _ in batch["skipped"]] == ["2_nicolas_3"]
    assert "2_nicolas_3.wav" in batch["skipped"][0][1]
