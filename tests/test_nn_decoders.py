"""Decoders of speechseq.nn: forward == iterated step, state reordering, padding, scheduled sampling."""

from __future__ import annotations

import pytest
import torch

from speechseq.nn.attention import AttentionConfig
from speechseq.nn.decoders import AttentionLSTMDecoder, AttentionLSTMDecoderConfig
from speechseq.nn.masking import lengths_to_mask
from speechseq.nn.transformer_decoder import TransformerDecoder, TransformerDecoderConfig

VOCAB, MEMORY = 11, 12
MEMORY_LENGTHS = torch.tensor([9, 6, 3])


def make_decoder(kind: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "transformer":
        config = TransformerDecoderConfig(d_model=16, num_heads=2, ffn_dim=32, num_layers=2)
        return TransformerDecoder(config, VOCAB, MEMORY).eval()
    attention = AttentionConfig(kind=kind, attention_dim=8, location_filters=2, location_kernel=3, num_heads=2)
    config = AttentionLSTMDecoderConfig(embedding_dim=8, hidden_size=16, num_layers=2, attention=attention)
    return AttentionLSTMDecoder(config, VOCAB, MEMORY).eval()


DECODERS = ["location", "location_sensitive", "multihead", "mocha", "transformer"]


def inputs(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    memory = torch.randn(3, 9, MEMORY, generator=gen)
    memory = memory * lengths_to_mask(MEMORY_LENGTHS, 9).unsqueeze(-1)
    tokens = torch.randint(3, VOCAB, (3, 6), generator=gen)
    tokens[:, 0] = 2  # <sos>
    return memory, tokens


def iterate_steps(decoder, tokens, memory, lengths):
    mask = lengths_to_mask(lengths, memory.size(1))
    state, logits, attention = decoder.init_state(memory, lengths), [], []
    for t in range(tokens.size(1)):
        out = decoder.step(tokens[:, t], state, memory, mask)
        state = out.state
        logits.append(out.logits)
        attention.append(out.attention)
    return torch.stack(logits, 1), torch.stack(attention, 1), state


@pytest.mark.parametrize("kind", DECODERS)
def test_teacher_forced_forward_equals_iterated_step(kind: str) -> None:
    decoder = make_decoder(kind)
    memory, tokens = inputs()
    with torch.no_grad():
        out = decoder(tokens, memory, MEMORY_LENGTHS)
        logits, attention, _ = iterate_steps(decoder, tokens, memory, MEMORY_LENGTHS)
    torch.testing.assert_close(out.logits, logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.attention, attention, atol=1e-5, rtol=0)
    assert out.logits.shape == (3, 6, VOCAB) and out.attention.shape == (3, 6, 9)


@pytest.mark.parametrize("kind", DECODERS)
def test_memory_padding_invariance(kind: str) -> None:
    """An utterance decodes identically alone and in a batch with padded memory."""
    decoder = make_decoder(kind)
    memory, tokens = inputs()
    with torch.no_grad():
        batched = decoder(tokens, memory, MEMORY_LENGTHS)
        for b, length in enumerate(MEMORY_LENGTHS.tolist()):
            alone = decoder(tokens[b : b + 1], memory[b : b + 1, :length], MEMORY_LENGTHS[b : b + 1])
            torch.testing.assert_close(batched.logits[b], alone.logits[0], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(batched.attention[b, :, :length], alone.attention[0], atol=1e-6, rtol=1e-5)
            assert torch.all(batched.attention[b, :, length:] == 0)


@pytest.mark.parametrize("kind", ["location_sensitive", "mocha", "transformer"])
def test_index_select_reorders_and_expands_state(kind: str) -> None:
    """Permute/expand the batch mid-decoding: continuing gives the permuted/expanded reference outputs."""
    decoder = make_decoder(kind)
    memory, tokens = inputs()
    mask = lengths_to_mask(MEMORY_LENGTHS, 9)
    with torch.no_grad():
        reference, _, _ = iterate_steps(decoder, tokens, memory, MEMORY_LENGTHS)
        _, _, state = iterate_steps(decoder, tokens[:, :3], memory, MEMORY_LENGTHS)
        for index in (torch.tensor([2, 0, 1]), torch.tensor([1, 1, 1, 0, 2, 2])):  # permutation, beam expansion
            moved = state.index_select(index)
            for t in range(3, 6):
                out = decoder.step(tokens[index, t], moved, memory[index], mask[index])
                moved = out.state
                torch.testing.assert_close(out.logits, reference[index, t], atol=1e-5, rtol=0)


def test_transformer_decoder_is_causal() -> None:
    decoder = make_decoder("transformer")
    memory, tokens = inputs()
    changed = tokens.clone()
    changed[:, 4] = (changed[:, 4] + 1) % VOCAB
    with torch.no_grad():
        a = decoder(tokens, memory, MEMORY_LENGTHS).logits
        b = decoder(changed, memory, MEMORY_LENGTHS).logits
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])


@pytest.mark.parametrize("kind", ["location", "transformer"])
def test_scheduled_sampling(kind: str) -> None:
    """p=0 is teacher forcing; p=1 with argmax feedback is greedy decoding; a seeded generator repeats."""
    decoder = make_decoder(kind)
    memory, tokens = inputs()
    mask = lengths_to_mask(MEMORY_LENGTHS, 9)
    with torch.no_grad():
        teacher = decoder(tokens, memory, MEMORY_LENGTHS)
        none = decoder(tokens, memory, MEMORY_LENGTHS, sampling_prob=0.0, generator=torch.Generator())
        torch.testing.assert_close(none.logits, teacher.logits)
        always = decoder(tokens, memory, MEMORY_LENGTHS, sampling_prob=1.0, generator=torch.Generator())
        state, prev, greedy = decoder.init_state(memory, MEMORY_LENGTHS), tokens[:, 0], []
        for _ in range(tokens.size(1)):
            out = decoder.step(prev, state, memory, mask)
            state, prev = out.state, out.logits.argmax(-1)
            greedy.append(out.logits)
        torch.testing.assert_close(always.logits, torch.stack(greedy, 1), atol=1e-5, rtol=0)
        runs = [
            decoder(tokens, memory, MEMORY_LENGTHS, 0.5, torch.Generator().manual_seed(3), sample_tokens=True).logits
            for _ in range(2)
        ]
        torch.testing.assert_close(runs[0], runs[1])


def test_decoder_state_holds_nothing_on_self() -> None:
    """Two interleaved decodings with the same module do not interfere (state is explicit)."""
    decoder = make_decoder("location_sensitive")
    memory, tokens = inputs()
    with torch.no_grad():
        first, _, _ = iterate_steps(decoder, tokens, memory, MEMORY_LENGTHS)
        mask = lengths_to_mask(MEMORY_LENGTHS, 9)
        s1, s2 = decoder.init_state(memory, MEMORY_LENGTHS), decoder.init_state(memory.flip(0), MEMORY_LENGTHS.flip(0))
        for t in range(tokens.size(1)):
            out = decoder.step(tokens[:, t], s1, memory, mask)
            s1 = out.state
            s2 = decoder.step(tokens.flip(0)[:, t], s2, memory.flip(0), mask.flip(0)).state
            torch.testing.assert_close(out.logits, first[:, t])
