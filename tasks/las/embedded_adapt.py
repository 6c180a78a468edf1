"""Unsupervised adaptation to each unseen voice of the embedded corpus (open vocabulary, LM-fused labels).

The embedded corpus's ``test_unseen`` split holds 12 voices never trained on (45-91 sentences each). Each
voice's sentences are split in two (alternating, in id order); each half is transcribed by a copy of the
model adapted on the other half only (``speechseq.adaptation.self_train``), with pseudo-labels from the
model's own search (beam + CTC + LM, confidence = posterior of the best of the N-best). The unadapted model
transcribes the same sentences with the same search, so the two WERs differ only by the adaptation.

    python tasks/las/embedded_adapt.py --model runs/las/final --lm runs/lm_2400/final
    python tasks/las/embedded_adapt.py --model runs/las/final --lm runs/lm_2400/final --voices un01_announcer,un11_ian
    # the unseen-voice development set of tasks/las/embedded_unseen_dev.py (any manifest with a speaker column)
    python tasks/las/embedded_adapt.py --model runs/las/final --lm runs/lm_2400/final \
        --data runs/embedded_unseen_dev/manifest.csv --out runs/embedded_adapt_dev.json

Writes ``--out`` (JSON: per voice the errors before/after and the words, pseudo-labels kept and wrong).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path


def halves(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """A voice's rows in id order, split alternately (both halves span the voice's sentence mix)."""
    ordered = sorted(rows, key=lambda r: str(r["id"]))
    return ordered[0::2], ordered[1::2]


def word_errors(refs: list[str], hyps: list[str]) -> tuple[int, int]:
    """(word errors, reference words) of a list of sentences."""
    from speechseq.metrics import error_rates

    words = sum(len(r.split()) for r in refs)
    return round(error_rates(refs, hyps).wer * words), words


def adapt_voice(model, lm, rows: list[dict], options, config) -> dict:
    """Word errors on all of one voice's sentences before and after cross-half self-training."""
    from speechseq.adaptation import self_train
    from speechseq.audio import load_audio
    from speechseq.inference import transcribe
    from speechseq.text import normalize

    rate = model.feature_config.sample_rate
    best = dataclasses.replace(options, nbest=1)
    out = {"errors_before": 0, "errors_after": 0, "words": 0, "kept": 0, "kept_wrong": 0, "sentences": len(rows)}
    waves = {r["id"]: load_audio(r["audio"], rate) for r in rows}  # each file read once
    truth = {r["id"]: normalize(str(r["text"]), str(r.get("lang") or "en")) for r in rows}
    first, second = halves(rows)
    for test, adapt in ((first, second), (second, first)):
        adapted, report = self_train(model, [waves[r["id"]] for r in adapt], config, options, lm=lm)
        out["kept"] += len(report.kept)
        out["kept_wrong"] += sum(report.labels[i].text != truth[adapt[i]["id"]] for i in report.kept)
        # "before" is decoded again with nbest=1 (not read off the 10-best pseudo-labels): the search's
        # end detection depends on nbest, and this is the search of the README's table.
        test_waves, refs = [waves[r["id"]] for r in test], [truth[r["id"]] for r in test]
        for name, m in (("before", model), ("after", adapted)):
            hyps = [x.text for x in transcribe(m, test_waves, best, lm=lm, batch_size=16)]
            errors, words = word_errors(refs, hyps)
            out[f"errors_{name}"] += errors
        out["words"] += words
    return out


def add_search_arguments(parser: argparse.ArgumentParser, out: str) -> None:
    """The model, the search and the voices: the arguments of every script that decodes unseen voices."""
    parser.add_argument("--model", required=True, help="saved LAS model (trained on the embedded corpus)")
    parser.add_argument("--lm", default=None, help="saved LM for the search")
    parser.add_argument("--beam", type=int, default=10)
    parser.add_argument("--ctc-weight", type=float, default=0.1)
    parser.add_argument("--lm-weight", type=float, default=0.7)
    parser.add_argument("--length-bonus", type=float, default=1.0)
    parser.add_argument("--voices", default=None, help="comma-separated unseen voices (default: all)")
    parser.add_argument("--data", type=Path, default=None,
                        help="manifest (CSV/JSONL with a speaker column) instead of the corpus's test_unseen split")
    parser.add_argument("--out", type=Path, default=Path(out))


def load_search(args: argparse.Namespace, nbest: int = 1) -> tuple:
    """``(model, lm, options)`` of :func:`add_search_arguments`' arguments, on one thread."""
    import torch

    from speechseq.decoding import DecodingOptions
    from speechseq.inference import default_options, load_lm
    from speechseq.models import from_pretrained

    torch.set_num_threads(1)
    model = from_pretrained(args.model).eval()
    lm = load_lm(args.lm, model).eval() if args.lm else None
    options = DecodingOptions(
        beam_size=args.beam, nbest=nbest, ctc_weight=args.ctc_weight, lm_weight=args.lm_weight if lm else 0.0,
        length_bonus=args.length_bonus, max_len_ratio=default_options(model).max_len_ratio,
    )
    return model, lm, options


def voice_rows(args: argparse.Namespace) -> tuple[list[dict], list[str]]:
    """The rows of ``--data`` (or of the corpus's ``test_unseen``) and the voices to run, sorted."""
    from speechseq.data.readers import load_manifest
    from speechseq.recipes.base import AsrDataConfig, load_asr_splits

    rows = list(load_manifest(args.data)) if args.data else list(load_asr_splits(AsrDataConfig())["test_unseen"])
    if not all(r.get("speaker") for r in rows):
        raise SystemExit(f"{args.data or 'test_unseen'}: every row needs a speaker ('speaker' column): "
                         "voices are handled one by one")
    voices = sorted({r["speaker"] for r in rows})
    if args.voices:
        voices = [v for v in voices if v in args.voices.split(",")]
    return rows, voices


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_search_arguments(parser, "runs/embedded_adapt.json")
    parser.add_argument("--steps", type=int, default=30, help="self-training updates per half [30]")
    parser.add_argument("--lr", type=float, default=1e-4, help="self-training learning rate [1e-4]")
    parser.add_argument("--batch-size", type=int, default=16, help="sentences per update [16]")
    parser.add_argument("--min-confidence", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from speechseq.adaptation import SelfTrainingConfig

    model, lm, options = load_search(args, nbest=args.beam)
    config = SelfTrainingConfig(steps=args.steps, lr=args.lr, batch_size=args.batch_size,
                                min_confidence=args.min_confidence, seed=args.seed)
    rows, voices = voice_rows(args)
    results = {}
    for voice in voices:
        results[voice] = adapt_voice(model, lm, [r for r in rows if r["speaker"] == voice], options, config)
        r = results[voice]
        print(voice, f"WER {100 * r['errors_before'] / r['words']:.2f} -> {100 * r['errors_after'] / r['words']:.2f} %",
              r, flush=True)
    write_results(args, results, ("before", "after"))
    return 0


def write_results(args: argparse.Namespace, results: dict[str, dict], columns: tuple[str, ...]) -> None:
    """Print the WER % of every ``errors_{column}`` over all voices and write ``--out`` (JSON)."""
    words = sum(r["words"] for r in results.values())
    total = {k: round(100 * sum(r[f"errors_{k}"] for r in results.values()) / words, 2) for k in columns}
    print(json.dumps(total))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"wer": total, "voices": results,
                                    "settings": {k: str(v) for k, v in vars(args).items()}}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
