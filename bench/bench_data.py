"""Evaluation data for the benchmarks: the same flags and the same loading in every script.

Audio is decoded and resampled before any timing, so timings cover front end, model and search only.
"""

from __future__ import annotations

import argparse

import numpy as np

from speechseq.audio import load_audio
from speechseq.commands_asr import load_eval_dataset
from speechseq.text import normalize


def add_data_arguments(parser: argparse.ArgumentParser, data_default: str | None = None) -> None:
    """``--data --split --data-root --lang --embedded-size --max-utterances`` (the specs of ``speechseq evaluate``)."""
    parser.add_argument("--data", required=data_default is None, default=data_default,
                        help="embedded:SPLIT | fsdd:SPLIT | manifest | Hub dataset/folder")
    parser.add_argument("--split", default="test", help="split of a Hub dataset or folder [test]")
    parser.add_argument("--data-root", default=None, help="folder of the fsdd/ljspeech corpus")
    parser.add_argument("--lang", default="en")
    parser.add_argument("--embedded-size", default="default", help="size preset of the embedded corpus [default]")
    parser.add_argument("--max-utterances", type=int, default=200, help="utterances, spread over the split [200]")


def load_data(args: argparse.Namespace, rate: int) -> tuple[list[np.ndarray], list[str]]:
    """Waveforms at ``rate`` and references normalised as ``speechseq.inference.evaluate`` does."""
    dataset = load_eval_dataset(args.data, args.split, args.data_root, args.lang, args.embedded_size,
                                max_utterances=args.max_utterances)
    rows = list(dataset)
    waves = [load_audio(row["audio"], rate) for row in rows]
    refs = [normalize(str(row["text"]), str(row.get("lang") or args.lang)) for row in rows]
    return waves, refs
