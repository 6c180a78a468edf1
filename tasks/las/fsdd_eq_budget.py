"""How many recordings of a new speaker speaker equalisation needs: held-out WER against the curve's sample.

The ``--speaker-eq`` recipe measures each held-out speaker's long-term spectrum from all 500 of his
recordings. A new user would give a few. For every fold model of ``fsdd_loso.py --speaker-eq`` this draws
``N`` of the held-out speaker's recordings at random (``--draws`` times, seeded), measures his curve from
them alone, equalises all 500 with it to the fold's reference (``OUT/audio/{fold}/speaker_eq.json``) and
transcribes them greedily. ``N = all`` is the recipe's own setting (in memory, not via 16-bit files, so it
may differ from the protocol's figure by a recording or two).

    python tasks/las/fsdd_eq_budget.py runs/las_fsdd_eq --recordings 5,10,20,all --draws 3
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling scripts, run or imported from anywhere
from fsdd_beam import DEFAULT_ROOT, fold_models  # noqa: E402
from fsdd_confusions import speaker_files  # noqa: E402

from speechseq.audio import load_audio  # noqa: E402
from speechseq.inference import transcribe  # noqa: E402
from speechseq.metrics import word_error_rate  # noqa: E402
from speechseq.speaker_eq import EqualizerConfig, equalize, long_term_spectrum  # noqa: E402


def sample_curve(
    waves: list[np.ndarray], count: int | None, seed: int, rate: int, config: EqualizerConfig
) -> np.ndarray:
    """Long-term spectrum from ``count`` recordings drawn without replacement (``None``: all of them)."""
    if count is None or count >= len(waves):
        return long_term_spectrum(waves, rate, config)
    chosen = np.random.default_rng(seed).choice(len(waves), size=count, replace=False)
    return long_term_spectrum([waves[i] for i in chosen], rate, config)


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    from speechseq.models import from_pretrained

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="fsdd_loso.py --speaker-eq output folders")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="the original FSDD recordings")
    parser.add_argument("--recordings", default="5,10,20,all", help="curve sample sizes; 'all' = every recording")
    parser.add_argument("--draws", type=int, default=3, help="random samples per size (seeds 0..draws-1)")
    args = parser.parse_args(argv)
    sizes = [None if s == "all" else int(s) for s in args.recordings.split(",")]
    header = ["fold", *[f"N={'all' if n is None else n}" for n in sizes]]
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header), flush=True)
    means: dict[str, list[float]] = {h: [] for h in header[1:]}
    for speaker, final in fold_models(args.folders).items():
        record_path = final.parents[1] / "audio" / speaker / "speaker_eq.json"
        if not record_path.is_file():
            raise FileNotFoundError(f"{record_path}: not a --speaker-eq run (no equalisation record)")
        record = json.loads(record_path.read_text())
        config, rate = EqualizerConfig(**record["config"]), int(record["sample_rate"])
        reference = np.asarray(record["reference"])
        files, words = speaker_files(args.root, speaker)
        waves = [load_audio(path) for path in files]
        model = from_pretrained(final).eval()
        cells = []
        for size, name in zip(sizes, header[1:]):
            wers = []
            for seed in range(1 if size is None else args.draws):
                gain = reference - sample_curve(waves, size, seed, rate, config)
                equalised = [(equalize(w, rate, gain, config), rate) for w in waves]
                hyps = [r.text.strip() for r in transcribe(model, equalised, batch_size=32)]
                wers.append(100 * word_error_rate(words, hyps))
            means[name].append(float(np.mean(wers)))
            cells.append(f"{np.mean(wers):.1f}" + (f" ({min(wers):.1f}–{max(wers):.1f})" if len(wers) > 1 else ""))
        print(f"| {speaker} | " + " | ".join(cells) + " |", flush=True)
    print("| **mean** | " + " | ".join(f"**{np.mean(v):.1f}**" for v in means.values()) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
