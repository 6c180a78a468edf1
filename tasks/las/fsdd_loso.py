"""Leave-one-speaker-out (LOSO) evaluation of LAS on FSDD, plus the all-speakers model for new voices.

FSDD has five speakers. Fold ``S`` trains ``speechseq/configs/las_fsdd.yaml`` on the other four speakers
(takes 10-49 train, 5-9 validation, 0-4 seen-speaker test) and scores digit WER on all 500 recordings of
``S`` (the ``test_unseen`` split, never seen in training or checkpoint selection). The ``all`` run trains on
every speaker and is the model to use on new voices; it has no held-out speaker and so no unseen WER.

Folds run one after another (the machine's cores are shared), each as its own ``python -m speechseq.train``
process with its log in ``{out}/{fold}.log``; the results go to ``{out}/results.json`` and
``{out}/results.md``.

Usage::

    python tasks/las/fsdd_loso.py --out runs/las_fsdd_loso                  # 5 folds + all
    python tasks/las/fsdd_loso.py --folds george --no-all train.max_steps=100   # one fold, with overrides
    python tasks/las/fsdd_loso.py --dry-run                                 # print the splits, train nothing
    python tasks/las/fsdd_loso.py --only-all                                # the all-speakers model alone
    python tasks/las/fsdd_loso.py --speaker-eq ...     # each run reads FSDD equalised per speaker (below)
    python tasks/las/fsdd_loso.py --extra-train runs/fsdd_synth ...   # + training-only voices (below)

With ``--speaker-eq`` every run reads its own copy of the recordings (``{out}/audio/{fold}``, written by
``tasks/las/fsdd_speaker_eq.py``), in which each speaker's long-term spectrum is brought to the mean of the
run's *training* speakers: the held-out speaker's audio (no transcripts) sets only his own filter.

With ``--extra-train DIR`` every run also trains on DIR's recordings (FSDD names, takes 10 and up, speakers
FSDD does not have; e.g. the synthetic digits of ``tasks/las/fsdd_synth_digits.py``). The runs read
``{out}/source``, a folder of links to FSDD and DIR; folds and the equaliser's reference stay FSDD's speakers.

Example (dry run, no training)::

    >>> plans = plan_runs(Path("../shared/data/fsdd/recordings"), Path("/tmp/loso"), ["george"], False, [])
    >>> [p.name for p in plans], plans[0].overrides[-2:]  # doctest: +SKIP
    (['george'], ['data.fsdd_unseen_speakers=[george]', 'output_dir=/tmp/loso/george'])
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from speechseq.recipes.base import FSDD_EVAL_TAKES  # takes 0-4 test, 5-9 validation, 10-49 train

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling script, run or imported from anywhere
from fsdd_speaker_eq import equalize_folder  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = REPO_ROOT / "speechseq" / "configs" / "las_fsdd.yaml"
DEFAULT_ROOT = REPO_ROOT.parent / "shared" / "data" / "fsdd" / "recordings"
ALL_SPEAKERS_RUN = "all"
_FSDD_NAME = re.compile(r"^\d_([a-z]+)_(\d+)\.wav$")  # speaker, take


@dataclasses.dataclass
class RunPlan:
    """One training run of the protocol.

    Attributes:
        name: the held-out speaker, or ``"all"`` for the all-speakers model.
        held_out: the speaker forming ``test_unseen`` (``None`` for the all-speakers run).
        overrides: ``key=value`` arguments of ``speechseq.train`` (after ``config=...``).
        output_dir: the run folder (``metrics.json`` and ``final/`` end up there).
        config: the YAML the run starts from.
        equalize: ``(source folder, reference speakers)`` when the run reads a speaker-equalised copy
            (at the run's ``data.root``) that must be written first; ``None`` reads the source as it is.
    """

    name: str
    held_out: str | None
    overrides: list[str]
    output_dir: Path
    config: Path = CONFIG
    equalize: tuple[Path, list[str]] | None = None

    @property
    def root(self) -> Path:
        """The recordings folder the run reads (its ``data.root``)."""
        return Path(next(o for o in self.overrides if o.startswith("data.root=")).split("=", 1)[1])

    def command(self) -> list[str]:
        """The exact training command of this run."""
        return [sys.executable, "-m", "speechseq.train", f"config={self.config}", *self.overrides]


@dataclasses.dataclass
class RunResult:
    """What one finished run measured.

    Attributes:
        name / held_out: as in :class:`RunPlan`.
        unseen_wer / unseen_cer: digit WER/CER on every recording of the held-out speaker (``None`` for ``all``).
        seen_test_wer: WER on takes 0-4 of the training speakers.
        validation_wer: WER on takes 5-9 of the training speakers (what checkpoint selection saw).
        seconds: wall-clock training + evaluation time.
        command: the command that produced it, as one shell line.
    """

    name: str
    held_out: str | None
    unseen_wer: float | None
    unseen_cer: float | None
    seen_test_wer: float | None
    validation_wer: float | None
    seconds: float
    command: str


def fsdd_speakers(root: Path) -> list[str]:
    """Sorted speaker names found in an FSDD ``recordings`` folder (``{digit}_{speaker}_{index}.wav``)."""
    speakers = {m.group(1) for p in root.glob("*.wav") if (m := _FSDD_NAME.match(p.name))}
    if not speakers:
        raise FileNotFoundError(f"{root}: no FSDD recordings named {{digit}}_{{speaker}}_{{index}}.wav")
    return sorted(speakers)


def link_sources(root: Path, extra: Path, dst: Path) -> Path:
    """``dst``: a folder of links to every recording of ``root`` and of ``extra`` (training-only voices).

    Raises:
        ValueError: an ``extra`` file is not FSDD-named, has a take below 10 (it would land in a validation or
            test split), or belongs to a speaker ``root`` has too.
    """
    real = set(fsdd_speakers(root))
    extra_files = sorted(extra.glob("*.wav"))
    if not extra_files:
        raise FileNotFoundError(f"--extra-train {extra}: no .wav files")
    for path in extra_files:
        match = _FSDD_NAME.match(path.name)
        if match is None:
            raise ValueError(f"--extra-train {path}: not named {{digit}}_{{speaker}}_{{take}}.wav (speaker: letters)")
        if int(match.group(2)) < FSDD_EVAL_TAKES:
            raise ValueError(f"--extra-train {path}: take below {FSDD_EVAL_TAKES} would be a validation or test "
                             "recording; training-only voices need takes 10 and up")
        if match.group(1) in real:
            raise ValueError(f"--extra-train {path}: speaker {match.group(1)!r} is one of {root}'s own")
    dst.mkdir(parents=True, exist_ok=True)
    for old in dst.glob("*.wav"):  # relinked each time, so the folder is exactly root + extra
        old.unlink()
    for path in [*sorted(root.glob("*.wav")), *extra_files]:
        (dst / path.name).symlink_to(path.resolve())
    return dst


def plan_runs(
    root: Path, out: Path, folds: list[str], with_all: bool, extra: list[str], config: Path = CONFIG,
    speaker_eq: bool = False, extra_train: Path | None = None,
) -> list[RunPlan]:
    """The runs to do: one per held-out speaker in ``folds``, then (``with_all``) the all-speakers run.

    ``extra`` overrides come before the fold's own, so they cannot move the held-out speaker or the folder.
    ``config`` is the YAML every run starts from. With ``speaker_eq``, run ``R`` reads ``{out}/audio/R``, a
    copy of ``root`` equalised to the mean long-term spectrum of R's training speakers. With ``extra_train``,
    the runs read ``{out}/source`` (``root`` + ``extra_train``, :func:`link_sources`, made here) instead of
    ``root``; the reference speakers are ``root``'s only.
    """
    speakers = fsdd_speakers(root) if speaker_eq else []
    source = link_sources(root, extra_train, out / "source") if extra_train is not None else root
    plans = []
    for name, held_out in [*((s, s) for s in folds), *([(ALL_SPEAKERS_RUN, None)] if with_all else [])]:
        # The all-speakers run has no held-out speaker; selection still uses everyone's validation takes (5-9).
        reference = [s for s in speakers if s != held_out]
        run_root = out / "audio" / name if speaker_eq else source
        overrides = [f"data.root={run_root}", *extra, f"data.fsdd_unseen_speakers=[{held_out or ''}]",
                     f"output_dir={out / name}"]
        plans.append(RunPlan(name, held_out, overrides, out / name, config, (source, reference) if speaker_eq else None))
    return plans


def prepare_audio(plan: RunPlan) -> None:
    """Write the run's speaker-equalised recordings (reused when already there); nothing without ``equalize``."""
    if plan.equalize is not None:
        source, reference = plan.equalize
        record = equalize_folder(source, plan.root, reference)
        ranges = ", ".join(f"{s} {lo:+.0f}..{hi:+.0f} dB" for s, (lo, hi) in record["gain_db_range"].items())
        print(f"  equalised to {'+'.join(reference)} in {plan.root}: {ranges}", flush=True)


def split_speakers(plan: RunPlan) -> dict[str, dict[str, int]]:
    """Split -> speaker -> utterance count, exactly as the recipe will build them (no audio decoded).

    Uses the same config loading and split function as the training run, so a dry run shows what training sees.
    """
    from collections import Counter

    from speechseq.config import load_task_config
    from speechseq.recipes.base import load_asr_splits

    config = load_task_config(None, [f"config={plan.config}", *plan.overrides])
    splits = load_asr_splits(config.data)
    return {split: dict(sorted(Counter(data["speaker"]).items())) for split, data in splits.items()}


def _metric(metrics: dict[str, dict[str, float]], split: str, key: str) -> float | None:
    value = metrics.get(split, {}).get(key)
    return None if value is None else float(value)


def run_one(plan: RunPlan) -> RunResult:
    """Train and evaluate one run in a subprocess (log in ``{output_dir}.log``); read its ``metrics.json``."""
    plan.output_dir.parent.mkdir(parents=True, exist_ok=True)
    log_path = plan.output_dir.with_suffix(".log")
    start = time.monotonic()
    # One intra-op thread unless told otherwise: on the shared 2-core machine, two threads per process
    # thrash against other jobs (measured: ~10 s per update with two threads, ~0.6 s with one).
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    with log_path.open("w") as log:
        code = subprocess.call(plan.command(), stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, env=env)
    seconds = time.monotonic() - start
    if code != 0:
        raise RuntimeError(f"run {plan.name!r} failed with exit code {code}; see {log_path}")
    return result_from_metrics(plan, json.loads((plan.output_dir / "metrics.json").read_text()), seconds)


def result_from_metrics(plan: RunPlan, metrics: dict[str, dict[str, float]], seconds: float) -> RunResult:
    """A :class:`RunResult` from a run's ``metrics.json`` content (``{split: {metric: value}}``)."""
    return RunResult(
        name=plan.name, held_out=plan.held_out,
        unseen_wer=_metric(metrics, "test_unseen", "wer"), unseen_cer=_metric(metrics, "test_unseen", "cer"),
        seen_test_wer=_metric(metrics, "test", "wer"), validation_wer=_metric(metrics, "validation", "wer"),
        seconds=seconds, command=" ".join(plan.command()),
    )


def mean_unseen_wer(results: list[RunResult]) -> float | None:
    """Mean held-out-speaker WER over the folds (the ``all`` run has none and is left out)."""
    values = [r.unseen_wer for r in results if r.unseen_wer is not None]
    return sum(values) / len(values) if values else None


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def markdown_table(results: list[RunResult]) -> str:
    """Per-run table (WER in %) with the mean over the held-out-speaker folds as last row."""
    rows = ["| held-out speaker | unseen WER % | unseen CER % | seen-speaker test WER % | validation WER % | minutes |",
            "|---|---|---|---|---|---|"]
    for r in results:
        rows.append(f"| {r.held_out or '(all five trained)'} | {_pct(r.unseen_wer)} | {_pct(r.unseen_cer)} | "
                    f"{_pct(r.seen_test_wer)} | {_pct(r.validation_wer)} | {r.seconds / 60:.1f} |")
    rows.append(f"| **mean over folds** | **{_pct(mean_unseen_wer(results))}** | | | | |")
    return "\n".join(rows)


def write_results(results: list[RunResult], out: Path) -> None:
    """``{out}/results.json`` (every field plus the mean) and ``{out}/results.md`` (the table)."""
    out.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {"runs": [dataclasses.asdict(r) for r in results],
                               "mean_unseen_wer": mean_unseen_wer(results)}
    (out / "results.json").write_text(json.dumps(payload, indent=2) + "\n")
    (out / "results.md").write_text(markdown_table(results) + "\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options; anything of the form ``key=value`` is passed to every training run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="FSDD recordings folder")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "runs" / "las_fsdd_loso", help="results folder")
    parser.add_argument("--config", type=Path, default=CONFIG,
                        help="YAML every run starts from (default: speechseq/configs/las_fsdd.yaml)")
    parser.add_argument("--folds", default="", help="comma-separated held-out speakers (default: every speaker)")
    parser.add_argument("--no-all", action="store_true", help="skip the all-speakers run")
    parser.add_argument("--only-all", action="store_true", help="train only the all-speakers run (no folds)")
    parser.add_argument("--dry-run", action="store_true", help="print each run's command and splits; train nothing")
    parser.add_argument("--speaker-eq", action="store_true",
                        help="equalise every speaker to the run's training speakers first (fsdd_speaker_eq.py)")
    parser.add_argument("--extra-train", type=Path, default=None,
                        help="folder of training-only recordings (FSDD names, takes >= 10) mixed into every run")
    parser.add_argument("overrides", nargs="*", help="key=value overrides for every run (e.g. seed=1)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run (or, with ``--dry-run``, describe) the protocol; returns the exit code."""
    args = parse_args(argv)
    root, out = args.root.resolve(), args.out.resolve()
    if args.only_all and (args.no_all or args.folds):
        raise SystemExit("--only-all trains the all-speakers run alone: it goes with neither --no-all nor --folds")
    folds = [] if args.only_all else [s for s in args.folds.split(",") if s] or fsdd_speakers(root)
    extra_train = args.extra_train.resolve() if args.extra_train is not None else None
    plans = plan_runs(root, out, folds, not args.no_all, list(args.overrides), args.config.resolve(), args.speaker_eq,
                      extra_train)
    results = []
    for plan in plans:
        print(" ".join(plan.command()), flush=True)
        prepare_audio(plan)
        if args.dry_run:
            for split, counts in split_speakers(plan).items():
                print(f"  {split}: {counts}", flush=True)
            continue
        results.append(run_one(plan))
        write_results(results, out)  # after every run, so an interrupted protocol keeps what it measured
        print(markdown_table(results[-1:]).splitlines()[-2], flush=True)
    if results:
        print(markdown_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
