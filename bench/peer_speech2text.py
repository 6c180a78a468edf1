"""Time speechseq's Transformer encoder-decoder with batched beam search against Hugging Face Speech2Text.

Both models have random weights and matched sizes (``configs/las.yaml``, ``model.backbone=transformer``):
d_model 192, 4 heads, feed-forward 768, 6 encoder and 3 decoder layers, 32 tokens, 4× convolutional
subsampling. The peer is ``transformers.Speech2TextForConditionalGeneration`` built from a
``Speech2TextConfig`` (no download). Each side is timed from 80-dim features to tokens, encoder included:

* speechseq: ``model.encoder(features, lengths)`` then ``build_beam_search(options, decoder=model.decoder)``
  on ``EncoderOutput(memory, lengths, None)``. The log-mel front end and the CTC head are skipped (the peer
  takes precomputed features and has no CTC head; the search uses no CTC at ``ctc_weight`` 0);
* peer: ``model.generate(input_features, attention_mask, num_beams=B, ...)`` under ``torch.no_grad()``.

Workload: 8 utterances of 400 feature frames (4 s at 10 ms, all the same length, so 100 encoder frames each)
and exactly ``--steps`` output tokens for every configuration: speechseq's eos logit bias is -1e4 and its
length limits are ``steps / 100`` of the encoder frames; the peer gets ``min_new_tokens = max_new_tokens =
steps`` (its logits processor masks eos). Configurations: greedy (beam 1) and beam ``--beam``, at batch sizes
1 and 8, plus the encoders alone (to see how much of each figure is the encoder).

    python bench/peer_speech2text.py                          # 2 threads, 3 timed repeats after one warm-up
    python bench/peer_speech2text.py --threads 1 --repeats 5
    python bench/peer_speech2text.py --steps 5 --repeats 1 --threads 1  # smoke test, a few seconds

Prints ms per utterance (median of the repeats) for each side and the ratio speechseq / peer (< 1: speechseq
is faster). CPU timings on shared machines vary by about 1.5× between runs: compare within one run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn
from transformers import Speech2TextConfig, Speech2TextForConditionalGeneration

from speechseq.decoding import DecodingOptions, EncoderOutput, build_beam_search
from speechseq.models.las import SOS_EOS_ID, LASConfig, LASModel
from speechseq.nn.transformer_decoder import TransformerDecoderConfig
from speechseq.nn.transformer_encoder import TransformerEncoderConfig

SUBSAMPLING = 4  # both front ends: two stride-2 convolutions


@dataclass
class Workload:
    """Sizes shared by both models and the inputs."""

    batch: int = 8
    frames: int = 400
    features: int = 80
    steps: int = 50
    vocab: int = 32
    d_model: int = 192
    heads: int = 4
    ffn: int = 768
    encoder_layers: int = 6
    decoder_layers: int = 3
    subsampling_channels: int = 128  # speechseq's Conv2d front end
    peer_conv_channels: int = 512  # Speech2Text's Conv1d+GLU front end (chosen for a similar parameter count)

    @property
    def encoder_frames(self) -> int:
        return -(-self.frames // SUBSAMPLING)


def build_speechseq(w: Workload, seed: int = 0) -> LASModel:
    """Random speechseq LAS model on the Transformer backbone, eos made impossible."""
    torch.manual_seed(seed)
    config = LASConfig(
        vocab_size=w.vocab,
        backbone="transformer",
        transformer_encoder=TransformerEncoderConfig(
            input_dim=w.features, d_model=w.d_model, num_heads=w.heads, ffn_dim=w.ffn,
            num_layers=w.encoder_layers, subsampling_channels=w.subsampling_channels,
        ),
        transformer_decoder=TransformerDecoderConfig(
            d_model=w.d_model, num_heads=w.heads, ffn_dim=w.ffn, num_layers=w.decoder_layers
        ),
    )
    model = LASModel(config).eval()
    with torch.no_grad():
        model.decoder.output.bias[SOS_EOS_ID] = -1e4
    return model


def build_peer(w: Workload, seed: int = 0) -> Speech2TextForConditionalGeneration:
    """Random Speech2Text model of the same sizes, with speechseq's special ids (eos = decoder start = 2)."""
    torch.manual_seed(seed)
    config = Speech2TextConfig(
        vocab_size=w.vocab, d_model=w.d_model,
        encoder_layers=w.encoder_layers, encoder_attention_heads=w.heads, encoder_ffn_dim=w.ffn,
        decoder_layers=w.decoder_layers, decoder_attention_heads=w.heads, decoder_ffn_dim=w.ffn,
        conv_channels=w.peer_conv_channels, input_feat_per_channel=w.features,
        max_source_positions=max(6000, w.frames), max_target_positions=max(1024, w.steps + 8),
        eos_token_id=SOS_EOS_ID, decoder_start_token_id=SOS_EOS_ID, pad_token_id=1, bos_token_id=0,
    )
    return Speech2TextForConditionalGeneration(config).eval()


def count_parameters(modules: list[nn.Module]) -> int:
    """Distinct parameters of ``modules`` (tied weights counted once)."""
    seen = {id(p): p.numel() for m in modules for p in m.parameters()}
    return sum(seen.values())


def random_features(w: Workload, seed: int = 1) -> torch.Tensor:
    """(batch, frames, features) standard-normal features (what per-utterance normalisation gives)."""
    return torch.randn(w.batch, w.frames, w.features, generator=torch.Generator().manual_seed(seed))


def speechseq_runner(model: LASModel, features: torch.Tensor, options: DecodingOptions) -> Callable[[], int]:
    """A call that encodes ``features`` and searches; it returns the output length of the first utterance."""
    search = build_beam_search(options, decoder=model.decoder, lm=None)
    lengths = torch.full((features.size(0),), features.size(1))

    def run() -> int:
        with torch.no_grad():
            memory, memory_lengths = model.encoder(features, lengths)
            results = search(EncoderOutput(memory, memory_lengths, None))
        return len(results[0].tokens)

    return run


def peer_runner(model: Speech2TextForConditionalGeneration, features: torch.Tensor, beam: int,
                steps: int) -> Callable[[], int]:
    """A call of the peer's ``generate`` for exactly ``steps`` new tokens; it returns that count."""
    mask = torch.ones(features.shape[:2], dtype=torch.long)

    def run() -> int:
        with torch.no_grad():
            out = model.generate(
                input_features=features, attention_mask=mask, num_beams=beam, max_new_tokens=steps,
                min_new_tokens=steps, early_stopping=False, do_sample=False,
            )
        return out.size(1) - 1  # the decoder start token is the first column

    return run


def encoder_runners(ours: LASModel, peer: Speech2TextForConditionalGeneration,
                    features: torch.Tensor) -> tuple[Callable[[], int], Callable[[], int]]:
    """Calls of each encoder alone; they return the number of encoder frames."""
    lengths = torch.full((features.size(0),), features.size(1))
    mask = torch.ones(features.shape[:2], dtype=torch.long)
    peer_encoder = peer.get_encoder()

    def run_ours() -> int:
        with torch.no_grad():
            return ours.encoder(features, lengths)[0].size(1)

    def run_peer() -> int:
        with torch.no_grad():
            return peer_encoder(input_features=features, attention_mask=mask).last_hidden_state.size(1)

    return run_ours, run_peer


def time_call(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median seconds of ``fn()`` over ``repeats`` calls after one warm-up call, and its last result."""
    result = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--beam", type=int, default=10)
    parser.add_argument("--steps", type=int, default=50, help="output tokens of every configuration")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8], help="batch sizes to time")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    w = Workload(batch=max(args.batches), steps=args.steps)
    ours, peer = build_speechseq(w), build_peer(w)
    features = random_features(w)
    ratio = w.steps / w.encoder_frames
    n_ours = count_parameters([ours.encoder, ours.decoder])
    n_peer = count_parameters([peer])
    print(f"{w.frames} frames × {w.features} features ({w.encoder_frames} encoder frames), {w.steps} steps, "
          f"V={w.vocab}, threads {args.threads}, torch {torch.__version__}")
    print(f"parameters: speechseq encoder+decoder {n_ours / 1e6:.3f} M, Speech2Text {n_peer / 1e6:.3f} M "
          f"(ratio {n_ours / n_peer:.3f}); peer attention: {peer.config._attn_implementation}")
    print()
    print("| configuration | batch | speechseq ms/utt | Speech2Text ms/utt | speechseq / peer | steps |")
    print("|---|---:|---:|---:|---:|---|")
    for batch in args.batches:
        x = features[:batch]
        rows: list[tuple[str, Callable[[], int], Callable[[], int]]] = [
            ("encoder only", *encoder_runners(ours, peer, x)),
        ]
        for beam in dict.fromkeys([1, args.beam]):
            options = DecodingOptions(beam_size=beam, max_len_ratio=ratio, min_len_ratio=ratio)
            name = "greedy" if beam == 1 else f"beam {beam}"
            rows.append((name, speechseq_runner(ours, x, options), peer_runner(peer, x, beam, w.steps)))
        for name, run_ours, run_peer in rows:
            t_ours, len_ours = time_call(run_ours, args.repeats)
            t_peer, len_peer = time_call(run_peer, args.repeats)
            ms_ours, ms_peer = 1000 * t_ours / batch, 1000 * t_peer / batch
            print(f"| {name} | {batch} | {ms_ours:.1f} | {ms_peer:.1f} | {ms_ours / ms_peer:.2f} | "
                  f"{len_ours}/{len_peer} |", flush=True)


if __name__ == "__main__":
    main()
