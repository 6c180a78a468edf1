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
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling scripts, run or imported from anywhere
from embedded_adapt import add_search_arguments, load_search, voice_rows, word_errors, write_results  # noqa: E402


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
    add_search_arguments(parser, "runs/embedded_warp.json")
    args = parser.parse_args(argv)
    from speechseq.warp import DEFAULT_FACTORS

    model, lm, options = load_search(args)
    rows, voices = voice_rows(args)
    results = {}
    for voice in voices:
        results[voice] = r = warp_voice(model, lm, [row for row in rows if row["speaker"] == voice], options,
                                        list(DEFAULT_FACTORS))
        print(voice, f"f* {r['factor']}: WER {100 * r['errors_unwarped'] / r['words']:.2f} -> "
              f"{100 * r['errors_warped'] / r['words']:.2f} %", flush=True)
    write_results(args, results, ("unwarped", "warped"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
