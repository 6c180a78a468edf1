"""The fused location-aware energy against the term-by-term form, per number of rows.

    python bench/location_energy.py

``LocationAwareAttention.energies`` (one ``baddbmm`` and an in-place ``tanh``) against
``AdditiveAttention.energies`` on the same module, which adds the keys, the projected query and
``location_term`` (convolution, then projection) one by one. Sizes of the default LAS speller: query 384,
memory 512, attention dim 128, 16 filters of kernel 15, 60 frames. Rows are hypotheses: 32 (greedy over
32 utterances), 80 and 320 (beam 10 over 8 and 32). Median of 5 × 50 calls after a warm-up, no autograd.
"""

from __future__ import annotations

import statistics
import time

import torch

from speechseq.nn.attention import AdditiveAttention, LocationAwareAttention


def median_ms(fn, calls: int = 50, rounds: int = 5) -> float:
    fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls)
    return 1000 * statistics.median(times)


@torch.no_grad()
def main() -> None:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    attention = LocationAwareAttention(384, 512, 128, location_filters=16, location_kernel=15).eval()
    print(f"threads 2, torch {torch.__version__}, 60 frames, attention dim 128, 16 filters × 15")
    print("| rows | term by term ms | fused ms | speed-up | max abs difference |")
    print("|---|---|---|---|---|")
    for rows in (32, 80, 320):
        memory = torch.randn(rows, 60, 512)
        state = attention.init_state(memory, torch.ones(rows, 60, dtype=torch.bool))
        state.weights = torch.softmax(torch.randn(rows, 60), dim=-1)
        query = torch.randn(rows, 384)
        fused = median_ms(lambda: attention.energies(query, state))
        reference = median_ms(lambda: AdditiveAttention.energies(attention, query, state))
        diff = (attention.energies(query, state) - AdditiveAttention.energies(attention, query, state)).abs().max()
        print(f"| {rows} | {reference:.2f} | {fused:.2f} | {reference / fused:.2f}× | {float(diff):.1e} |")


if __name__ == "__main__":
    main()
