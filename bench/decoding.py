"""Time batched decoding on random-weight models of the reference size (docs/decoding.md, "Figures").

Workload (ENGINEERING.md §3, the SpeechBrain ``S2SRNNBeamSearcher`` comparison): 8 utterances of 100 encoder
frames (about 4 s), 512-dim encoder states, 32 tokens, an LSTM-512 decoder with location-aware attention,
exactly 50 output steps (eos is disabled so every configuration does the same work), and a 2×512 LSTM LM.
Configurations: greedy (beam 1), beam 10, beam 10 + CTC (λ = 0.3), beam 10 + CTC + LM (β = 0.5).

    python bench/decoding.py                    # 2 threads, 3 timed repeats after one warm-up
    python bench/decoding.py --threads 1 --repeats 5 --ctc-window 10

Prints ms per utterance (median of the repeats) and the ratio to greedy. CPU timings on shared machines
vary by about 1.5× between runs: compare configurations within one run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import torch

from speechseq.decoding import DecodingOptions, EncoderOutput, build_beam_search
from speechseq.models.lm import LMConfig, RNNLM
from speechseq.nn.attention import AttentionConfig
from speechseq.nn.decoders import AttentionLSTMDecoder, AttentionLSTMDecoderConfig

EOS = 2


@dataclass
class Workload:
    """Sizes of the benchmark."""

    batch: int = 8
    frames: int = 100
    steps: int = 50
    vocab: int = 32
    memory_dim: int = 512


def build_models(w: Workload, attention_dim: int = 512, seed: int = 0) -> tuple[AttentionLSTMDecoder, RNNLM]:
    """Random LAS speller (LSTM-512, location attention) and 2×512 LSTM LM, eos made impossible."""
    torch.manual_seed(seed)
    attention = AttentionConfig(
        kind="location", attention_dim=attention_dim, location_filters=10, location_kernel=101
    )
    decoder = AttentionLSTMDecoder(
        AttentionLSTMDecoderConfig(embedding_dim=128, hidden_size=512, num_layers=1, attention=attention),
        w.vocab,
        w.memory_dim,
    ).eval()
    lm = RNNLM(LMConfig(vocab_size=w.vocab, embedding_dim=512, hidden_size=512, num_layers=2)).eval()
    with torch.no_grad():  # every configuration runs exactly ``steps`` steps
        decoder.output.bias[EOS] = -1e4
        lm.output.bias[EOS] = -1e4
    return decoder, lm


def random_inputs(w: Workload, seed: int = 1) -> EncoderOutput:
    g = torch.Generator().manual_seed(seed)
    memory = torch.randn(w.batch, w.frames, w.memory_dim, generator=g)
    ctc_logits = torch.randn(w.batch, w.frames, w.vocab, generator=g) * 3
    ctc_logits[..., EOS] = -1e4
    return EncoderOutput(memory, torch.full((w.batch,), w.frames), ctc_logits.log_softmax(-1))


def time_search(search, inputs: EncoderOutput, repeats: int) -> tuple[float, int]:
    """Median seconds of one batched search (after a warm-up run) and the output length it produced."""
    results = search(inputs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        results = search(inputs)
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(results[0].tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--beam", type=int, default=10)
    parser.add_argument("--ctc-window", type=int, default=None, help="frames around the attention peak")
    parser.add_argument("--attention-dim", type=int, default=512, help="size of the attention's projections")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    w = Workload()
    decoder, lm = build_models(w, args.attention_dim)
    inputs = random_inputs(w)
    ratio = w.steps / w.frames
    base = dict(max_len_ratio=ratio, min_len_ratio=ratio, ctc_window=args.ctc_window)
    configs = {
        "greedy": (DecodingOptions(beam_size=1, **base), None),
        f"beam {args.beam}": (DecodingOptions(beam_size=args.beam, **base), None),
        f"beam {args.beam} + CTC 0.3": (DecodingOptions(beam_size=args.beam, ctc_weight=0.3, **base), None),
        f"beam {args.beam} + CTC 0.3 + LM 0.5": (
            DecodingOptions(beam_size=args.beam, ctc_weight=0.3, lm_weight=0.5, **base), lm),
    }
    print(f"batch {w.batch} × {w.frames} frames, {w.steps} steps, V={w.vocab}, attention dim "
          f"{args.attention_dim}, CTC window {args.ctc_window}, threads {args.threads}, torch {torch.__version__}")
    print(f"{'configuration':<32} {'ms/utt':>9} {'× greedy':>9} {'steps':>6}")
    greedy_ms = None
    for name, (options, fused_lm) in configs.items():
        seconds, length = time_search(build_beam_search(options, decoder=decoder, lm=fused_lm), inputs, args.repeats)
        ms = 1000 * seconds / w.batch
        greedy_ms = greedy_ms or ms
        print(f"{name:<32} {ms:9.1f} {ms / greedy_ms:9.2f} {length:6d}")


if __name__ == "__main__":
    main()
