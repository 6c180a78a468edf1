"""Public-corpus readers: FSDD, LJSpeech, manifests and Hugging Face folders, all in the ASR view."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import pytest
import soundfile as sf
from datasets import Audio, Dataset, DatasetDict

from speechseq.audio import load_audio
from speechseq.data.readers import (
    ASR_COLUMNS,
    DIGIT_WORDS,
    DatasetFormatError,
    load_fsdd,
    load_hub,
    load_ljspeech,
    load_manifest,
)

datasets.disable_progress_bars()

FSDD_SPEAKERS = ["george", "jackson", "lucas", "nicolas", "yweweler"]


def _sf_duration(path: str | os.PathLike) -> float:
    info = sf.info(os.fspath(path))
    return info.frames / info.samplerate


@pytest.fixture(scope="module")
def fsdd_all(fsdd_dir: Path) -> Dataset:
    return load_fsdd(fsdd_dir)


# ------------------------------------------------------------------------------------------- FSDD


def test_fsdd_texts_and_speakers_follow_the_file_names(fsdd_all: Dataset) -> None:
    assert len(fsdd_all) == 2500
    assert fsdd_all.column_names == list(ASR_COLUMNS)
    assert isinstance(fsdd_all.features["audio"], Audio) and not fsdd_all.features["audio"].decode
    for row in fsdd_all:
        digit, speaker, _ = row["id"].split("_")
        assert row["text"] == DIGIT_WORDS[int(digit)]
        assert row["speaker"] == speaker
        assert Path(row["audio"]["path"]).name == row["id"] + ".wav"
    assert Counter(fsdd_all["speaker"]) == {s: 500 for s in FSDD_SPEAKERS}
    assert Counter(fsdd_all["text"]) == {w: 250 for w in DIGIT_WORDS}
    assert len(set(fsdd_all["id"])) == 2500


def test_fsdd_durations_come_from_the_header(fsdd_all: Dataset) -> None:
    for row in fsdd_all.select(range(0, 2500, 97)):
        assert row["duration"] == pytest.approx(_sf_duration(row["audio"]["path"]), abs=1e-12)


def test_fsdd_own_split_is_index_0_to_4_for_test(fsdd_dir: Path) -> None:
    test, train = load_fsdd(fsdd_dir, split="test"), load_fsdd(fsdd_dir, split="train")
    # 10 digits x 5 speakers x 5 indices = 250 test recordings; the other 45 indices are training.
    assert (len(test), len(train)) == (250, 2250)
    assert {int(i.split("_")[2]) for i in test["id"]} == set(range(5))
    assert {int(i.split("_")[2]) for i in train["id"]} == set(range(5, 50))
    assert not set(test["id"]) & set(train["id"])


def test_fsdd_speaker_filter_gives_leave_one_speaker_out_folds(fsdd_dir: Path) -> None:
    held_out = "lucas"
    train = load_fsdd(fsdd_dir, speakers=[s for s in FSDD_SPEAKERS if s != held_out])
    test = load_fsdd(fsdd_dir, speakers=[held_out])
    assert (len(train), len(test)) == (2000, 500)
    assert held_out not in set(train["speaker"]) and set(test["speaker"]) == {held_out}


def test_fsdd_bad_arguments_are_named(fsdd_dir: Path) -> None:
    with pytest.raises(DatasetFormatError, match="split"):
        load_fsdd(fsdd_dir, split="dev")
    with pytest.raises(DatasetFormatError, match="nobody"):
        load_fsdd(fsdd_dir, speakers=["nobody"])


# ----------------------------------------------------------------------------------------- LJSpeech


def test_ljspeech_rows_texts_and_durations(ljspeech_dir: Path) -> None:
    ds = load_ljspeech(ljspeech_dir)
    assert len(ds) == 32
    assert ds["id"] == [f"LJ001-{i:04d}" for i in range(1, 33)]
    by_id = {row["id"]: row for row in ds}
    # Checked by hand against metadata.csv.
    assert by_id["LJ001-0002"]["text"] == "in being comparatively modern."
    assert by_id["LJ001-0004"]["text"] == (
        "produced the block books, which were the immediate predecessors of the true printed book,"
    )
    assert set(ds["speaker"]) == {"lj"} and set(ds["lang"]) == {"en"}
    for row in ds:
        assert row["duration"] == pytest.approx(_sf_duration(row["audio"]["path"]), abs=1e-12)


def test_ljspeech_normalized_flag_picks_the_third_field(tmp_path: Path, ljspeech_dir: Path) -> None:
    (tmp_path / "wavs").mkdir()
    os.symlink(ljspeech_dir / "wavs" / "LJ001-0001.wav", tmp_path / "wavs" / "X-1.wav")
    # A quote character inside the text: the reader must keep it (csv quoting would eat it).
    (tmp_path / "metadata.csv").write_text(
        'X-1|It cost "$16" in 1904.|It cost "sixteen dollars" in nineteen oh four.\n'
    )
    assert load_ljspeech(tmp_path)[0]["text"] == 'It cost "sixteen dollars" in nineteen oh four.'
    assert load_ljspeech(tmp_path, normalized=False)[0]["text"] == 'It cost "$16" in 1904.'


# ----------------------------------------------------------------------------------------- manifests


@pytest.fixture()
def audio_folder(tmp_path: Path, fsdd_dir: Path) -> Path:
    """tmp/clips/ with links to three FSDD files (the data is never copied)."""
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("3_george_7.wav", "8_jackson_12.wav", "0_yweweler_40.wav"):
        os.symlink(fsdd_dir / name, clips / name)
    return clips


def test_manifest_csv_resolves_relative_paths(tmp_path: Path, audio_folder: Path) -> None:
    manifest = tmp_path / "train.csv"
    manifest.write_text(
        "path,text,speaker\n"
        "clips/3_george_7.wav,three,george\n"
        'clips/8_jackson_12.wav,"eight, yes",jackson\n'
    )
    ds = load_manifest(manifest)
    assert ds["text"] == ["three", "eight, yes"]
    assert ds["speaker"] == ["george", "jackson"]
    assert ds["id"] == ["clips/3_george_7", "clips/8_jackson_12"]  # derived: path without suffix
    assert ds[0]["audio"]["path"] == os.fspath(audio_folder / "3_george_7.wav")
    assert ds[1]["duration"] == pytest.approx(_sf_duration(audio_folder / "8_jackson_12.wav"))


def test_manifest_jsonl_with_custom_columns(tmp_path: Path, audio_folder: Path) -> None:
    lines = [
        {"utt": "u1", "wav": os.fspath(audio_folder / "0_yweweler_40.wav"), "sentence": "zero", "lang": "fr"},
        {"utt": "00", "wav": "clips/3_george_7.wav", "sentence": "three"},
    ]
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    ds = load_manifest(manifest, audio_column="wav", text_column="sentence", id_column="utt")
    assert ds["id"] == ["u1", "00"]  # ids stay strings ("00" is not turned into 0)
    assert ds["lang"] == ["fr", "en"]
    assert ds["audio"][1]["path"] == os.fspath(audio_folder / "3_george_7.wav")


def test_manifest_missing_column_names_file_and_columns(tmp_path: Path) -> None:
    manifest = tmp_path / "bad.csv"
    manifest.write_text("file,transcript\na.wav,hello\n")
    with pytest.raises(DatasetFormatError) as err:
        load_manifest(manifest)
    assert "bad.csv" in str(err.value) and "'path'" in str(err.value)
    assert "['file', 'transcript']" in str(err.value)


# -------------------------------------------------------------------------------- Hugging Face (local)


def _librispeech_like(fsdd_dir: Path, names: list[str]) -> Dataset:
    """LibriSpeech's Hub columns, audio embedded as bytes with a bare file name (as on the Hub)."""
    rows = {
        "file": [os.fspath(fsdd_dir / n) for n in names],
        "audio": [{"path": n, "bytes": (fsdd_dir / n).read_bytes()} for n in names],
        "text": [DIGIT_WORDS[int(n[0])].upper() for n in names],
        "speaker_id": [100 + FSDD_SPEAKERS.index(n.split("_")[1]) for n in names],
        "chapter_id": [7] * len(names),
        "id": [f"spk-7-{i:04d}" for i in range(len(names))],
    }
    return Dataset.from_dict(rows).cast_column("audio", Audio(decode=False))


NAMES = ["1_george_5.wav", "2_lucas_6.wav", "9_nicolas_30.wav"]


def _check_librispeech_view(ds: Dataset, fsdd_dir: Path) -> None:
    assert ds.column_names == list(ASR_COLUMNS)
    assert ds["text"] == ["ONE", "TWO", "NINE"]
    assert ds["speaker"] == ["100", "102", "103"]
    assert ds["id"] == ["spk-7-0000", "spk-7-0001", "spk-7-0002"]
    for row, name in zip(ds, NAMES):
        assert row["duration"] == pytest.approx(_sf_duration(fsdd_dir / name))
        np.testing.assert_array_equal(load_audio(row["audio"]), load_audio(fsdd_dir / name))


def test_hub_save_to_disk_folder_with_librispeech_columns(tmp_path: Path, fsdd_dir: Path) -> None:
    splits = DatasetDict(
        train=_librispeech_like(fsdd_dir, NAMES), test=_librispeech_like(fsdd_dir, NAMES[:1])
    )
    splits.save_to_disk(tmp_path / "ls")
    _check_librispeech_view(load_hub(os.fspath(tmp_path / "ls"), "train"), fsdd_dir)
    assert len(load_hub(os.fspath(tmp_path / "ls"), "test")) == 1
    with pytest.raises(DatasetFormatError, match="validation"):
        load_hub(os.fspath(tmp_path / "ls"), "validation")


def test_hub_parquet_folder_and_explicit_column_map(tmp_path: Path, fsdd_dir: Path) -> None:
    folder = tmp_path / "pq" / "data"
    folder.mkdir(parents=True)
    table = _librispeech_like(fsdd_dir, NAMES).add_column("lower", ["one", "two", "nine"])
    table.to_parquet(os.fspath(folder / "train-00000-of-00001.parquet"))
    _check_librispeech_view(load_hub(os.fspath(tmp_path / "pq"), "train"), fsdd_dir)
    remapped = load_hub(os.fspath(tmp_path / "pq"), "train", column_map={"text": "lower", "audio": "file"})
    assert remapped["text"] == ["one", "two", "nine"]
    assert remapped[0]["audio"] == {"path": os.fspath(fsdd_dir / NAMES[0]), "bytes": None}
    with pytest.raises(DatasetFormatError, match="available columns"):
        load_hub(os.fspath(tmp_path / "pq"), "train", column_map={"text": "nope"})


def test_hub_cvss_like_maps_source_audio_and_translation(tmp_path: Path, audio_folder: Path) -> None:
    # CVSS style: source speech + English translation text (target speech in another column).
    pd_rows = "id,original_file,text,file\nc1,../clips/3_george_7.wav,three,../clips/8_jackson_12.wav\n"
    (tmp_path / "cvss").mkdir()
    (tmp_path / "cvss" / "train.csv").write_text(pd_rows)
    ds = load_hub(os.fspath(tmp_path / "cvss"), "train", column_map="cvss")
    assert ds["text"] == ["three"]
    # Relative paths of a local folder resolve against that folder.
    assert ds[0]["audio"]["path"] == os.fspath(audio_folder / "3_george_7.wav")


def test_hub_name_offline_gives_a_clear_error(tmp_path: Path) -> None:
    # A fresh process: datasets reads HF_HUB_OFFLINE when it is imported.
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=os.fspath(tmp_path / "hf"))
    code = (
        "from speechseq.data.readers import load_hub, DatasetFormatError\n"
        "try:\n    load_hub('openslr/librispeech_asr', 'validation.clean')\n"
        "except DatasetFormatError as e:\n    print('ERR', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "ERR cannot load Hub dataset 'openslr/librispeech_asr'" in out.stdout, out.stderr[-2000:]
    assert "HF_HUB_OFFLINE=1" in out.stdout and "local folder" in out.stdout
