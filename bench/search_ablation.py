"""What the batched search's row management buys: groups of at most ``max_rows`` and dropping finished utterances.

    python bench/search_ablation.py --model runs/las/final --lm runs/lm/final --max-utterances 64 --batch-sizes 8 32

Beam 10 + CTC + LM (weights as the LAS defaults) on the embedded test split, timed like ``bench/decoding_rtf.py``
(audio decoded before timing; the variants take turns, ``--repeats`` rounds, median), against greedy decoding in
the same rounds:

* ``default``: ``max_rows`` 128 and finished utterances dropped once they hold a quarter of the rows;
* ``max_rows None`` / ``max_rows 64``: the whole batch as one search / smaller groups;
* ``keep finished rows``: ``can_drop_rows`` off, so the search computes finished utterances' rows to the end,
  as it did before.

Every variant must give the same transcripts (a warning goes to stderr otherwise).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from typing import Any

import torch
from bench_data import add_data_arguments, load_data

from speechseq.decoding import DecodingOptions, build_beam_search
from speechseq.inference import default_options, load_lm, transcribe
import speechseq.inference as inference
from speechseq.metrics import error_rates
from speechseq.models import from_pretrained


def _search_keeping_finished_rows(*args: Any, **kwargs: Any) -> Any:
    search = build_beam_search(*args, **kwargs)
    search.can_drop_rows = False
    return search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--lm", required=True)
    add_data_arguments(parser, data_default="embedded:test")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = from_pretrained(args.model).eval()
    lm = load_lm(args.lm, model).eval()
    waves, refs = load_data(args, model.feature_config.sample_rate)
    ratio = default_options(model).max_len_ratio
    full = DecodingOptions(beam_size=10, ctc_weight=0.2, lm_weight=0.7, length_bonus=1.0, max_len_ratio=ratio)
    variants = {
        "greedy": (DecodingOptions(beam_size=1, max_len_ratio=ratio), None, build_beam_search),
        "default": (full, lm, build_beam_search),
        "max_rows None": (dataclasses.replace(full, max_rows=None), lm, build_beam_search),
        "max_rows 64": (dataclasses.replace(full, max_rows=64), lm, build_beam_search),
        "keep finished rows": (full, lm, _search_keeping_finished_rows),
    }
    print(f"{args.model}, {len(waves)} utterances of {args.data}, beam 10 + CTC 0.2 + LM 0.7, "
          f"threads {args.threads}, torch {torch.__version__}")
    print("| variant | batch | ms/utt | × greedy | WER |")
    print("|---|---|---|---|---|")
    for batch in args.batch_sizes:
        seconds: dict[str, list[float]] = {name: [] for name in variants}
        texts: dict[str, list[str]] = {}
        for round_ in range(args.repeats + 1):  # round 0 warms up
            for name, (options, with_lm, builder) in variants.items():
                inference.build_beam_search = builder  # what decode_batch builds its search with
                start = time.perf_counter()
                results = transcribe(model, waves, options, lm=with_lm, batch_size=batch)
                if round_:
                    seconds[name].append(time.perf_counter() - start)
                texts[name] = [r.text for r in results]
        inference.build_beam_search = build_beam_search
        greedy = statistics.median(seconds["greedy"])
        for name in variants:
            if name != "greedy" and texts[name] != texts["default"]:
                print(f"warning: {name} changed transcripts at batch {batch}", file=sys.stderr)
            median = statistics.median(seconds[name])
            print(f"| {name} | {batch} | {1000 * median / len(waves):.1f} | {median / greedy:.2f} | "
                  f"{error_rates(refs, texts[name]).wer:.2%} |")


if __name__ == "__main__":
    main()
