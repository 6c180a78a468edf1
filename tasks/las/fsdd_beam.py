"""Greedy vs joint CTC/attention beam search vs closed-set decoding on each FSDD fold's held-out speaker.

Takes the folders written by ``tasks/las/fsdd_loso.py`` (``OUT/{speaker}/final``) and scores every fold's
model on all recordings of its held-out speaker: greedy, with ``--beam`` + CTC ``--ctc-weight``, and
closed-set (the output is the best of the ten digit words under the same joint score,
``speechseq.decoding.closed_set``; what a digit recogniser's grammar does). No LM: each recording holds one
word, and the embedded corpus's LM has never seen "zero".

    python tasks/las/fsdd_beam.py runs/las_fsdd_ft                       # every fold folder found there
    python tasks/las/fsdd_beam.py runs/las_fsdd_ft runs/las_fsdd_ft_rest --beam 10 --ctc-weight 0.3
    python tasks/las/fsdd_beam.py runs/las_fsdd_ft --beam 0              # greedy and closed set only
    python tasks/las/fsdd_beam.py runs/seed0 runs/seed1 runs/seed2 --beam 0 --ensemble
    python tasks/las/fsdd_beam.py runs/las_fsdd_ft --beam 0 --ctc-grid 0,0.1,0.2,0.3,0.5

``--ensemble``: where several folders hold the same fold (e.g. seeds), the last folder's model is scored as
above, and every fold also gets the closed-set WER of all its models together: each recording's ten word
scores are summed over the models (a product of experts; the scale of each model's score is the same
joint log-probability) and the best sum wins.

``--ctc-grid``: the closed-set WER of every fold at each CTC weight λ of the grid, and a nested choice of
λ: each fold is scored with the λ that gives the lowest mean WER on the *other* folds, whose held-out
speakers are not the fold's; so no speaker's own recordings choose the weight he is scored with.

``--tta speed:0.9,speed:1,speed:1.1``: test-time augmentation for ``--ensemble`` and ``--ctc-grid``: every
recording is also heard sped up, slowed down or pitch-shifted, and each word's scores are averaged over
the views. Each recording is judged alone (nothing is learnt from the speaker's other recordings), so this
is still the speaker-independent model; it costs one decoding per view. The greedy and ``closed_wer``
columns stay those of the recording itself.

    python tasks/las/fsdd_beam.py runs/las_fsdd_ft --beam 0 --ctc-grid 0,0.1,0.3 --tta speed:0.9,speed:1,speed:1.1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from speechseq.ensemble import combine  # noqa: F401  (the scripts weigh their tables with it)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_ROOT = REPO_ROOT.parent / "shared" / "data" / "fsdd" / "recordings"
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def fold_finals(folders: list[Path]) -> dict[str, list[Path]]:
    """Held-out speaker -> every ``{speaker}/final`` under ``folders``, in their order (``all`` has no fold)."""
    found: dict[str, list[Path]] = {}
    for folder in folders:
        for final in sorted(folder.glob("*/final")):
            if final.parent.name != "all":
                found.setdefault(final.parent.name, []).append(final)
    return found


def fold_models(folders: list[Path]) -> dict[str, Path]:
    """Held-out speaker -> exported model folder; a speaker found in several folders takes the last one."""
    return {speaker: finals[-1] for speaker, finals in fold_finals(folders).items()}


def fold_root(model_dir: Path, speaker: str, default: Path) -> Path:
    """The recordings a fold was trained and scored on: its speaker-equalised copy (``fsdd_loso.py
    --speaker-eq`` writes ``OUT/audio/{speaker}``) when there is one, else ``default``."""
    equalised = model_dir.parents[1] / "audio" / speaker
    return equalised if (equalised / "speaker_eq.json").is_file() else default


def score_fold(model_dir: Path, speaker: str, root: Path, beam: int, ctc_weight: float) -> dict[str, float]:
    """Greedy, beam and closed-set WER (%) of one fold's model on all recordings of its held-out ``speaker``."""
    from speechseq.inference import default_options, evaluate
    from speechseq.models import from_pretrained
    from speechseq.recipes.base import AsrDataConfig, load_asr_splits

    model = from_pretrained(model_dir)
    data = load_asr_splits(AsrDataConfig(corpus="fsdd", root=str(root), fsdd_unseen_speakers=[speaker]))
    held_out = data["test_unseen"]
    greedy = default_options(model)
    beam_options = dataclasses.replace(greedy, beam_size=max(1, beam), ctc_weight=ctc_weight)
    scores = {"greedy_wer": round(100 * evaluate(model, held_out, greedy, batch_size=32)["wer"], 1)}
    if beam > 0:  # --beam 0: greedy and closed set only
        scores["beam_wer"] = round(100 * evaluate(model, held_out, beam_options, batch_size=32)["wer"], 1)
    closed = evaluate(model, held_out, beam_options, batch_size=32, vocabulary=DIGITS)
    return {**scores, "closed_wer": round(100 * closed["wer"], 1), "utterances": len(held_out)}


def parse_view(text: str) -> tuple[str, float]:
    """A test-time view of the audio: ``"speed:0.9"`` (tempo and pitch, as Kaldi's speed perturbation) or
    ``"pitch:-1"`` (semitones, duration kept); ``"speed:1"`` is the recording itself.

    >>> parse_view("speed:0.9"), parse_view("pitch:-1.5")
    (('speed', 0.9), ('pitch', -1.5))
    >>> parse_view("tempo:2")
    Traceback (most recent call last):
    ...
    ValueError: view 'tempo:2': expected speed:FACTOR or pitch:SEMITONES
    """
    kind, _, value = text.partition(":")
    try:
        amount = float(value)
    except ValueError:
        amount = None
    if kind not in ("speed", "pitch") or amount is None or (kind == "speed" and amount <= 0):
        raise ValueError(f"view {text!r}: expected speed:FACTOR or pitch:SEMITONES")
    return kind, amount


def parse_views(text: str) -> list[tuple[str, float]]:
    """``--tta``'s comma-separated views; a bad one is an argparse error that says what is expected."""
    try:
        return [parse_view(view) for view in text.split(",")]
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def apply_view(wave: np.ndarray, sample_rate: int, view: tuple[str, float]) -> np.ndarray:
    """``wave`` (S,) as heard through ``view`` (see :func:`parse_view`); the identity views return it as is."""
    from speechseq.augment import pitch_shift, speed_perturb

    kind, amount = view
    if (kind == "speed" and amount == 1.0) or (kind == "pitch" and amount == 0.0):
        return wave
    return speed_perturb(wave, sample_rate, amount) if kind == "speed" else pitch_shift(wave, sample_rate, amount)


def view_tables(
    model_dir: Path, speaker: str, root: Path, views: list[tuple[str, float]]
) -> tuple[list[tuple[str, str]], list[dict[str, np.ndarray]]]:
    """``(id, reference)`` of each recording of the held-out ``speaker``, and for each of ``views`` each
    scorer's ``(N, 10)`` log-scores of the ten digit words under that view (columns in ``DIGITS`` order:
    ``"decoder"`` and ``"ctc"``; a CTC model has ``"ctc"`` only). The model and audio are loaded once."""
    from speechseq.audio import load_audio
    from speechseq.ensemble import closed_set_table as score_table
    from speechseq.models import from_pretrained
    from speechseq.recipes.base import AsrDataConfig, load_asr_splits

    model = from_pretrained(model_dir)
    held_out = load_asr_splits(AsrDataConfig(corpus="fsdd", root=str(root), fsdd_unseen_speakers=[speaker]))
    rows = list(held_out["test_unseen"])
    rate = model.feature_config.sample_rate
    waves = [load_audio(row["audio"], rate) for row in rows]
    tables = [score_table(model, [apply_view(wave, rate, view) for wave in waves], DIGITS) for view in views]
    return [(str(row["id"]), str(row["text"])) for row in rows], tables


def closed_set_table(
    model_dir: Path, speaker: str, root: Path, views: list[tuple[str, float]] | None = None
) -> tuple[list[tuple[str, str]], dict[str, np.ndarray]]:
    """``(id, reference)`` of each recording, and each scorer's ``(N, 10)`` log-scores of the ten digit
    words (as :func:`view_tables`) for one fold model on all recordings of its held-out ``speaker``.
    ``combine`` weighs them.

    With ``views`` (test-time augmentation), each scorer's table is the mean of its tables over the views
    of every recording: a product of experts, as ``--ensemble`` is over models. A word impossible for CTC
    in one view (−inf) stays impossible."""
    rows, tables = view_tables(model_dir, speaker, root, views or [("speed", 1.0)])
    return rows, {name: np.mean([table[name] for table in tables], axis=0) for name in tables[0]}


def closed_set_wer(references: list[str], tables: list[np.ndarray]) -> float:
    """Closed-set WER (%) of the models whose ``(N, 10)`` digit-word scores are ``tables``, scores summed.

    >>> refs = ["zero", "one"]
    >>> a = np.zeros((2, 10)); a[0, 0] = a[1, 2] = 1.0    # right, wrong
    >>> b = np.zeros((2, 10)); b[0, 3] = b[1, 1] = 3.0    # wrong, right (and surer)
    >>> closed_set_wer(refs, [a]), closed_set_wer(refs, [b]), closed_set_wer(refs, [a, b])
    (50.0, 50.0, 50.0)
    >>> closed_set_wer(refs, [a, b, a, a])
    0.0
    """
    best = np.sum(tables, axis=0).argmax(axis=1)
    return round(100 * float(np.mean([DIGITS[k] != ref for k, ref in zip(best, references)])), 1)


def nested_choice(wer: dict[str, dict[float, float]]) -> dict[str, float]:
    """Fold -> the λ with the lowest mean WER over the other folds (ties: the first λ of the grid).

    >>> nested_choice({"a": {0.0: 9.0, 0.3: 1.0}, "b": {0.0: 2.0, 0.3: 4.0}, "c": {0.0: 2.0, 0.3: 4.0}})
    {'a': 0.0, 'b': 0.3, 'c': 0.3}
    """
    grid = list(next(iter(wer.values())))
    chosen = {}
    for fold in wer:
        others = [scores for other, scores in wer.items() if other != fold]
        chosen[fold] = min(grid, key=lambda lam: sum(scores[lam] for scores in others))
    return chosen


def float_list(text: str) -> list[float]:
    """A comma-separated list of numbers on the command line.

    >>> float_list("0,0.1,0.3")
    [0.0, 0.1, 0.3]
    """
    return [float(value) for value in text.split(",")]


def fold_parser(description: str) -> argparse.ArgumentParser:
    """A parser with the arguments of every script that scores the folds of ``fsdd_loso.py``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("folders", nargs="+", type=Path, help="output folders of tasks/las/fsdd_loso.py")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT,
                        help="FSDD recordings folder (a --speaker-eq fold reads its own equalised copy)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = fold_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--beam", type=int, default=10, help="beam size; 0 skips the beam-search column")
    parser.add_argument("--ctc-weight", type=float, default=0.3)
    parser.add_argument("--ensemble", action="store_true",
                        help="also score each fold's models from every folder together (summed closed-set scores)")
    parser.add_argument("--ctc-grid", type=float_list, default=None,
                        help="comma-separated CTC weights: closed-set WER at each, and each fold at the weight "
                             "that is best on the other folds")
    parser.add_argument("--tta", type=parse_views, default=None,
                        help="test-time views whose closed-set scores are averaged in --ensemble and --ctc-grid, "
                             "e.g. speed:0.9,speed:1,speed:1.1")
    args = parser.parse_args(argv)
    if args.tta and not (args.ensemble or args.ctc_grid):
        parser.error("--tta only changes the --ensemble and --ctc-grid scores: add one of them")
    models = fold_models(args.folders)
    if not models:
        parser.error(f"no '*/final' fold models under {[str(f) for f in args.folders]}")
    results = {}
    for speaker, model_dir in models.items():
        root = fold_root(model_dir, speaker, args.root)
        results[speaker] = score_fold(model_dir, speaker, root, args.beam, args.ctc_weight)
        # each model decoded once, though --ensemble and --ctc-grid both need the fold model's table
        finals = fold_finals(args.folders)[speaker] if args.ensemble else [model_dir] if args.ctc_grid else []
        tables = [closed_set_table(d, speaker, fold_root(d, speaker, args.root), args.tta) for d in finals]
        if args.ensemble:
            if any(rows != tables[0][0] for rows, _ in tables):
                raise SystemExit(f"fold {speaker}: {[str(d) for d in finals]} read different recordings")
            references = [ref for _, ref in tables[0][0]]
            results[speaker]["ensemble_closed_wer"] = closed_set_wer(
                references, [combine(parts, args.ctc_weight) for _, parts in tables])
            results[speaker]["ensemble_models"] = len(tables)
        if args.ctc_grid:
            rows, parts = tables[-1]  # the last folder's model is the fold's, as in score_fold
            references = [ref for _, ref in rows]
            results[speaker]["closed_wer_by_ctc_weight"] = {
                lam: closed_set_wer(references, [combine(parts, lam)]) for lam in args.ctc_grid}
        print(speaker, results[speaker], flush=True)
    if args.ctc_grid:
        chosen = nested_choice({speaker: r["closed_wer_by_ctc_weight"] for speaker, r in results.items()})
        for speaker, lam in chosen.items():
            results[speaker]["nested_ctc_weight"] = lam
            results[speaker]["nested_closed_wer"] = results[speaker]["closed_wer_by_ctc_weight"][lam]
    folds = list(results.values())
    keys = [key for key in ("greedy_wer", "beam_wer", "closed_wer", "ensemble_closed_wer", "nested_closed_wer")
            if key in folds[0]]
    results["mean"] = {key: round(sum(r[key] for r in folds) / len(folds), 1) for key in keys}
    if args.ctc_grid:
        results["mean"]["closed_wer_by_ctc_weight"] = {
            lam: round(sum(r["closed_wer_by_ctc_weight"][lam] for r in folds) / len(folds), 1) for lam in args.ctc_grid}
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
