"""A training pass (forward + backward) of the listener's BiLSTM layers: packed sequences vs unpacked passes.

    python bench/bilstm_backward.py [--threads 2] [--rounds 5]

``speechseq.nn.encoders.run_bilstm`` used to pack every batch (``pack_padded_sequence``) so that padding never
enters the recurrence. On CPU that sends ``nn.LSTM`` to PyTorch's step-by-step implementation, whose backward
adds a full-size gradient per time step. ``padded_bilstm`` (the CPU path now) runs each direction unpacked on
oneDNN's fused kernel, the backward one reversed within each length. Shapes are the default LAS listener's
two pyramid layers on a batch of 40 utterances (about 80 s of audio): 212 frames of 2 × 80 mels, then 106 of
2 × 512 states, 256 units per direction; lengths spread from a third of the longest to all of it (the
length-bucketed batches of training are tighter). Prints a Markdown table of median milliseconds over
``--rounds`` rounds (configurations alternate within each round) and the largest output difference.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from speechseq.nn.encoders import padded_bilstm

LAYERS = [("pyramid layer 1", 212, 160), ("pyramid layer 2", 106, 1024)]


def packed_bilstm(lstm: torch.nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The previous CPU path: pack, run, unpack."""
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    return pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=x.size(1))[0]


def train_pass_ms(fn, lstm: torch.nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> tuple[float, float]:
    """Milliseconds of the forward and of the backward of ``fn``."""
    inputs = x.clone().requires_grad_(True)
    lstm.zero_grad()
    start = time.perf_counter()
    out = fn(lstm, inputs, lengths)
    middle = time.perf_counter()
    out.square().sum().backward()
    return 1000 * (middle - start), 1000 * (time.perf_counter() - middle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads {args.threads}, torch {torch.__version__}, batch 40, 256 units per direction")
    print("| layer | packed fwd / bwd ms | unpacked fwd / bwd ms | fwd + bwd speed-up | max abs difference |")
    print("|---|---|---|---|---|")
    for name, frames, dim in LAYERS:
        torch.manual_seed(0)
        lstm = torch.nn.LSTM(dim, 256, batch_first=True, bidirectional=True).train()
        x = torch.randn(40, frames, dim)
        lengths = torch.linspace(frames // 3, frames, 40).long()
        with torch.no_grad():
            diff = (packed_bilstm(lstm, x, lengths) - padded_bilstm(lstm, x, lengths)).abs().max().item()
        timings: dict[str, list[tuple[float, float]]] = {"packed": [], "unpacked": []}
        for fn in (packed_bilstm, padded_bilstm):  # warm-up
            train_pass_ms(fn, lstm, x, lengths)
        for _ in range(args.rounds):
            timings["packed"].append(train_pass_ms(packed_bilstm, lstm, x, lengths))
            timings["unpacked"].append(train_pass_ms(padded_bilstm, lstm, x, lengths))
        med = {k: (statistics.median(f for f, _ in v), statistics.median(b for _, b in v)) for k, v in timings.items()}
        ratio = sum(med["packed"]) / sum(med["unpacked"])
        print(f"| {name} ({frames} frames, input {dim}) | {med['packed'][0]:.0f} / {med['packed'][1]:.0f} | "
              f"{med['unpacked'][0]:.0f} / {med['unpacked'][1]:.0f} | {ratio:.2f}× | {diff:.1e} |")


if __name__ == "__main__":
    main()
