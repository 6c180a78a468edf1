"""Every subset of several FSDD fine-tunings scored as a warped ensemble; within- against across-family means.

Each run is one seed of ``fsdd_loso.py`` (its folders, e.g. two lanes), named ``FAMILY.NAME``: runs of one
family share what the comparison is about (e.g. the pre-training they were fine-tuned from). Every subset of
the runs is scored as ``fsdd_warp_ensemble.py`` scores a set of folders (each model at its own VTLN factor, λ
chosen on the other folds), and for each subset size the mean over subsets drawn from one family is set
against the mean over subsets that mix families. The means are also given by the families' mix (``A+B+C``:
one run from each of three families). Nothing is decoded: run ``fsdd_warp.py`` on each run first.

    python tasks/las/fsdd_ensemble_subsets.py A.6=runs/fsdd600_s6a,runs/fsdd600_s6b \\
        A.7=runs/fsdd600_s7a,runs/fsdd600_s7b B.6=runs/fsdd600_p1s6a,runs/fsdd600_p1s6b

    >>> kind(("A.6", "A.7")), kind(("A.6", "B.6")), mix(("B.7", "A.6", "A.8"))
    ('within A', 'across', 'A+A+B')
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling scripts, run or imported from anywhere
from fsdd_beam import float_list  # noqa: E402
from fsdd_warp import Tables  # noqa: E402
from fsdd_warp_ensemble import cached_models, summary  # noqa: E402

from speechseq.errors import ConfigError  # noqa: E402

Models = dict[str, tuple[list[str], list[Tables]]]  # held-out speaker -> (references, each model's tables)


def parse_run(text: str) -> tuple[str, list[Path]]:
    """``FAMILY.NAME=FOLDER[,FOLDER...]`` -> (name, folders); a clear error for anything else."""
    name, _, folders = text.partition("=")
    if not folders or "." not in name or not all(name.split(".", 1)):
        raise ConfigError(f"run {text!r}: write it FAMILY.NAME=FOLDER[,FOLDER...], e.g. A.6=runs/s6a,runs/s6b")
    return name, [Path(f) for f in folders.split(",")]


def mix(subset: tuple[str, ...]) -> str:
    """The families of the subset's runs, sorted, one per run: ``A+A+B``."""
    return "+".join(sorted(name.split(".", 1)[0] for name in subset))


def kind(subset: tuple[str, ...]) -> str:
    """``within F`` when every run of the subset is of family F, else ``across``."""
    families = set(mix(subset).split("+"))
    return f"within {families.pop()}" if len(families) == 1 else "across"


def merge(runs: dict[str, Models], subset: tuple[str, ...]) -> Models:
    """The models of the subset's runs, fold by fold (the runs hold the same folds: ``score_subsets`` checks)."""
    first = runs[subset[0]]
    return {s: (first[s][0], [t for name in subset for t in runs[name][s][1]]) for s in sorted(first)}


def score_subsets(runs: dict[str, Models], grid: list[float], max_size: int) -> dict[tuple[str, ...], dict]:
    """Every subset of up to ``max_size`` runs -> its ``fsdd_warp_ensemble.summary``.

    Raises:
        ConfigError: two runs hold different folds.
    """
    names = sorted(runs)
    folds = set(runs[names[0]])
    for name in names[1:]:
        if set(runs[name]) != folds:
            raise ConfigError(f"runs {names[0]} and {name} hold different folds: {sorted(folds)} and {sorted(runs[name])}")
    return {subset: summary(merge(runs, subset), grid)
            for size in range(1, min(max_size, len(names)) + 1) for subset in itertools.combinations(names, size)}


def by_kind(
    scored: dict[tuple[str, ...], dict], group: Callable[[tuple[str, ...]], str] = kind
) -> dict[tuple[int, str], dict[str, float]]:
    """(size, ``group(subset)``) -> number of subsets and their mean unwarped and warped WER (%).

    ``group`` is ``kind`` (within one family / across) or ``mix`` (the families' mix)."""
    groups: dict[tuple[int, str], list[dict]] = {}
    for subset, result in scored.items():
        groups.setdefault((len(subset), group(subset)), []).append(result)
    return {key: {"subsets": len(results),
                  "unwarped": round(statistics.mean(r["unwarped"]["mean"] for r in results), 2),
                  "warped": round(statistics.mean(r["warped"]["mean"] for r in results), 2)}
            for key, results in sorted(groups.items())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="FAMILY.NAME=FOLDER[,FOLDER...], each scored by fsdd_warp.py")
    parser.add_argument("--max-size", type=int, default=3, help="largest subset (default 3)")
    parser.add_argument("--ctc-grid", type=float_list, default=[0.0, 0.1, 0.2, 0.3, 0.5],
                        help="CTC weights; each fold gets the other folds' best")
    args = parser.parse_args(argv)
    try:
        runs = dict(parse_run(text) for text in args.runs)
        scored = score_subsets({name: cached_models(folders) for name, folders in runs.items()}, args.ctc_grid,
                               args.max_size)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for subset, result in scored.items():
        folds = {s: v["wer"] for s, v in result["warped"].items() if s != "mean"}
        print(f"{'+'.join(subset):24s} unwarped {result['unwarped']['mean']:5.2f}  warped "
              f"{result['warped']['mean']:5.2f}  warped per fold {folds}")
    means, mixes = by_kind(scored), by_kind(scored, mix)
    for (size, name), row in [*means.items(), *mixes.items()]:
        print(f"size {size} {name:10s} {row['subsets']:2d} subsets: unwarped {row['unwarped']:5.2f}  warped "
              f"{row['warped']:5.2f}")
    print(json.dumps({"subsets": {"+".join(s): r for s, r in scored.items()},
                      "by_kind": {f"{size} {name}": row for (size, name), row in means.items()},
                      "by_mix": {name: row for (_, name), row in mixes.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
