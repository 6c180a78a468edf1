"""SpeechCollator: padding, resampling, skipping bad rows, reproducible augmentation."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from speechseq.audio import load_audio
from speechseq.augment import AugmentConfig, WaveAugment
from speechseq.data.collate import SpeechCollator, is_empty_batch, utterance_rng
from speechseq.errors import UnknownTokenError


class Letters:
    """Stand-in for a character tokenizer: ids 3.. for a-z and space (0 blank, 1 unk, 2 sos/eos)."""

    symbols = " abcdefghijklmnopqrstuvwxyz"

    def encode(self, text: str) -> list[int]:
        unknown = sorted({c for c in text if c not in self.symbols})
        if unknown:
            raise UnknownTokenError(unknown, text)
        return [3 + self.symbols.index(c) for c in text]


NAMES = ["3_george_7.wav", "8_jackson_12.wav", "0_yweweler_40.wav", "5_lucas_20.wav"]


def _row(fsdd_dir: Path, name: str, text: str | None = None) -> dict:
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    return {
        "id": Path(name).stem,
        "audio": {"path": os.fspath(fsdd_dir / name), "bytes": None},
        "text": words[int(name[0])] if text is None else text,
    }


def test_batch_equals_load_audio_padded_with_zeros(fsdd_dir: Path) -> None:
    rows = [_row(fsdd_dir, n) for n in NAMES]
    batch = SpeechCollator(Letters(), sample_rate=16000)(rows)
    assert batch["ids"] == [r["id"] for r in rows] and batch["skipped"] == []
    assert batch["wave"].dtype == torch.float32 and batch["tokens"].dtype == torch.long
    for i, row in enumerate(rows):
        ref = load_audio(row["audio"]["path"], 16000)  # 8 kHz files, resampled
        n = int(batch["wave_lengths"][i])
        assert n == len(ref) == round(len(load_audio(row["audio"]["path"])) * 2)
        np.testing.assert_array_equal(batch["wave"][i, :n].numpy(), ref)
        assert not batch["wave"][i, n:].any()
        ids = Letters().encode(row["text"])
        assert batch["token_lengths"][i] == len(ids)
        assert batch["tokens"][i, : len(ids)].tolist() == ids and not batch["tokens"][i, len(ids) :].any()
    assert batch["wave"].shape[1] == batch["wave_lengths"].max()


def test_bad_rows_are_dropped_reported_and_logged_once(
    fsdd_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "notes.wav").write_text("this is not audio")
    rows = [
        _row(fsdd_dir, NAMES[0]),
        {"id": "gone", "audio": {"path": os.fspath(tmp_path / "gone.wav"), "bytes": None}, "text": "one"},
        {"id": "text", "audio": {"path": os.fspath(tmp_path / "notes.wav"), "bytes": None}, "text": "two"},
        _row(fsdd_dir, NAMES[1], text="eight!"),
        _row(fsdd_dir, NAMES[2], text="  "),
        _row(fsdd_dir, NAMES[3]),
    ]
    collate = SpeechCollator(Letters(), sample_rate=8000)
    with caplog.at_level(logging.WARNING, logger="speechseq.data.collate"):
        batch = collate(rows)
        again = collate(rows)
    assert batch["ids"] == ["3_george_7", "5_lucas_20"] == again["ids"]
    skipped = dict(batch["skipped"])
    assert list(skipped) == ["gone", "text", "8_jackson_12", "0_yweweler_40"]
    assert "gone.wav" in skipped["gone"] and "not found" in skipped["gone"]
    assert "notes.wav" in skipped["text"]
    assert "'!'" in skipped["8_jackson_12"] and "8_jackson_12.wav" in skipped["8_jackson_12"]
    assert "empty" in skipped["0_yweweler_40"]
    # The surviving rows are exactly what a clean batch of them gives.
    clean = collate([rows[0], rows[5]])
    assert torch.equal(batch["wave"], clean["wave"]) and torch.equal(batch["tokens"], clean["tokens"])
    # Two calls, four bad files: each is logged once.
    assert sum("gone.wav" in r.getMessage() for r in caplog.records) == 1
    assert len(caplog.records) == 4


def test_all_rows_failing_gives_an_empty_batch(tmp_path: Path) -> None:
    rows = [{"id": f"u{i}", "audio": os.fspath(tmp_path / f"{i}.wav"), "text": "a"} for i in range(3)]
    batch = SpeechCollator(Letters(), sample_rate=8000)(rows)
    assert is_empty_batch(batch) and [u for u, _ in batch["skipped"]] == ["u0", "u1", "u2"]
    assert tuple(batch["wave"].shape) == (0, 0) and tuple(batch["tokens"].shape) == (0, 0)
    assert batch["wave_lengths"].numel() == 0 == batch["token_lengths"].numel()


def test_augmentation_depends_only_on_seed_epoch_and_id(fsdd_dir: Path) -> None:
    augment = WaveAugment(AugmentConfig(noise_prob=1.0, speed_prob=1.0, speed_factors=[0.9, 1.1]), 8000)
    rows = [_row(fsdd_dir, n) for n in NAMES]
    collate = SpeechCollator(Letters(), sample_rate=8000, augment=augment, seed=5)

    def waves(batch: dict) -> dict[str, np.ndarray]:
        return {u: batch["wave"][i, : batch["wave_lengths"][i]].numpy() for i, u in enumerate(batch["ids"])}

    collate.set_epoch(3)
    together = waves(collate(rows))
    alone = waves(collate(rows[2:3]))  # another batch composition, another call order
    reordered = waves(collate(rows[::-1]))
    for utt in together:
        np.testing.assert_array_equal(together[utt], reordered[utt])
    np.testing.assert_array_equal(together["0_yweweler_40"], alone["0_yweweler_40"])
    # The same generator drives the augmentation outside the collator too.
    ref = augment(load_audio(rows[0]["audio"]), utterance_rng(5, 3, "3_george_7"))
    np.testing.assert_array_equal(together["3_george_7"], ref)
    clean = load_audio(rows[0]["audio"])
    assert not np.array_equal(together["3_george_7"][: len(clean)], clean)
    collate.set_epoch(4)
    assert not np.array_equal(waves(collate(rows[:1]))["3_george_7"], together["3_george_7"])
    other_seed = SpeechCollator(Letters(), sample_rate=8000, augment=augment, seed=6)
    other_seed.set_epoch(3)
    assert not np.array_equal(waves(other_seed(rows[:1]))["3_george_7"], together["3_george_7"])


def test_other_column_names_and_no_tokenizer(fsdd_dir: Path) -> None:
    rows = [{"key": "k1", "audio_en": os.fspath(fsdd_dir / NAMES[0]), "text_en": "three"}]
    batch = SpeechCollator(Letters(), 8000, audio_key="audio_en", text_key="text_en", id_key="key")(rows)
    assert batch["ids"] == ["k1"] and batch["tokens"][0].tolist() == Letters().encode("three")
    audio_only = SpeechCollator(None, 8000, audio_key="audio_en", id_key="key")(rows)
    assert tuple(audio_only["tokens"].shape) == (1, 0) and audio_only["token_lengths"].tolist() == [0]
    np.testing.assert_array_equal(audio_only["wave"][0].numpy(), load_audio(fsdd_dir / NAMES[0]))
