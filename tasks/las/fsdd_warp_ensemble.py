"""Ensembles of FSDD fold models, each warped to its own VTLN factor, scored from ``fsdd_warp.py``'s cached tables.

Give the output folders of several ``fsdd_loso.py`` runs (e.g. three seeds, each split in two lanes). For every
held-out speaker, the models of all folders that hold his fold form the ensemble. Each model picks its own
factor f* from the speaker's unlabelled recordings, as ``fsdd_warp.py`` does (the highest mean best-word
log-probability of the attention decoder). Each recording's ten word scores are then summed over the models at
their f* (a product of experts, as ``fsdd_beam.py --ensemble`` does without the warp), and the best sum wins.
The CTC weight λ of each fold is the one best on the other folds. ``unwarped`` is the same ensemble at
factor 1.

Nothing is decoded: run ``fsdd_warp.py`` on each seed's folders first (it writes ``OUT/warp_tables/``).

    python tasks/las/fsdd_warp_ensemble.py runs/fsdd600_s{0,1,2}{a,b}
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling scripts, run or imported from anywhere
from fsdd_beam import closed_set_wer, combine, float_list, nested_choice  # noqa: E402
from fsdd_warp import Tables, cached_tables, confidence_by_factor  # noqa: E402

from speechseq.errors import ConfigError  # noqa: E402
from speechseq.warp import pick  # noqa: E402


def cached_models(folders: list[Path]) -> dict[str, tuple[list[str], list[Tables]]]:
    """Held-out speaker -> (references, the warp tables of every model of his fold) from the folders' caches.

    Raises:
        ConfigError: a folder has no cache, or two models of a fold scored different recordings.
    """
    found: dict[str, list[tuple[list[str], Tables]]] = collections.defaultdict(list)
    for speaker, _, references, tables in cached_tables(folders):
        found[speaker].append((references, tables))
    models = {}
    for speaker, entries in sorted(found.items()):
        references = entries[0][0]
        if any(refs != references for refs, _ in entries):
            raise ConfigError(f"fold {speaker}: the cached tables of {folders} hold different recordings")
        models[speaker] = (references, [tables for _, tables in entries])
    return models


def ensemble_wer(references: list[str], models: list[Tables], warped: bool, grid: list[float]) -> dict[float, float]:
    """λ -> closed-set WER (%) of the models' summed scores, each model at its own f* (``warped``) or at 1."""
    factors = [pick(confidence_by_factor(tables)) if warped else 1.0 for tables in models]
    return {lam: closed_set_wer(references, [combine(tables[f], lam) for tables, f in zip(models, factors)])
            for lam in grid}


def summary(models: dict[str, tuple[list[str], list[Tables]]], grid: list[float]) -> dict:
    """Per column (``unwarped``, ``warped``): each fold's nested λ and WER, and the mean over folds."""
    results: dict = {"models": {s: len(m) for s, (_, m) in models.items()}}
    for name, warped in (("unwarped", False), ("warped", True)):
        wer = {s: ensemble_wer(refs, tables, warped, grid) for s, (refs, tables) in models.items()}
        lam = nested_choice(wer)
        results[name] = {s: {"ctc_weight": lam[s], "wer": wer[s][lam[s]]} for s in wer}
        results[name]["mean"] = round(sum(wer[s][lam[s]] for s in wer) / len(wer), 2)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="output folders of fsdd_loso.py, scored by fsdd_warp.py")
    parser.add_argument("--ctc-grid", type=float_list, default=[0.0, 0.1, 0.2, 0.3, 0.5],
                        help="CTC weights; each fold gets the other folds' best")
    args = parser.parse_args(argv)
    try:
        models = cached_models(args.folders)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    results = summary(models, args.ctc_grid)
    print("models per fold", results["models"])
    for name in ("unwarped", "warped"):
        print(f"{name:9s}", {s: v["wer"] if isinstance(v, dict) else v for s, v in results[name].items()})
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
