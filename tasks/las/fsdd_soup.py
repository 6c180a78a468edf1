"""A uniform model soup per FSDD fold: the weight average of one fold's models fine-tuned with different seeds.

Every fold model of ``fsdd_loso.py`` starts from the same pre-trained weights; fine-tuned with another seed
(other batches, dropout and perturbations) it ends elsewhere in the same basin, and the mean of the weights
(``speechseq.averaging``, Wortsman et al. 2022) is one model of the same size that is scored like any fold
model. The held-out speaker plays no part: nothing is selected, every seed's model goes in.

    python tasks/las/fsdd_soup.py --out runs/fsdd_soup runs/seed0_a runs/seed0_b runs/seed1_a runs/seed1_b
    python tasks/las/fsdd_beam.py runs/fsdd_soup           # greedy, beam and closed-set WER per fold
    python tasks/las/fsdd_soup.py --checkpoint step_300 --out runs/fsdd_soup_last runs/seed0_a ...  # last steps

Writes ``OUT/{speaker}/final`` for every speaker found with two or more ``{speaker}/final`` under the
folders, and links ``OUT/audio/{speaker}`` to the first one's speaker-equalised recordings (``--speaker-eq``
runs), which ``fsdd_beam.py`` reads. ``final`` is what each run exported: its last weights with
``las_fsdd_finetune.yaml`` now, the evaluation with the lowest validation WER before (``load_best_at_end``);
``--checkpoint step_N`` averages each run's ``checkpoints/step_N`` instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling script, run or imported from anywhere
from fsdd_beam import fold_finals  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    from speechseq.averaging import average_models

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="output folders of tasks/las/fsdd_loso.py")
    parser.add_argument("--out", type=Path, required=True, help="folder for the averaged fold models")
    parser.add_argument("--checkpoint", default=None,
                        help="average each run's checkpoints/NAME (e.g. step_300) instead of its final model")
    args = parser.parse_args(argv)
    sources = fold_finals(args.folders)
    if not sources or min(len(v) for v in sources.values()) < 2:
        counts = {speaker: len(v) for speaker, v in sources.items()}
        parser.error(f"every fold needs two or more models to average; found {counts or 'none'}")
    for speaker, finals in sources.items():
        chosen = [f.parent / "checkpoints" / args.checkpoint for f in finals] if args.checkpoint else finals
        average_models(chosen, args.out / speaker / "final", template=finals[0])
        audio = finals[0].parents[1] / "audio" / speaker
        link = args.out / "audio" / speaker
        if audio.is_dir() and not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(audio.resolve(), target_is_directory=True)
        print(f"{speaker}: averaged {len(chosen)} models ({', '.join(str(f) for f in chosen)})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
