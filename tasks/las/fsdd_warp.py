"""Per-speaker VTLN on FSDD's held-out speakers: a speed warp chosen on the model's confidence, no transcripts.

For every fold model of ``tasks/las/fsdd_loso.py`` (``OUT/{speaker}/final``), each recording of the held-out
speaker is decoded closed-set under every speed factor of ``--factors``; the speaker's factor f* is the one
whose recordings the attention decoder gives the highest mean best-word log-probability
(:mod:`speechseq.warp`; ties to the factor closest to 1). The speaker is then scored at f*, with the CTC
weight λ chosen on the other folds (each at its own f*), as ``fsdd_beam.py --ctc-grid`` does.

Like ``--speaker-eq``, this uses the new speaker's recordings without their transcripts; unlike
``fsdd_adapt.py`` no weight changes. Also printed: the tables of f*-0.1, f*, f*+0.1 averaged (``views``),
and of 0.9, 1, 1.1 (``unwarped_views``: stop 18's per-recording views, ``fsdd_beam.py --tta``);
f* chosen from only ``--budget`` recordings drawn at random (``--draws`` seeded draws; the WER at the
warped column's λ, mean over the draws): what a new user who gives a few recordings gets; and every
factor's WER at that λ (the ``oracle`` column takes the best of them with hindsight: a diagnostic only).
``--min-gain G`` adds the column ``guarded``: warped only where f*'s confidence beats 1's by at least G
(:func:`speechseq.warp.pick`), else unwarped.

The decoded tables are cached in ``OUT/warp_tables/{speaker}.npz`` (a rerun with other options is quick).

    python tasks/las/fsdd_warp.py runs/fsdd600_s0a runs/fsdd600_s0b --ctc-grid 0,0.1,0.2,0.3,0.5
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling scripts, run or imported from anywhere
from fsdd_beam import (  # noqa: E402
    closed_set_wer,
    combine,
    float_list,
    fold_models,
    fold_parser,
    fold_root,
    nested_choice,
    view_tables,
)

from speechseq.ensemble import confidence  # noqa: E402
from speechseq.errors import ConfigError  # noqa: E402
from speechseq.warp import DEFAULT_FACTORS, check_factors, pick  # noqa: E402


Tables = dict[float, dict[str, np.ndarray]]  # warp factor -> {"decoder", "ctc"} closed-set tables (N, 10)


def read_tables(cache: Path) -> tuple[list[str], Tables]:
    """References and factor -> ``{"decoder", "ctc"}`` tables of one cached ``warp_tables/{speaker}.npz``."""
    saved = np.load(cache)
    return [str(r) for r in saved["references"]], {
        float(f): {"decoder": saved["decoder"][i], "ctc": saved["ctc"][i]} for i, f in enumerate(saved["factors"])}


def cached_tables(folders: list[Path]) -> list[tuple[str, Path, list[str], Tables]]:
    """(speaker, cache path, references, tables) of every ``warp_tables/*.npz`` in the folders, in order.

    Raises:
        ConfigError: a folder has no cache (``fsdd_warp.py`` has not been run on it).
    """
    found = []
    for folder in folders:
        paths = sorted((folder / "warp_tables").glob("*.npz"))
        if not paths:
            raise ConfigError(f"{folder}: no warp_tables/*.npz (run tasks/las/fsdd_warp.py on it first)")
        found += [(path.stem, path, *read_tables(path)) for path in paths]
    return found


def warp_tables(model_dir: Path, speaker: str, root: Path, factors: list[float]) -> tuple[list[str], dict]:
    """References of the held-out recordings and, per factor, the ``closed_set_table`` parts of the recordings
    warped by it; cached next to the fold folder (recomputed when the grid is not the cached one)."""
    cache = model_dir.parents[1] / "warp_tables" / f"{speaker}.npz"
    if cache.is_file():
        references, tables = read_tables(cache)
        if list(tables) == factors:
            return references, tables
    rows, per_view = view_tables(model_dir, speaker, root, [("speed", factor) for factor in factors])
    tables = dict(zip(factors, per_view))
    references = [ref for _, ref in rows]
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, factors=np.array(factors), references=np.array(references),
             decoder=np.stack([tables[f]["decoder"] for f in factors]),
             ctc=np.stack([tables[f]["ctc"] for f in factors]))
    return references, tables


def confidence_by_factor(tables: dict, recordings: slice = slice(None)) -> dict[float, float]:
    """Factor -> mean over ``recordings`` of the decoder's best-word log-probability (the choice criterion).

    >>> confidence_by_factor({1.0: {"decoder": np.array([[-1.0, -3.0], [-2.0, -0.5]])}})
    {1.0: -0.75}
    """
    return {f: confidence(parts, recordings) for f, parts in tables.items()}


def neighbours(factor: float, factors: list[float], step: float = 0.1) -> list[float]:
    """The grid's factors at ``factor`` - step, ``factor``, + step (those on the grid).

    >>> neighbours(0.9, [0.85, 0.9, 0.95, 1.0]), neighbours(0.95, [0.85, 0.9, 0.95, 1.0, 1.05])
    ([0.9, 1.0], [0.85, 0.95, 1.05])
    """
    return [f for f in factors if min(abs(f - (factor + d)) for d in (-step, 0.0, step)) < 1e-6]


def fold_scores(references: list[str], tables: dict, ctc_grid: list[float], budget: int, draws: int,
                min_gain: float = 0.0) -> dict:
    """One fold: its f* (and the guarded choice under ``min_gain``), the f* of ``draws`` random draws of
    ``budget`` recordings, the views around f*, and the closed-set WER of every factor (and of the views)
    at every λ of ``ctc_grid``."""
    conf = confidence_by_factor(tables)
    chosen = pick(conf)
    rng = np.random.default_rng(0)
    size = min(budget, len(references))
    drawn = [pick(confidence_by_factor(tables, rng.choice(len(references), size, replace=False))) for _ in range(draws)]
    views = neighbours(chosen, list(tables))

    def views_wer(factors: list[float]) -> dict[float, float]:
        averaged = {name: np.mean([tables[f][name] for f in factors], axis=0) for name in ("decoder", "ctc")}
        return {lam: closed_set_wer(references, [combine(averaged, lam)]) for lam in ctc_grid}

    return {
        "factor": chosen, "guarded_factor": pick(conf, min_gain) if min_gain > 0 else None,
        "budget_factor": drawn, "views": views,
        "wer": {f: {lam: closed_set_wer(references, [combine(parts, lam)]) for lam in ctc_grid}
                for f, parts in tables.items()},
        "views_wer": views_wer(views),
        # stop 18's views of the recording itself (0.9, 1, 1.1 where on the grid): the per-recording baseline
        "unwarped_views_wer": views_wer(neighbours(1.0, list(tables))) if 1.0 in tables else None,
    }


def summary(folds: dict[str, dict], ctc_grid: list[float]) -> dict:
    """The columns over folds: ``unwarped`` and ``unwarped_views`` (0.9, 1, 1.1; if 1 is on the grid),
    ``warped``, ``views`` (f*-0.1, f*, f*+0.1) with the nested λ;
    ``budget_warped`` and ``oracle`` at the warped column's λ; and every fixed λ's mean (``by_ctc_weight``)."""
    results: dict = {}
    columns = {"warped": lambda r: r["wer"][r["factor"]], "views": lambda r: r["views_wer"]}
    if all(r.get("guarded_factor") is not None for r in folds.values()):
        columns["guarded"] = lambda r: r["wer"][r["guarded_factor"]]
    if all(1.0 in r["wer"] for r in folds.values()):
        columns = {"unwarped": lambda r: r["wer"][1.0], "unwarped_views": lambda r: r["unwarped_views_wer"],
                   **columns}
    for name, by_lambda in columns.items():
        tables = {s: by_lambda(r) for s, r in folds.items()}
        lam = nested_choice(tables)
        results[name] = {s: {"ctc_weight": lam[s], "wer": tables[s][lam[s]]} for s in folds}
        results[name]["mean"] = round(sum(tables[s][lam[s]] for s in folds) / len(folds), 2)
    lam = {s: results["warped"][s]["ctc_weight"] for s in folds}
    # f* from a few recordings: the mean WER over the draws
    budget = {s: round(float(np.mean([r["wer"][f][lam[s]] for f in r["budget_factor"]])), 2) for s, r in folds.items()}
    # hindsight: each fold's best factor (a diagnostic only)
    oracle = {s: min(scores[lam[s]] for scores in r["wer"].values()) for s, r in folds.items()}
    for name, values in (("budget_warped", budget), ("oracle", oracle)):
        results[name] = {**values, "mean": round(sum(values.values()) / len(values), 2)}
    results["by_ctc_weight"] = {
        name: {lam: round(float(np.mean([by_lambda(r)[lam] for r in folds.values()])), 2) for lam in ctc_grid}
        for name, by_lambda in columns.items() if "views" not in name}
    results["factors"] = {s: {"chosen": r["factor"], "guarded": r.get("guarded_factor"),
                              "budget": r["budget_factor"]} for s, r in folds.items()}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = fold_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--factors", type=float_list, default=list(DEFAULT_FACTORS),
                        help="comma-separated speed factors to choose from")
    parser.add_argument("--ctc-grid", type=float_list, default=[0.0, 0.1, 0.2, 0.3, 0.5],
                        help="CTC weights; each fold gets the other folds' best")
    parser.add_argument("--budget", type=int, default=50,
                        help="also choose f* from only this many of the speaker's recordings, drawn at random")
    parser.add_argument("--draws", type=int, default=10, help="random draws of --budget recordings (seed 0)")
    parser.add_argument("--min-gain", type=float, default=0.0,
                        help="also score the guarded warp: f* only where its confidence beats 1's by this much")
    args = parser.parse_args(argv)
    try:
        factors = check_factors(args.factors)
    except ValueError as err:
        parser.error(str(err))
    models = fold_models(args.folders)
    if not models:
        parser.error(f"no '*/final' fold models under {[str(f) for f in args.folders]}")

    folds = {}
    for speaker, model_dir in models.items():
        references, tables = warp_tables(model_dir, speaker, fold_root(model_dir, speaker, args.root), factors)
        folds[speaker] = fold_scores(references, tables, args.ctc_grid, args.budget, args.draws, args.min_gain)
        print(speaker, "f* =", folds[speaker]["factor"],
              f"(from {args.budget} recordings: {folds[speaker]['budget_factor']})", flush=True)
    results = summary(folds, args.ctc_grid)
    for name in [n for n in ("unwarped", "unwarped_views", "warped", "guarded", "views", "budget_warped", "oracle")
                 if n in results]:
        print(f"{name:14s}", {s: v["wer"] if isinstance(v, dict) else v for s, v in results[name].items()})
    for name, by_lambda in results["by_ctc_weight"].items():
        print(f"{name:9s} at each λ", by_lambda)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
