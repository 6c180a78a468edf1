"""Readers for public speech corpora, all returning the *ASR view* of ``docs/architecture.md``.

Every reader returns a ``datasets.Dataset`` with exactly these columns (``ASR_FEATURES``)::

    id: str        unique utterance key (used in error reports and to seed augmentation)
    audio          datasets.Audio(decode=False): {"path": str | None, "bytes": bytes | None}
    text: str      transcript (or translation, for CVSS)
    duration: float seconds, read from the audio header only (NaN when the header is unreadable,
                    so that ``screen_dataset`` can report the file instead of the reader crashing)
    speaker: str   speaker label ("" when unknown)
    lang: str      language of ``text``

Audio is never decoded here: ``datasets`` 5 decodes through torchcodec, which cannot be imported on this
stack, so the column keeps ``Audio(decode=False)`` (Hub compatible) and the collate function decodes
with soundfile. Readers: ``load_fsdd``, ``load_ljspeech``, ``load_manifest`` (CSV/JSONL),
``load_hub`` (a Hub name or a local folder, with built-in column mappings for LibriSpeech, LJSpeech
and CVSS).

Example:
    >>> ds = load_fsdd("../shared/data/fsdd/recordings", split="test", speakers=["george"])  # doctest: +SKIP
    >>> ds[0]["text"], ds[0]["speaker"], len(ds)                                            # doctest: +SKIP
    ('zero', 'george', 50)
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import datasets
import datasets.config
from datasets import Audio, Dataset, Features, Value

from speechseq.audio import audio_info
from speechseq.errors import AudioError, SpeechSeqError

ASR_COLUMNS = ("id", "audio", "text", "duration", "speaker", "lang")

ASR_FEATURES = Features(
    {
        "id": Value("string"),
        "audio": Audio(decode=False),
        "text": Value("string"),
        "duration": Value("float64"),
        "speaker": Value("string"),
        "lang": Value("string"),
    }
)

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# FSDD's own split: recordings with index 0-4 are its test set, 5-49 its training set.
FSDD_TEST_INDICES = range(0, 5)


class DatasetFormatError(SpeechSeqError, ValueError):
    """A corpus, manifest or Hub dataset that does not have the expected layout or columns."""


# ---------------------------------------------------------------------------------------------------
# shared helpers


def header_duration(audio: str | os.PathLike | Mapping[str, Any]) -> float:
    """Duration in seconds from the audio header (no decoding); NaN when the header is unreadable.

    >>> math.isnan(header_duration("/nonexistent.wav"))
    True
    """
    try:
        return float(audio_info(audio).duration)
    except AudioError:
        return math.nan


def _audio_ref(path: str | os.PathLike) -> dict[str, Any]:
    """The ``Audio(decode=False)`` value of a local file: path only, bytes left on disk."""
    return {"path": os.fspath(path), "bytes": None}


def asr_dataset(rows: Mapping[str, Sequence[Any]]) -> Dataset:
    """Build an ASR-view dataset from column lists (the six ``ASR_COLUMNS``).

    ``Dataset.from_dict(..., features=ASR_FEATURES)`` would encode the audio column through torchcodec
    (not importable here), so the table is built untyped and then cast, which only rewrites the storage.
    """
    missing = [c for c in ASR_COLUMNS if c not in rows]
    if missing:
        raise DatasetFormatError(f"asr_dataset: missing column(s) {missing}")
    table = Dataset.from_dict({c: list(rows[c]) for c in ASR_COLUMNS})
    return table.cast(ASR_FEATURES)


def _check_ids_unique(ids: Iterable[str], source: object) -> None:
    seen: set[str] = set()
    for key in ids:
        if key in seen:
            raise DatasetFormatError(f"{source}: duplicate utterance id {key!r}")
        seen.add(key)


# ---------------------------------------------------------------------------------------------------
# FSDD and LJSpeech


def _parse_fsdd_name(path: Path) -> tuple[int, str, int]:
    """``{digit}_{speaker}_{index}.wav`` -> (digit, speaker, index)."""
    parts = path.stem.split("_")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[2].isdigit():
        raise DatasetFormatError(f"{path}: not an FSDD file name ({{digit}}_{{speaker}}_{{index}}.wav)")
    return int(parts[0]), parts[1], int(parts[2])


def load_fsdd(
    root: str | os.PathLike,
    split: str | None = None,
    speakers: Iterable[str] | None = None,
) -> Dataset:
    """Free Spoken Digit Dataset: one row per ``{digit}_{speaker}_{index}.wav`` in ``root``.

    Args:
        root: the ``recordings`` folder.
        split: ``None`` (all 2500 files), ``"train"`` (index 5-49) or ``"test"`` (index 0-4), i.e.
            FSDD's own split.
        speakers: keep only these speakers (e.g. all but one, for leave-one-speaker-out folds).

    Returns:
        ASR view; ``text`` is the digit as an English word, ``id`` the file stem, ``lang`` "en".
        Rows are ordered by (speaker, digit, index).

    Raises:
        DatasetFormatError: unknown split, no matching file, or a file name that breaks the pattern.
    """
    if split not in (None, "train", "test"):
        raise DatasetFormatError(f"load_fsdd: split must be None, 'train' or 'test', got {split!r}")
    root = Path(root)
    wanted = None if speakers is None else set(speakers)
    entries = []
    for path in root.glob("*.wav"):
        digit, speaker, index = _parse_fsdd_name(path)
        in_test = index in FSDD_TEST_INDICES
        if (split == "test" and not in_test) or (split == "train" and in_test):
            continue
        if wanted is not None and speaker not in wanted:
            continue
        entries.append((speaker, digit, index, path))
    if not entries:
        raise DatasetFormatError(f"{root}: no FSDD recordings for split={split!r} speakers={speakers!r}")
    entries.sort()
    return asr_dataset(
        {
            "id": [p.stem for *_, p in entries],
            "audio": [_audio_ref(p) for *_, p in entries],
            "text": [DIGIT_WORDS[d] for _, d, _, _ in entries],
            "duration": [header_duration(p) for *_, p in entries],
            "speaker": [s for s, *_ in entries],
            "lang": ["en"] * len(entries),
        }
    )


def load_ljspeech(root: str | os.PathLike, normalized: bool = True) -> Dataset:
    """LJSpeech in its own layout: ``metadata.csv`` (``id|text|normalized text``) and ``wavs/ID.wav``.

    Args:
        root: folder holding ``metadata.csv`` and ``wavs/``.
        normalized: use the third field (numbers spelled out) rather than the raw text.

    Returns:
        ASR view with speaker "lj", lang "en", in metadata order.
    """
    root = Path(root)
    meta = root / "metadata.csv"
    if not meta.is_file():
        raise DatasetFormatError(f"{root}: no metadata.csv (expected LJSpeech layout)")
    rows: dict[str, list[Any]] = {c: [] for c in ASR_COLUMNS}
    # Split on "|" by hand: the transcripts contain quote characters that the csv module would eat.
    for line_no, line in enumerate(meta.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) != 3:
            raise DatasetFormatError(f"{meta}:{line_no}: expected 3 '|'-separated fields, got {len(fields)}")
        key, raw, norm = fields
        wav = root / "wavs" / f"{key}.wav"
        rows["id"].append(key)
        rows["audio"].append(_audio_ref(wav))
        rows["text"].append(norm if normalized else raw)
        rows["duration"].append(header_duration(wav))
        rows["speaker"].append("lj")
        rows["lang"].append("en")
    _check_ids_unique(rows["id"], meta)
    return asr_dataset(rows)


# ---------------------------------------------------------------------------------------------------
# CSV / JSONL manifests


def _read_manifest_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a CSV/TSV (header line) or JSON-lines file, values kept as written (no type guessing)."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        with path.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ","))
    if suffix in (".jsonl", ".json"):
        rows = []
        for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise DatasetFormatError(f"{path}:{line_no}: not a JSON line ({err.msg})") from err
        return rows
    raise DatasetFormatError(f"{path}: manifest must be .csv, .tsv or .jsonl, got {suffix!r}")


def _resolve(audio_path: str, base: Path) -> str:
    """Absolute path of a manifest entry; relative entries are relative to the manifest's folder.

    Symbolic links are kept (not resolved): the id derived from the path must not depend on them.
    """
    candidate = Path(os.path.expanduser(audio_path))
    return os.path.normpath(candidate if candidate.is_absolute() else base / candidate)


def load_manifest(
    path: str | os.PathLike,
    audio_column: str = "path",
    text_column: str = "text",
    id_column: str = "id",
    speaker_column: str = "speaker",
    duration_column: str | None = None,
    lang_column: str = "lang",
    lang: str = "en",
) -> Dataset:
    """Read a CSV/TSV or JSON-lines manifest into the ASR view.

    Args:
        path: the manifest; audio paths in it may be absolute or relative to its folder.
        audio_column / text_column: required columns.
        id_column: optional; without it the id is the audio path relative to the manifest folder,
            without suffix (unique whenever the paths are).
        speaker_column / lang_column: optional; "" and ``lang`` when absent.
        duration_column: trust this column instead of reading headers (``None``: read headers).
        lang: language used when the manifest has no ``lang_column``.

    Raises:
        DatasetFormatError: wrong format, empty manifest, a required column missing (the message names
            the file and the columns it has), or duplicate ids.
    """
    path = Path(path)
    rows = _read_manifest_rows(path)
    if not rows:
        raise DatasetFormatError(f"{path}: manifest has no rows")
    available = sorted(rows[0].keys())
    for column in (audio_column, text_column, duration_column):
        if column is not None and column not in available:
            raise DatasetFormatError(f"{path}: no column {column!r}; available columns: {available}")
    base = path.parent.absolute()
    out: dict[str, list[Any]] = {c: [] for c in ASR_COLUMNS}
    for row in rows:
        audio_path = _resolve(str(row[audio_column]), base)
        key = row.get(id_column) or os.path.splitext(os.path.relpath(audio_path, base))[0]
        out["id"].append(str(key))
        out["audio"].append(_audio_ref(audio_path))
        out["text"].append("" if row[text_column] is None else str(row[text_column]))
        out["duration"].append(
            float(row[duration_column]) if duration_column else header_duration(audio_path)
        )
        out["speaker"].append(str(row.get(speaker_column) or ""))
        out["lang"].append(str(row.get(lang_column) or lang))
    _check_ids_unique(out["id"], path)
    return asr_dataset(out)


# ---------------------------------------------------------------------------------------------------
# Hugging Face datasets (Hub name or local folder)

# For each ASR column, the source columns to try in order (first present wins); constants fill the rest.
HUB_PRESETS: dict[str, dict[str, Any]] = {
    "librispeech": {
        "columns": {"id": ("id",), "audio": ("audio", "file"), "text": ("text",), "speaker": ("speaker_id",)},
        "lang": "en",
    },
    "ljspeech": {
        "columns": {"id": ("id",), "audio": ("audio", "file"), "text": ("normalized_text", "text")},
        "lang": "en",
        "speaker": "lj",
    },
    # CVSS: source speech (Common Voice, in the source language) paired with its English translation text.
    "cvss": {
        "columns": {
            "id": ("id",),
            "audio": ("original_audio", "source_audio", "original_file", "source_file"),
            "text": ("translation", "text"),
            "speaker": ("client_id",),
        },
        "lang": "en",
    },
    "generic": {
        "columns": {
            "id": ("id", "key", "utterance_id"),
            "audio": ("audio", "file", "path"),
            "text": ("text", "sentence", "transcription", "normalized_text"),
            "speaker": ("speaker", "speaker_id", "client_id"),
        },
        "lang": "en",
    },
}

_REPO_PRESETS = {
    "openslr/librispeech_asr": "librispeech",
    "librispeech_asr": "librispeech",
    "keithito/lj_speech": "ljspeech",
    "lj_speech": "ljspeech",
    "google/cvss": "cvss",
}


def _detect_preset(name: str, columns: Sequence[str]) -> str:
    """Preset for a known repo name, else guessed from the column signature of the corpus."""
    if name in _REPO_PRESETS:
        return _REPO_PRESETS[name]
    cols = set(columns)
    if {"speaker_id", "chapter_id"} <= cols:
        return "librispeech"
    if "normalized_text" in cols:
        return "ljspeech"
    if "original_audio" in cols or "source_audio" in cols:
        return "cvss"
    return "generic"


def _resolve_columns(
    name: str, columns: Sequence[str], column_map: Mapping[str, str] | str | None
) -> tuple[dict[str, str], dict[str, str]]:
    """(ASR column -> source column, ASR column -> constant) for this corpus.

    ``column_map`` may be a preset name, an explicit mapping (overriding the detected preset), or None.
    """
    if isinstance(column_map, str):
        if column_map not in HUB_PRESETS:
            raise DatasetFormatError(f"{name}: unknown preset {column_map!r}; known: {sorted(HUB_PRESETS)}")
        preset = HUB_PRESETS[column_map]
        column_map = None
    else:
        preset = HUB_PRESETS[_detect_preset(name, columns)]
    chosen = {}
    for target, candidates in preset["columns"].items():
        found = next((c for c in candidates if c in columns), None)
        if found is not None:
            chosen[target] = found
    for target, source in (column_map or {}).items():
        if target not in ASR_COLUMNS or source not in columns:
            raise DatasetFormatError(
                f"{name}: column_map {target!r} -> {source!r} invalid; ASR columns {list(ASR_COLUMNS)}, "
                f"available columns: {sorted(columns)}"
            )
        chosen[target] = source
    for required in ("audio", "text"):
        if required not in chosen:
            raise DatasetFormatError(
                f"{name}: cannot find the {required!r} column; available columns: {sorted(columns)} "
                f"(pass column_map={{{required!r}: ...}})"
            )
    constants = {"lang": preset.get("lang", "en"), "speaker": preset.get("speaker", "")}
    return chosen, constants


def _is_saved_dataset(folder: Path) -> bool:
    """True for a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``."""
    return (folder / "state.json").is_file() or (folder / "dataset_dict.json").is_file()


def _load_raw(name: str, split: str, config_name: str | None, cache_dir: str | None) -> Dataset:
    """The source dataset, from a ``save_to_disk`` folder, a data folder/file, or the Hub."""
    local = Path(os.path.expanduser(name))
    if local.is_dir() and _is_saved_dataset(local):
        loaded = datasets.load_from_disk(os.fspath(local))
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise DatasetFormatError(f"{name}: no split {split!r}; splits: {sorted(loaded)}")
            return loaded[split]
        return loaded
    if local.exists():
        # A folder of parquet/csv/json files, or one such file: datasets' packaged builders read them.
        data = os.fspath(local)
        if local.is_file():
            builder = {".parquet": "parquet", ".csv": "csv", ".jsonl": "json", ".json": "json"}.get(
                local.suffix.lower()
            )
            if builder is None:
                raise DatasetFormatError(f"{name}: unsupported data file type {local.suffix!r}")
            return datasets.load_dataset(builder, data_files=data, split="train", cache_dir=cache_dir)
        return datasets.load_dataset(data, config_name, split=split, cache_dir=cache_dir)
    try:
        return datasets.load_dataset(name, config_name, split=split, cache_dir=cache_dir)
    except Exception as err:  # noqa: BLE001 - re-raised with the reason a user can act on
        hint = (
            "HF_HUB_OFFLINE=1 is set and the dataset is not in the local cache"
            if datasets.config.HF_HUB_OFFLINE
            else f"loading failed ({type(err).__name__}: {err})"
        )
        raise DatasetFormatError(
            f"cannot load Hub dataset {name!r} (config={config_name!r}, split={split!r}): {hint}; "
            "pass a local folder (save_to_disk output or parquet/csv/json files) instead"
        ) from err


def _local_base(name: str) -> Path | None:
    """Folder against which relative audio paths of a local dataset are resolved."""
    local = Path(os.path.expanduser(name))
    if not local.exists():
        return None
    return (local if local.is_dir() else local.parent).absolute()


def _to_asr_row(
    row: dict[str, Any], index: int, chosen: Mapping[str, str], constants: Mapping[str, str],
    base: Path | None, prefix: str,
) -> dict[str, Any]:
    """One source row -> one ASR-view row (a ``Dataset.map`` function, hence top level and picklable)."""
    audio = row[chosen["audio"]]
    if isinstance(audio, (str, os.PathLike)):  # a plain path column such as LibriSpeech's "file"
        audio = _audio_ref(_resolve(os.fspath(audio), base) if base else audio)
    elif base is not None and audio.get("bytes") is None and audio.get("path"):
        audio = _audio_ref(_resolve(audio["path"], base))
    else:
        audio = {"path": audio.get("path"), "bytes": audio.get("bytes")}
    speaker = row[chosen["speaker"]] if "speaker" in chosen else constants["speaker"]
    return {
        "id": str(row[chosen["id"]]) if "id" in chosen else f"{prefix}-{index}",
        "audio": audio,
        "text": "" if row[chosen["text"]] is None else str(row[chosen["text"]]),
        "duration": header_duration(audio),
        "speaker": "" if speaker is None else str(speaker),
        "lang": str(row[chosen["lang"]]) if "lang" in chosen else constants["lang"],
    }


def load_hub(
    name: str,
    split: str,
    column_map: Mapping[str, str] | str | None = None,
    config_name: str | None = None,
    cache_dir: str | None = None,
    num_proc: int | None = None,
) -> Dataset:
    """A Hugging Face dataset (Hub name or local folder) mapped to the ASR view.

    Args:
        name: a Hub repo (``openslr/librispeech_asr``, ``keithito/lj_speech``, ``google/cvss``-style), a
            folder written by ``save_to_disk``, a folder of parquet/csv/json files, or one such file.
        split: split to read (ignored for a single saved ``Dataset`` or a single data file).
        column_map: a preset name (``"librispeech"``, ``"ljspeech"``, ``"cvss"``, ``"generic"``) or a
            mapping ASR column -> source column that overrides the detected preset. By default the
            preset follows the repo name, else the columns (speaker_id+chapter_id: LibriSpeech;
            normalized_text: LJSpeech; original_audio/source_audio: CVSS).
        config_name / cache_dir: passed to ``datasets.load_dataset``.
        num_proc: processes for the header-reading map.

    Raises:
        DatasetFormatError: a Hub name that cannot be loaded (e.g. under ``HF_HUB_OFFLINE=1``), a missing
            split, or no audio/text column.

    Example:
        >>> ds = load_hub("openslr/librispeech_asr", "validation.clean")  # doctest: +SKIP
        >>> ds.column_names                                              # doctest: +SKIP
        ['id', 'audio', 'text', 'duration', 'speaker', 'lang']
    """
    raw = _load_raw(name, split, config_name, cache_dir)
    chosen, constants = _resolve_columns(name, raw.column_names, column_map)
    audio_col = chosen["audio"]
    if isinstance(raw.features[audio_col], Audio):
        # Reading a row of a decoding Audio column would call torchcodec: switch decoding off first.
        raw = raw.cast_column(audio_col, Audio(decode=False))
    mapped = raw.map(
        _to_asr_row,
        with_indices=True,
        remove_columns=raw.column_names,
        fn_kwargs={
            "chosen": chosen, "constants": constants, "base": _local_base(name), "prefix": split,
        },
        num_proc=num_proc,
        desc="ASR view",
    )
    return mapped.cast(ASR_FEATURES)
