"""Test-time speaker warping on FSDD's held-out speakers: each fold model picks the pitch/formant shift of
its held-out speaker's audio by its own scores (``speechseq/speaker_warp.py``; no transcripts), then
transcribes all his recordings with it.

With ``--recordings N`` the shift is chosen on N recordings drawn at random (seeded), as a new user would
give, and then applied to all of them; without it, on all of them, and the table also shows the WER of
every candidate shift (what an oracle would pick). Results also go to ``OUT/speaker_warp.json``.

    python tasks/las/fsdd_speaker_warp.py runs/las_fsdd_eq                      # every fold found there
    python tasks/las/fsdd_speaker_warp.py runs/las_fsdd_eq --folds george --recordings 20
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling scripts, run or imported from anywhere
from fsdd_beam import DEFAULT_ROOT, fold_models, fold_root  # noqa: E402
from fsdd_confusions import speaker_files  # noqa: E402

from speechseq.audio import audio_info, load_audio  # noqa: E402
from speechseq.augment import pitch_shift  # noqa: E402
from speechseq.metrics import word_error_rate  # noqa: E402
from speechseq.speaker_warp import choose_shift  # noqa: E402


def warp_fold(model, waves: list[np.ndarray], words: list[str], rate: int, shifts: list[float],
              recordings: int | None, seed: int = 0) -> dict:
    """Choose the shift (on all recordings, or ``recordings`` drawn with ``seed``) and score all of them."""
    if recordings is None or recordings >= len(waves):
        choice = choose_shift(model, waves, rate, shifts)
        wer = {s: 100 * word_error_rate(words, t) for s, t in choice.transcripts.items()}
        return {"shift": choice.shift, "wer_unshifted": wer[0.0], "wer": wer[choice.shift], "wer_per_shift": wer,
                "mean_scores": choice.mean_scores, "token_scores": choice.token_scores}
    chosen = np.random.default_rng(seed).choice(len(waves), size=recordings, replace=False)
    choice = choose_shift(model, [waves[i] for i in chosen], rate, shifts)
    texts = model.transcribe([pitch_shift(w, rate, choice.shift) for w in waves], sample_rate=rate)
    plain = model.transcribe(waves, sample_rate=rate)
    return {"shift": choice.shift, "wer_unshifted": 100 * word_error_rate(words, plain),
            "wer": 100 * word_error_rate(words, texts), "mean_scores": choice.mean_scores}


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    import torch

    from speechseq.models import from_pretrained

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="fsdd_loso.py output folders")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT,
                        help="FSDD recordings (a --speaker-eq fold reads its own equalised copy)")
    parser.add_argument("--folds", default="", help="comma-separated held-out speakers (default: all found)")
    parser.add_argument("--shifts", default="-3,-2,-1,0,1,2,3", help="candidate shifts in semitones (0 included)")
    parser.add_argument("--recordings", type=int, default=None, help="choose on this many recordings (default all)")
    parser.add_argument("--seed", type=int, default=0, help="which recordings are drawn with --recordings")
    args = parser.parse_args(argv)
    shifts = sorted({float(s) for s in args.shifts.split(",")} | {0.0})
    models = fold_models(args.folders)
    wanted = [f for f in args.folds.split(",") if f] or sorted(models)
    results = {}
    print("| held-out | WER % as recorded | chosen shift (semitones) | WER % shifted |\n|---|---|---|---|", flush=True)
    for speaker in wanted:
        files, words = speaker_files(fold_root(models[speaker], speaker, args.root), speaker)
        waves = [load_audio(f) for f in files]
        rate = audio_info(files[0]).sample_rate
        model = from_pretrained(models[speaker]).eval()
        torch.manual_seed(0)
        results[speaker] = warp_fold(model, waves, words, rate, shifts, args.recordings, args.seed)
        r = results[speaker]
        print(f"| {speaker} | {r['wer_unshifted']:.1f} | {r['shift']:+.0f} | {r['wer']:.1f} |", flush=True)
    if results:
        mean = {k: float(np.mean([r[k] for r in results.values()])) for k in ("wer_unshifted", "wer")}
        print(f"| **mean** | **{mean['wer_unshifted']:.1f}** | | **{mean['wer']:.1f}** |")
        for speaker, r in results.items():
            if "wer_per_shift" in r:
                print(speaker, "WER per shift:", {f"{s:+.0f}": round(w, 1) for s, w in r["wer_per_shift"].items()},
                      "mean score:", {f"{s:+.0f}": round(v, 3) for s, v in r["mean_scores"].items()})
        name = "speaker_warp.json" if args.recordings is None else f"speaker_warp_n{args.recordings}_s{args.seed}.json"
        (args.folders[0] / name).write_text(json.dumps({"runs": results, "mean": mean}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
