"""Which digits each FSDD fold model gets wrong on its held-out speaker, and whether two runs agree.

Takes folders written by ``tasks/las/fsdd_loso.py`` (``OUT/{speaker}/final``), transcribes all recordings of
each fold's held-out speaker (greedy, as the protocol scores them) and prints, per fold, the WER and the most
frequent ``reference→hypothesis`` pairs. When two folders hold the same fold (e.g. two seeds), it also prints
how many of the first run's errors the second run makes identically (same recording, same wrong word) and
the WER of a two-model ensemble that sums the joint CTC/attention scores of the ten digit words
(``--ensemble``): systematic, seed-independent confusions are voice differences that neither more seeds nor
averaging remove.

With ``--tables F`` it decodes nothing: it reads the closed-set tables that ``fsdd_warp.py`` cached
(``OUT/warp_tables/{speaker}.npz``) at warp factor F and CTC weight ``--ctc-weight``, and prints per held-out
speaker the mean WER and mean count per run of each confusion over all the folders given (e.g. six seeds).

    python tasks/las/fsdd_confusions.py runs/las_fsdd_ft                          # every fold found there
    python tasks/las/fsdd_confusions.py runs/fsdd600_s{0,1,2,3,4,5}{a,b} --tables 1.0 --ctc-weight 0
    python tasks/las/fsdd_confusions.py runs/las_fsdd_ft runs/las_fsdd_ft_seed1 --folds george,lucas --ensemble
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling scripts, run or imported from anywhere
from fsdd_beam import DEFAULT_ROOT, combine, fold_models, fold_root  # noqa: E402
from fsdd_warp import cached_tables  # noqa: E402

from speechseq.data.readers import DIGIT_WORDS as DIGITS  # noqa: E402
from speechseq.data.readers import load_fsdd  # noqa: E402
from speechseq.errors import ConfigError  # noqa: E402


def confusions(references: list[str], hypotheses: list[str]) -> collections.Counter:
    """``(reference, hypothesis)`` -> count, over the pairs that differ.

    >>> confusions(["two", "two", "four"], ["four", "two", "four"])
    Counter({('two', 'four'): 1})
    """
    return collections.Counter((r, h) for r, h in zip(references, hypotheses) if r != h)


def shared_errors(references: list[str], first: list[str], second: list[str]) -> tuple[int, int]:
    """``(errors of first, of those the ones second makes identically)``.

    >>> shared_errors(["one", "two", "six"], ["nine", "four", "six"], ["nine", "zero", "six"])
    (2, 1)
    """
    wrong = [i for i, (r, h) in enumerate(zip(references, first)) if r != h]
    return len(wrong), sum(first[i] == second[i] for i in wrong)


def speaker_files(root: Path, speaker: str) -> tuple[list[Path], list[str]]:
    """All recordings of ``speaker`` (in the reader's digit, index order) and their digit words."""
    rows = load_fsdd(root, speakers=[speaker])
    return [Path(audio["path"]) for audio in rows["audio"]], list(rows["text"])


def table_confusions(folders: list[Path], factor: float, ctc_weight: float) -> dict[str, tuple[int, float, collections.Counter]]:
    """Held-out speaker -> (runs, mean WER %, summed confusions) from the folders' cached warp tables."""
    found: dict[str, list[collections.Counter]] = collections.defaultdict(list)
    sizes: dict[str, int] = {}
    for speaker, path, refs, tables in cached_tables(folders):
        at = [f for f in tables if abs(f - factor) < 1e-6]
        if not at:
            raise ConfigError(f"{path}: factor {factor} is not among its warps {list(tables)}")
        scores = combine(tables[at[0]], ctc_weight)
        found[speaker].append(confusions(refs, [DIGITS[k] for k in scores.argmax(axis=1)]))
        sizes[speaker] = len(refs)
    return {s: (len(c), 100.0 * sum(sum(x.values()) for x in c) / (len(c) * sizes[s]), sum(c, collections.Counter()))
            for s, c in sorted(found.items())}


def digit_scores(model, waves: list[np.ndarray]) -> np.ndarray:
    """(N, 10) log-score of each digit word per recording: the model's joint CTC/attention loss, negated and
    summed over the word's tokens (+ end of sentence), without label smoothing."""
    import torch

    from speechseq.data.collate import pad_waves

    tokens = [torch.tensor(model.tokenizer.encode(word)) for word in DIGITS]
    token_lengths = torch.tensor([len(t) for t in tokens])
    padded = torch.nn.utils.rnn.pad_sequence(tokens, batch_first=True)
    smoothing, model.config.label_smoothing = model.config.label_smoothing, 0.0
    rows = []
    try:
        with torch.no_grad():
            for wave in waves:
                batch, lengths = pad_waves([wave] * len(DIGITS))
                out = model(batch, lengths, padded, token_lengths)
                rows.append((-out.utterance_loss * (token_lengths + 1).float()).numpy())
    finally:
        model.config.label_smoothing = smoothing
    return np.stack(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="fsdd_loso.py output folders (one per run)")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT,
                        help="FSDD recordings (a --speaker-eq fold reads its own equalised copy)")
    parser.add_argument("--folds", default="", help="comma-separated held-out speakers (default: all found)")
    parser.add_argument("--top", type=int, default=5, help="confusion pairs shown per fold")
    parser.add_argument("--ensemble", action="store_true", help="also score the 10 digit words with each run's "
                        "model and report each run's and the summed scores' closed-vocabulary WER")
    parser.add_argument("--tables", type=float, default=None, metavar="FACTOR",
                        help="read fsdd_warp.py's cached tables at this warp factor instead of decoding")
    parser.add_argument("--ctc-weight", type=float, default=0.0, help="λ of the tables' (1−λ)·decoder + λ·CTC")
    args = parser.parse_args(argv)
    if args.tables is not None:
        try:
            rows = table_confusions(args.folders, args.tables, args.ctc_weight)
        except ConfigError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        print("| held-out | runs | mean WER % | most frequent confusions (reference→hypothesis, mean count per run) |")
        print("|---|---|---|---|")
        for speaker, (runs, wer, pairs) in rows.items():
            shown = ", ".join(f"{r}→{h} {n / runs:.1f}" for (r, h), n in pairs.most_common(args.top))
            print(f"| {speaker} | {runs} | {wer:.2f} | {shown} |")
        return 0

    from speechseq.audio import load_audio
    from speechseq.inference import transcribe
    from speechseq.models import from_pretrained

    runs = [fold_models([folder]) for folder in args.folders]
    wanted = [f for f in args.folds.split(",") if f] or sorted(set().union(*runs))
    print("| held-out | run | WER % | most frequent confusions (reference→hypothesis ×count) |")
    print("|---|---|---|---|")
    for speaker in wanted:
        hyps, scores = [], []
        for folder, models in zip(args.folders, runs):
            if speaker not in models:
                continue
            files, refs = speaker_files(fold_root(models[speaker], speaker, args.root), speaker)
            model = from_pretrained(models[speaker])
            texts = [r.text.strip() for r in transcribe(model, [str(f) for f in files], batch_size=32)]
            hyps.append(texts)
            pairs = ", ".join(f"{r}→{h} ×{n}" for (r, h), n in confusions(refs, texts).most_common(args.top))
            wer = 100.0 * sum(r != h for r, h in zip(refs, texts)) / len(refs)
            print(f"| {speaker} | {folder} | {wer:.1f} | {pairs} |", flush=True)
            if args.ensemble:
                rate = model.feature_config.sample_rate
                scores.append(digit_scores(model, [load_audio(f, rate) for f in files]))
        if len(hyps) >= 2:
            errors, same = shared_errors(refs, hyps[0], hyps[1])
            print(f"| {speaker} | runs 1 and 2 | | {same} of run 1's {errors} errors made identically by run 2 |")
        if len(scores) >= 2:
            gold = np.array([DIGITS.index(r) for r in refs])
            each = " / ".join(f"{100.0 * np.mean(s.argmax(1) != gold):.1f}" for s in scores)
            summed = 100.0 * np.mean(sum(scores).argmax(1) != gold)
            print(f"| {speaker} | ensemble | {summed:.1f} | closed-vocabulary WER of each run: {each} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
