"""Find and drop the rows a training run would choke on, before training starts.

``screen_dataset`` checks every row of an ASR-view dataset and returns the clean dataset with a report.
Reasons (``REASONS``), checked in this order, the first one found is reported:

==================  ==============================================================================
unreadable          the file does not exist or cannot be opened (permissions)
empty               zero bytes, or a valid header with zero samples
not audio           bytes that libsndfile cannot parse (e.g. a text file named ``.wav``)
too short           duration below ``min_seconds``
too long            duration above ``max_seconds``
empty text          the transcript is empty or only whitespace
unknown characters  the tokenizer raises ``UnknownTokenError`` (``detail`` names the characters)
silent              RMS level below -60 dBFS (``speechseq.audio.is_silent``); needs decoding, so last
==================  ==============================================================================

The cheap checks read only headers; the silence check decodes the audio (resampled to ``sample_rate``
when given, so the decision is made on what the model will see). The work runs in ``Dataset.map``
(``num_proc`` processes) and never uses the ``datasets`` cache: screening looks at files on disk, which
can change while the dataset fingerprint stays the same. The ``duration`` column of the clean dataset is
rewritten with the header value.

Example:
    >>> result = screen_dataset(load_manifest("data/train.csv"), tokenizer, max_seconds=20)  # doctest: +SKIP
    >>> result.counts                                                                       # doctest: +SKIP
    {'not audio': 1, 'silent': 2}
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping

from datasets import Dataset

from speechseq.audio import audio_info, is_silent, load_audio
from speechseq.errors import AudioError, UnknownTokenError

logger = logging.getLogger(__name__)

REASONS = (
    "unreadable", "empty", "not audio", "too short", "too long", "empty text", "unknown characters",
    "silent",
)

# Columns added by the screening map and removed again from the clean dataset.
_REASON_COL, _DETAIL_COL, _PATH_COL = "_screen_reason", "_screen_detail", "_screen_path"


@dataclass(frozen=True)
class Problem:
    """One rejected row: its id, its audio file (or "<bytes>"), the reason (one of ``REASONS``), details."""

    id: str
    path: str
    reason: str
    detail: str = ""


@dataclass
class ScreenResult:
    """Output of ``screen_dataset``.

    Attributes:
        dataset: the rows that passed every check (same columns as the input).
        report: one ``Problem`` per rejected row, in dataset order.
        counts: number of rejected rows per reason (only reasons that occurred).
    """

    dataset: Dataset
    report: list[Problem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Checks:
    """The screening options, passed to every map worker."""

    tokenizer: Any
    sample_rate: int | None
    max_seconds: float | None
    min_seconds: float
    check_silence: bool
    audio_key: str
    text_key: str


def _source_path(audio: Any) -> str:
    if isinstance(audio, Mapping):
        return str(audio.get("path") or "<bytes>")
    return os.fspath(audio)


def _classify_audio_failure(audio: Any) -> str:
    """unreadable / empty / not audio for a source whose header could not be read."""
    if isinstance(audio, Mapping) and audio.get("bytes") is not None:
        return "empty" if len(audio["bytes"]) == 0 else "not audio"
    path = _source_path(audio)
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        return "unreadable"
    return "empty" if os.path.getsize(path) == 0 else "not audio"


def _check_audio_header(audio: Any, checks: _Checks) -> tuple[str, str, float]:
    """(reason, detail, duration) from the header alone; reason "" when it passes."""
    try:
        info = audio_info(audio)
    except AudioError as err:
        return _classify_audio_failure(audio), err.reason, float("nan")
    if info.num_samples == 0:
        return "empty", "header reports zero samples", 0.0
    if info.duration < checks.min_seconds:
        return "too short", f"{info.duration:.3f} s < {checks.min_seconds} s", info.duration
    if checks.max_seconds is not None and info.duration > checks.max_seconds:
        return "too long", f"{info.duration:.3f} s > {checks.max_seconds} s", info.duration
    return "", "", info.duration


def _check_text(text: Any, tokenizer: Any) -> tuple[str, str]:
    """(reason, detail) for a transcript; reason "" when it passes."""
    if not isinstance(text, str) or not text.strip():
        return "empty text", ""
    if tokenizer is not None:
        try:
            tokenizer.encode(text)
        except UnknownTokenError as err:
            return "unknown characters", ", ".join(repr(s) for s in err.symbols)
    return "", ""


def _check_silence(audio: Any, checks: _Checks) -> tuple[str, str]:
    """(reason, detail) after decoding: silent, or a decode failure the header did not reveal."""
    try:
        wave = load_audio(audio, checks.sample_rate)
    except AudioError as err:
        return _classify_audio_failure(audio), err.reason
    if is_silent(wave):
        return "silent", "RMS below -60 dBFS"
    return "", ""


def _screen_row(row: dict[str, Any], checks: _Checks) -> dict[str, Any]:
    """The ``Dataset.map`` function: adds reason/detail/path columns and the header duration."""
    audio = row[checks.audio_key]
    reason, detail, duration = _check_audio_header(audio, checks)
    if not reason:
        reason, detail = _check_text(row.get(checks.text_key), checks.tokenizer)
    if not reason and checks.check_silence:
        reason, detail = _check_silence(audio, checks)
    out = {_REASON_COL: reason, _DETAIL_COL: detail, _PATH_COL: _source_path(audio)}
    if "duration" in row:
        out["duration"] = duration
    return out


def _log_summary(total: int, report: list[Problem], counts: Mapping[str, int], shown: int = 5) -> None:
    if not report:
        logger.info("screened %d rows: all kept", total)
        return
    summary = ", ".join(f"{reason}: {n}" for reason, n in counts.items())
    first = "; ".join(f"{p.path} ({p.reason})" for p in report[:shown])
    more = f" and {len(report) - shown} more" if len(report) > shown else ""
    logger.warning(
        "screened %d rows: kept %d, dropped %d (%s); first: %s%s",
        total, total - len(report), len(report), summary, first, more,
    )


def screen_dataset(
    dataset: Dataset,
    tokenizer: Any = None,
    sample_rate: int | None = None,
    max_seconds: float | None = None,
    min_seconds: float = 0.05,
    check_silence: bool = True,
    num_proc: int | None = None,
    audio_key: str = "audio",
    text_key: str = "text",
    id_key: str = "id",
) -> ScreenResult:
    """Drop unusable rows and say why (reasons in the module docstring).

    Args:
        dataset: ASR-view dataset (``audio`` as ``Audio(decode=False)`` dicts or paths).
        tokenizer: if given, transcripts it cannot encode are rejected as "unknown characters".
        sample_rate: rate to decode at for the silence check (``None``: the file's own rate).
        max_seconds / min_seconds: duration bounds (``None``: no upper bound).
        check_silence: decode every file to reject silent ones (the only check that decodes).
        num_proc: processes for ``Dataset.map``.
        audio_key / text_key / id_key: column names.

    Returns:
        ``ScreenResult(dataset, report, counts)``; the clean dataset keeps the input's columns.
    """
    checks = _Checks(tokenizer, sample_rate, max_seconds, min_seconds, check_silence, audio_key, text_key)
    marked = dataset.map(
        _screen_row,
        fn_kwargs={"checks": checks},
        num_proc=num_proc,
        load_from_cache_file=False,
        desc="screening",
    )
    reasons = marked[_REASON_COL]
    bad_rows = [i for i, r in enumerate(reasons) if r]
    details, paths, ids = marked[_DETAIL_COL], marked[_PATH_COL], marked[id_key]
    report = [Problem(str(ids[i]), paths[i], reasons[i], details[i]) for i in bad_rows]
    counts = dict(Counter(p.reason for p in report))
    bad = set(bad_rows)
    clean = marked.select([i for i in range(len(marked)) if i not in bad])
    clean = clean.remove_columns([_REASON_COL, _DETAIL_COL, _PATH_COL])
    _log_summary(len(dataset), report, counts)
    return ScreenResult(dataset=clean, report=report, counts=counts)
