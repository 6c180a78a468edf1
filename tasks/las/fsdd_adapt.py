"""Unsupervised adaptation to each FSDD fold's held-out speaker by self-training (speechseq.adaptation).

For every fold model written by ``tasks/las/fsdd_loso.py`` (``OUT/{speaker}/final``), the held-out
speaker's 500 recordings are split by take: 0-24 and 25-49. Each half is scored by a copy of the fold model
adapted on the *other* half only, with pseudo-labels from the model itself (closed-set decoding over the
ten digits, kept when their posterior is at least ``--min-confidence``); no transcript of the held-out
speaker is used, and no recording is scored by a model that saw it. The unadapted model is scored on the
same recordings with the same closed-set decoding, so the two WERs differ only by the adaptation.

    python tasks/las/fsdd_adapt.py runs/las_fsdd_eq            # every fold folder found there
    python tasks/las/fsdd_adapt.py runs/las_fsdd_eq --steps 150 --lr 3e-4 --min-confidence 0.8

Writes ``adapt.json`` into the first folder, or ``--out`` (per fold: WER before/after, recordings kept,
and, for the record only, how many kept pseudo-labels were wrong).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling script, run or imported from anywhere

from fsdd_beam import DEFAULT_ROOT, DIGITS, fold_models, fold_root  # noqa: E402


def halves_by_take(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """FSDD rows split into takes 0-24 and 25-49 (ids are ``{digit}_{speaker}_{take}``)."""
    take = [int(str(r["id"]).rsplit("_", 1)[1]) for r in rows]
    return [r for r, t in zip(rows, take) if t < 25], [r for r, t in zip(rows, take) if t >= 25]


def adapt_fold(model_dir: Path, speaker: str, root: Path, args: argparse.Namespace) -> dict:
    """Closed-set WER (%) on all of ``speaker``'s recordings before and after cross-half self-training."""
    import dataclasses

    from speechseq.adaptation import SelfTrainingConfig, self_train
    from speechseq.audio import load_audio
    from speechseq.decoding import DecodingOptions
    from speechseq.inference import transcribe
    from speechseq.models import from_pretrained
    from speechseq.recipes.base import AsrDataConfig, load_asr_splits
    from speechseq.text import normalize

    model = from_pretrained(model_dir).eval()
    rate = model.feature_config.sample_rate
    rows = list(load_asr_splits(AsrDataConfig(corpus="fsdd", root=str(root), fsdd_unseen_speakers=[speaker]))["test_unseen"])
    waves = {r["id"]: load_audio(r["audio"], rate) for r in rows}  # each file read once
    truth = {r["id"]: normalize(str(r["text"]), "en") for r in rows}
    options = DecodingOptions(beam_size=len(DIGITS), nbest=len(DIGITS), ctc_weight=args.ctc_weight)
    config = SelfTrainingConfig(steps=args.steps, lr=args.lr, min_confidence=args.min_confidence, seed=args.seed)
    errors = {"before": 0, "after": 0}
    kept, wrong_kept = 0, 0
    first, second = halves_by_take(rows)
    for test, adapt in ((first, second), (second, first)):
        adapted, report = self_train(model, [waves[r["id"]] for r in adapt], config, options, vocabulary=DIGITS)
        # The pseudo-labels are the unadapted model's closed-set transcripts of the adaptation half: its
        # "before" errors there, so the unadapted model is not run on the same recordings twice.
        errors["before"] += sum(label.text != truth[r["id"]] for label, r in zip(report.labels, adapt))
        kept += len(report.kept)
        wrong_kept += sum(report.labels[i].text != truth[adapt[i]["id"]] for i in report.kept)
        hyps = transcribe(adapted, [waves[r["id"]] for r in test], dataclasses.replace(options, nbest=1),
                          batch_size=64, vocabulary=DIGITS)
        errors["after"] += sum(h.text != truth[r["id"]] for h, r in zip(hyps, test))
    n = len(rows)
    return {
        "before_wer": round(100 * errors["before"] / n, 1), "after_wer": round(100 * errors["after"] / n, 1),
        "kept": kept, "utterances": n, "kept_wrong": wrong_kept,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="output folders of tasks/las/fsdd_loso.py")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT,
                        help="FSDD recordings folder (a --speaker-eq fold reads its own equalised copy)")
    parser.add_argument("--ctc-weight", type=float, default=0.3, help="λ of the closed-set scores [0.3]")
    parser.add_argument("--steps", type=int, default=150, help="self-training updates [150]")
    parser.add_argument("--lr", type=float, default=3e-4, help="self-training learning rate [3e-4]")
    parser.add_argument("--min-confidence", type=float, default=0.8, help="keep pseudo-labels this sure [0.8]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", default=None, help="comma-separated held-out speakers (default: all found)")
    parser.add_argument("--out", type=Path, default=None, help="results JSON [FIRST_FOLDER/adapt.json]")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    models = fold_models(args.folders)
    if args.folds:
        models = {s: m for s, m in models.items() if s in args.folds.split(",")}
    if not models:
        parser.error(f"no '*/final' fold models under {[str(f) for f in args.folders]}")
    results = {}
    for speaker, model_dir in models.items():
        results[speaker] = adapt_fold(model_dir, speaker, fold_root(model_dir, speaker, args.root), args)
        print(speaker, results[speaker], flush=True)
    folds = list(results.values())
    results["mean"] = {k: round(sum(r[k] for r in folds) / len(folds), 2) for k in ("before_wer", "after_wer")}
    results["settings"] = {k: v for k, v in vars(args).items() if k not in ("folders", "root", "out")}
    out = args.out or args.folders[0] / "adapt.json"
    out.write_text(json.dumps(results, indent=1))
    print(json.dumps(results["mean"]), f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
