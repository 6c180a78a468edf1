"""Per-voice VTLN on the embedded corpus's unseen voices (open vocabulary): a speed warp chosen on confidence.

For each voice of ``test_unseen`` (or of ``--data``, a manifest with a speaker column), every sentence is
decoded greedily under each speed factor of the grid; the voice's factor f* is the one whose greedy
transcripts the attention decoder gives the highest mean log-probability per token
(``speechseq.warp.transcript_confidence``; no transcripts, no candidate list). The voice is then decoded with
the search (beam + CTC + LM, as ``embedded_adapt.py``) unwarped and, where f* is not 1, warped by f*.

    python tasks/las/embedded_warp.py --model runs/las/final --lm runs/lm_2400/final --out runs/embedded_warp.json
    python tasks/las/embedded_warp.py --model runs/las/final --lm runs/lm_2400/final \
        --data runs/embedded_unseen_dev/manifest.csv --out runs/embedded_warp_dev.json

Writes ``--out`` (JSON: per voice f*, each factor's confidence, and the word errors unwarped and warped).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling scripts, run or imported from anywhere
from embedded_adapt import word_errors  # noqa: E402


def warp_voice(model, lm, rows: list[dict], options, factors: list[float]) -> dict:
    """f* of one voice, and its word errors with the search, unwarped and at f*."""
    from speechseq.audio import load_audio
    from speechseq.augment import speed_perturb
    from speechseq.inference import transcribe
    from speechseq.text import normalize
    from speechseq.warp import choose_warp, transcript_confidence

    rate = model.feature_config.sample_rate
    waves = [load_audio(r["audio"], rate) for r in rows]
    refs = [normalize(str(r["text"]), str(r.get("lang") or "en")) for r in rows]
    choice = choose_warp(waves, rate, factors, transcript_confidence(model))
    out = {"factor": choice.factor, "confidence": choice.scores, "sentences": len(rows)}
    for name, factor in (("unwarped", 1.0), ("warped", choice.factor)):
        if name == "warped" and factor == 1.0:
            out["errors_warped"] = out["errors_unwarped"]
            continue
        hyps = [r.text for r in transcribe(model, [speed_perturb(w, rate, factor) for w in waves], options, lm=lm,
                                           batch_size=16)]
        out[f"errors_{name}"], out["words"] = word_errors(refs, hyps)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="saved LAS model (trained on the embedded corpus)")
    parser.add_argument("--lm", default=None, help="saved LM for the search")
    parser.add_argument("--beam", type=int, default=10)
    parser.add_argument("--ctc-weight", type=float, default=0.1)
    parser.add_argument("--lm-weight", type=float, default=0.7)
    parser.add_argument("--length-bonus", type=float, default=1.0)
    parser.add_argument("--voices", default=None, help="comma-separated unseen voices (default: all)")
    parser.add_argument("--data", type=Path, default=None,
                        help="manifest (CSV/JSONL with a speaker column) instead of the corpus's test_unseen split")
    parser.add_argument("--out", type=Path, default=Path("runs/embedded_warp.json"))
    args = parser.parse_args(argv)
    import torch

    from speechseq.data.readers import load_manifest
    from speechseq.decoding import DecodingOptions
    from speechseq.inference import default_options, load_lm
    from speechseq.models import from_pretrained
    from speechseq.recipes.base import AsrDataConfig, load_asr_splits
    from speechseq.warp import DEFAULT_FACTORS

    torch.set_num_threads(1)
    model = from_pretrained(args.model).eval()
    lm = load_lm(args.lm, model).eval() if args.lm else None
    options = DecodingOptions(beam_size=args.beam, ctc_weight=args.ctc_weight, lm_weight=args.lm_weight if lm else 0.0,
                              length_bonus=args.length_bonus, max_len_ratio=default_options(model).max_len_ratio)
    rows = list(load_manifest(args.data)) if args.data else list(load_asr_splits(AsrDataConfig())["test_unseen"])
    if not all(r.get("speaker") for r in rows):
        raise SystemExit(f"{args.data or 'test_unseen'}: every row needs a speaker: voices are warped one by one")
    voices = sorted({r["speaker"] for r in rows})
    if args.voices:
        voices = [v for v in voices if v in args.voices.split(",")]
    results = {}
    for voice in voices:
        results[voice] = r = warp_voice(model, lm, [row for row in rows if row["speaker"] == voice], options,
                                        list(DEFAULT_FACTORS))
        print(voice, f"f* {r['factor']}: WER {100 * r['errors_unwarped'] / r['words']:.2f} -> "
              f"{100 * r['errors_warped'] / r['words']:.2f} %", flush=True)
    words = sum(r["words"] for r in results.values())
    total = {k: round(100 * sum(r[f"errors_{k}"] for r in results.values()) / words, 2) for k in ("unwarped", "warped")}
    print(json.dumps(total))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"wer": total, "voices": results,
                                    "settings": {k: str(v) for k, v in vars(args).items()}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
