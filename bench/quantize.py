"""Float32 vs dynamic int8 (speechseq.quantize) on a trained ASR model: real-time factor, WER, size.

    python bench/quantize.py --model runs/las/final --data fsdd:test --data-root ../shared/data/fsdd/recordings
    python bench/quantize.py --model runs/ctc/final --data embedded:test --beam 8 --threads 1 --repeats 3

The data spec is the one of ``speechseq evaluate`` (``embedded:SPLIT``, ``fsdd:SPLIT``, a manifest, a Hub
dataset or folder). Audio is decoded and resampled before timing, so the RTF (compute seconds per audio
second, lower is faster) covers the model and the search only: front end, encoder, decoding. Each variant
is warmed up on one batch, then timed ``--repeats`` times (the median is reported). Prints a Markdown
table and one JSON line. CPU timings on shared machines vary by about 1.5× between runs: compare the two
variants within one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from bench_data import add_data_arguments, load_data

from speechseq.decoding import DecodingOptions
from speechseq.inference import default_options, transcribe
from speechseq.metrics import error_rates
from speechseq.models import from_pretrained
from speechseq.quantize import quantize_dynamic, state_dict_bytes


@dataclass
class VariantResult:
    """Figures of one variant (float32 or int8)."""

    variant: str
    size_mb: float
    seconds: float
    rtf: float
    wer: float
    cer: float
    same_as_float: float  # fraction of transcripts identical to the float model's


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="saved ASR model folder or Hub repo")
    add_data_arguments(parser)
    parser.add_argument("--beam", type=int, default=1, help="beam size (1: greedy) [1]")
    parser.add_argument("--ctc-weight", type=float, default=0.0, help="λ of joint decoding (LAS) [0]")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads [2]")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per variant (median) [1]")
    return parser.parse_args(argv)


def run_variant(name: str, model, waves, refs, options, args, float_texts=None) -> tuple[VariantResult, list[str]]:
    """Warm up, time ``transcribe`` over all ``waves``, score the transcripts."""
    transcribe(model, waves[: args.batch_size], options, batch_size=args.batch_size)  # warm-up
    timings, texts = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        texts = [r.text for r in transcribe(model, waves, options, batch_size=args.batch_size)]
        timings.append(time.perf_counter() - start)
    seconds = statistics.median(timings)
    audio = sum(len(w) for w in waves) / model.feature_config.sample_rate
    rates = error_rates(refs, texts)
    same = 1.0 if float_texts is None else float(np.mean([a == b for a, b in zip(texts, float_texts)]))
    size = state_dict_bytes(model) / 2**20
    return VariantResult(name, size, seconds, seconds / audio, rates.wer, rates.cer, same), texts


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    model = from_pretrained(args.model).eval()
    rate = model.feature_config.sample_rate
    waves, refs = load_data(args, rate)
    ratio = default_options(model).max_len_ratio
    options = DecodingOptions(beam_size=args.beam, ctc_weight=args.ctc_weight, max_len_ratio=ratio)
    float_result, float_texts = run_variant("float32", model, waves, refs, options, args)
    int8_result, _ = run_variant("int8", quantize_dynamic(model), waves, refs, options, args, float_texts)
    audio = sum(len(w) for w in waves) / rate
    print(f"{args.model} on {args.data}: {len(waves)} utterances, {audio:.1f} s of audio, beam {args.beam}, "
          f"λ {args.ctc_weight}, {args.threads} threads")
    print("| variant | size (MB) | RTF | speed-up | WER | CER | same text as float |")
    print("|---|---|---|---|---|---|---|")
    for r in (float_result, int8_result):
        print(f"| {r.variant} | {r.size_mb:.2f} | {r.rtf:.4f} | {float_result.seconds / r.seconds:.2f}× | "
              f"{r.wer:.4f} | {r.cer:.4f} | {r.same_as_float:.1%} |")
    print(json.dumps({"float32": asdict(float_result), "int8": asdict(int8_result)}))


if __name__ == "__main__":
    main()
