"""Decoding speed and accuracy of a trained ASR model on real data, per search configuration and batch size.

    python bench/decoding_rtf.py --model runs/las/final --data embedded:test --lm runs/lm/final
    python bench/decoding_rtf.py --model runs/las/final --data fsdd:test --data-root ../shared/data/fsdd/recordings \\
        --beam 8 --ctc-weight 0.3 --batch-sizes 1 16 --repeats 3
    python bench/decoding_rtf.py --model runs/ctc/final --data embedded:test --lm runs/lm/final --threads 1
    python bench/decoding_rtf.py --model runs/las_fsdd_eq_utt_b/yweweler/final --data fsdd:test_unseen \
        --data-root runs/las_fsdd_eq_utt_b/audio/yweweler --vocabulary zero,one,two,three,four,five,six,seven,eight,nine

Where ``bench/decoding.py`` times the search alone on random weights of the reference sizes, this script
times what a user gets from ``speechseq.inference.transcribe`` with a trained model (default decoding
options, so beam search splits batches into groups of at most ``max_rows`` hypotheses). Configurations:

* attention models (LAS, any backbone): greedy (beam 1), beam B, beam B + CTC (λ), beam B + CTC + LM (λ, β),
  and with ``--vocabulary`` closed-set decoding over the given phrases (+ CTC λ);
* CTC models: greedy (best path), beam B (CTC prefix search), beam B + LM (β).

The LM configurations need ``--lm``; ``--length-bonus`` applies to every beam configuration (greedy is the
plain reference). The data spec is the one of ``speechseq evaluate``. As in ``bench/quantize.py``, audio is
decoded and resampled before timing, so the RTF (compute seconds per audio second, lower is faster) covers
front end, encoder and search only. At each batch size every configuration is warmed up on one batch, then
the configurations take turns, ``--repeats`` rounds (median), so the shared machine's slow spells touch all. WER/CER are corpus-level (jiwer) against references normalised as
``speechseq.inference.evaluate`` does; batching must not change the transcripts, and a warning goes to
stderr if it does. Prints a header line, a Markdown table and one JSON line. CPU timings on shared machines
vary by about 1.5× between runs: compare configurations within one run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from bench_data import add_data_arguments, load_data

from speechseq.decoding import DecodingOptions
from speechseq.inference import default_options, is_attention_model, load_lm, transcribe
from speechseq.metrics import error_rates
from speechseq.models import from_pretrained


@dataclass
class Configuration:
    """One search to time: its label, its options, and whether the LM is fused."""

    name: str
    options: DecodingOptions
    uses_lm: bool = False
    precision: str = "float32"
    vocabulary: list[str] | None = None  # closed-set decoding over these phrases


@dataclass
class Row:
    """Figures of one configuration at one batch size."""

    configuration: str
    batch_size: int
    seconds: float
    rtf: float
    ms_per_utt: float
    vs_greedy: float
    wer: float
    cer: float
    same_as_first_batch: float  # fraction of transcripts equal to those at the first batch size


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="saved ASR model folder or Hub repo (CTC or LAS)")
    add_data_arguments(parser)
    parser.add_argument("--lm", default=None, help="saved language model for the + LM configurations")
    parser.add_argument("--lm-weight", type=float, default=0.5, help="β of shallow fusion [0.5]")
    parser.add_argument("--ctc-weight", type=float, default=0.3, help="λ of joint decoding (attention models) [0.3]")
    parser.add_argument("--length-bonus", type=float, default=0.0, help="score per output token (beam configs) [0]")
    parser.add_argument("--beam", type=int, default=10, help="beam size B [10]")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32], help="[1 8 32]")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads [2]")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per configuration and batch (median) [1]")
    parser.add_argument("--score-beam", type=float, nargs="*", default=[],
                        help="also time the last configuration with these score beams (hypothesis pruning)")
    parser.add_argument("--vocabulary", default=None,
                        help="also time closed-set decoding over these comma-separated phrases (with CTC λ)")
    parser.add_argument("--bf16", action="store_true",
                        help="also time greedy and the last configuration under bf16 autocast ('... bf16' rows)")
    return parser.parse_args(argv)


def configurations(model: Any, args: argparse.Namespace, with_lm: bool) -> list[Configuration]:
    """The searches to compare, greedy first."""
    ratio = default_options(model).max_len_ratio
    greedy = DecodingOptions(beam_size=1, max_len_ratio=ratio)

    def beam(ctc: float = 0.0, lm: float = 0.0) -> DecodingOptions:
        return DecodingOptions(beam_size=args.beam, ctc_weight=ctc, lm_weight=lm,
                               length_bonus=args.length_bonus, max_len_ratio=ratio)

    b, lam, beta = args.beam, args.ctc_weight, args.lm_weight
    if not is_attention_model(model):
        configs = [Configuration("greedy (best path)", greedy), Configuration(f"beam {b} (prefix)", beam())]
        if with_lm:
            configs.append(Configuration(f"beam {b} + LM {beta:g}", beam(lm=beta), uses_lm=True))
        return configs
    configs = [Configuration("greedy", greedy), Configuration(f"beam {b}", beam())]
    if lam > 0:
        configs.append(Configuration(f"beam {b} + CTC {lam:g}", beam(ctc=lam)))
    if with_lm:
        label = f"beam {b} + CTC {lam:g} + LM {beta:g}" if lam > 0 else f"beam {b} + LM {beta:g}"
        configs.append(Configuration(label, beam(ctc=lam, lm=beta), uses_lm=True))
    if args.vocabulary:
        phrases = args.vocabulary.split(",")
        configs.append(Configuration(f"closed set ({len(phrases)}) + CTC {lam:g}",
                                     DecodingOptions(ctc_weight=lam, max_len_ratio=ratio), vocabulary=phrases))
    return configs


def time_once(model: Any, waves: list[np.ndarray], config: Configuration, lm: Any,
              batch_size: int) -> tuple[float, list[str]]:
    """Seconds of one ``transcribe`` over all ``waves`` and the transcripts."""
    start = time.perf_counter()
    results = transcribe(model, waves, config.options, lm=lm if config.uses_lm else None, batch_size=batch_size,
                         precision=config.precision, vocabulary=config.vocabulary)
    return time.perf_counter() - start, [r.text for r in results]


def run_batch_size(configs: list[Configuration], model: Any, lm: Any, waves: list[np.ndarray], refs: list[str],
                   args: argparse.Namespace, batch_size: int) -> tuple[list[Row], dict[str, list[str]]]:
    """One row per configuration at ``batch_size``, and each configuration's transcripts. The configurations take turns within each repeat, so a
    slow spell of the shared machine hits all of them rather than one: ratios to greedy are fairer."""
    audio = sum(len(w) for w in waves) / model.feature_config.sample_rate
    for config in configs:  # warm-up on one batch
        transcribe(model, waves[:batch_size], config.options, lm=lm if config.uses_lm else None,
                   batch_size=batch_size, precision=config.precision, vocabulary=config.vocabulary)
    timings: dict[str, list[float]] = {c.name: [] for c in configs}
    texts: dict[str, list[str]] = {}
    for _ in range(args.repeats):
        for config in configs:
            seconds, texts[config.name] = time_once(model, waves, config, lm, batch_size)
            timings[config.name].append(seconds)
    greedy = statistics.median(timings[configs[0].name])
    rows = []
    for config in configs:
        seconds = statistics.median(timings[config.name])
        rates = error_rates(refs, texts[config.name])
        rows.append(Row(config.name, batch_size, seconds, seconds / audio, 1000 * seconds / len(waves),
                        seconds / greedy, rates.wer, rates.cer, 1.0))
    return rows, texts


def check_batch_invariance(rows: list[Row], texts_by_batch: dict[int, dict[str, list[str]]]) -> None:
    """Fill ``same_as_first_batch`` and warn when batching changed transcripts."""
    first = next(iter(texts_by_batch))
    for row in rows:
        mine, ref = texts_by_batch[row.batch_size][row.configuration], texts_by_batch[first][row.configuration]
        row.same_as_first_batch = float(np.mean([a == b for a, b in zip(mine, ref)]))
        if row.same_as_first_batch < 1.0:
            print(f"warning: {row.configuration}: at batch {row.batch_size}, {1 - row.same_as_first_batch:.1%} "
                  f"of the transcripts differ from batch {first}", file=sys.stderr)


def print_table(rows: list[Row]) -> None:
    print("| configuration | batch | RTF | ms/utt | × greedy | WER | CER |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.configuration} | {r.batch_size} | {r.rtf:.4f} | {r.ms_per_utt:.1f} | {r.vs_greedy:.2f}× | "
              f"{r.wer:.4f} | {r.cer:.4f} |")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    model = from_pretrained(args.model).eval()
    lm = load_lm(args.lm, model).eval() if args.lm else None
    rate = model.feature_config.sample_rate
    waves, refs = load_data(args, rate)
    audio = sum(len(w) for w in waves) / rate
    params = sum(p.numel() for p in model.parameters())
    family = "attention" if is_attention_model(model) else "CTC"
    print(f"{args.model} ({type(model).__name__}, {family}, {params / 1e6:.2f} M parameters) on {args.data}: "
          f"{len(waves)} utterances, {audio:.1f} s of audio, LM {args.lm or 'none'}, threads {args.threads}, "
          f"torch {torch.__version__}")
    configs = configurations(model, args, lm is not None)
    configs += [dataclasses.replace(configs[-1], name=f"{configs[-1].name}, score beam {t:g}",
                                    options=dataclasses.replace(configs[-1].options, score_beam=t))
                for t in args.score_beam]
    if args.bf16:
        configs += [dataclasses.replace(c, name=f"{c.name} bf16", precision="bfloat16") for c in (configs[0], configs[-1])]
    rows: list[Row] = []
    texts_by_batch: dict[int, dict[str, list[str]]] = {}
    for batch_size in args.batch_sizes:
        batch_rows, texts_by_batch[batch_size] = run_batch_size(configs, model, lm, waves, refs, args, batch_size)
        rows += batch_rows
    check_batch_invariance(rows, texts_by_batch)
    rows.sort(key=lambda r: [c.name for c in configs].index(r.configuration))
    print_table(rows)
    header = {"model": args.model, "model_class": type(model).__name__, "family": family, "parameters": params,
              "data": args.data, "lm": args.lm, "utterances": len(waves), "audio_seconds": audio,
              "threads": args.threads, "torch": torch.__version__, "beam": args.beam,
              "ctc_weight": args.ctc_weight if family == "attention" else None, "lm_weight": args.lm_weight,
              "length_bonus": args.length_bonus, "repeats": args.repeats, "score_beams": args.score_beam,
              "vocabulary": args.vocabulary}
    print(json.dumps({**header, "rows": [asdict(r) for r in rows]}))


if __name__ == "__main__":
    main()
