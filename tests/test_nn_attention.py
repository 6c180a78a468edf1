"""Attention kinds of speechseq.nn: normalisation, padding invariance, state handling, MoChA."""

from __future__ import annotations

import pytest
import torch

from speechseq.errors import ConfigError
from speechseq.nn.attention import ATTENTION_KINDS, AttentionConfig, build_attention
from speechseq.nn.masking import lengths_to_mask
from speechseq.nn.monotonic import MonotonicChunkwiseAttention, chunkwise_weights, expected_alignment

QUERY, MEMORY = 6, 5
LENGTHS = torch.tensor([11, 7, 3])


def make_attention(kind: str, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    fields = dict(kind=kind, attention_dim=8, location_filters=3, location_kernel=5, num_heads=2, chunk_size=3)
    fields.update(overrides)
    return build_attention(AttentionConfig(**fields), QUERY, MEMORY).eval()


def run_steps(att, queries, memory, mask):
    """Run the attention over queries (S,B,Dq); list of AttentionOutput."""
    state, outputs = att.init_state(memory, mask), []
    for query in queries:
        out = att(query, memory, mask, state)
        state = out.state
        outputs.append(out)
    return outputs


def batch_inputs(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    memory = torch.randn(3, 11, MEMORY, generator=gen)
    mask = lengths_to_mask(LENGTHS, 11)
    memory = memory.masked_fill(~mask.unsqueeze(-1), 0.0)
    queries = torch.randn(5, 3, QUERY, generator=gen)
    return memory, mask, queries


@pytest.mark.parametrize("kind", ATTENTION_KINDS)
def test_padding_invariance_and_normalisation(kind: str) -> None:
    """Same weights and context alone and in a zero-padded batch; zero on padding; sums to 1 (MoChA: <= 1)."""
    att = make_attention(kind, hard_inference=False)
    memory, mask, queries = batch_inputs()
    batched = run_steps(att, queries, memory, mask)
    for b, length in enumerate(LENGTHS.tolist()):
        alone = run_steps(att, queries[:, b : b + 1], memory[b : b + 1, :length], mask[b : b + 1, :length])
        for step_b, step_1 in zip(batched, alone):
            torch.testing.assert_close(step_b.weights[b, :length], step_1.weights[0], atol=1e-6, rtol=1e-5)
            torch.testing.assert_close(step_b.context[b], step_1.context[0], atol=1e-6, rtol=1e-5)
    for out in batched:
        assert torch.all(out.weights[~mask] == 0)
        sums = out.weights.sum(-1)
        if kind == "mocha":
            assert torch.all(sums <= 1 + 1e-6) and torch.all(sums > 0)
        else:
            torch.testing.assert_close(sums, torch.ones(3))


def test_location_sensitive_state_tracks_previous_and_cumulative_weights() -> None:
    att = make_attention("location_sensitive")
    memory, mask, queries = batch_inputs()
    outputs = run_steps(att, queries, memory, mask)
    torch.testing.assert_close(outputs[-1].state.cumulative, sum(o.weights for o in outputs))
    assert torch.equal(outputs[-1].state.weights, outputs[-1].weights)


def test_location_features_change_the_scores() -> None:
    """Same query, different previous weights -> different weights (location-aware), unlike pure content."""
    memory, mask, queries = batch_inputs()
    for kind, should_differ in (("location", True), ("additive", False)):
        att = make_attention(kind)
        state = att.init_state(memory, mask)
        shifted = att(queries[0], memory, mask, state).state
        first = att(queries[1], memory, mask, state).weights
        second = att(queries[1], memory, mask, shifted).weights
        assert (not torch.allclose(first, second)) == should_differ


@pytest.mark.parametrize("kind", ["location", "location_sensitive"])
@pytest.mark.parametrize("filters", [3, 12])  # 3 < channels x kernel: features x U; 12 >= it: U and F folded
def test_fused_location_energies_equal_conv_then_projection(kind: str, filters: int) -> None:
    """The one-matmul energies equal v·tanh(keys + W_q q + U(F*α)) computed term by term, and so do the
    gradients of every parameter (training uses the fused form too)."""
    from speechseq.nn.attention import AdditiveAttention

    att = make_attention(kind, location_filters=filters).train()
    memory, mask, queries = batch_inputs(3)
    state = att.init_state(memory, mask)
    for query in queries[:2]:  # non-trivial previous and cumulative weights
        state = att(query, memory, mask, state).state
    fused = att.energies(queries[2], state)
    reference = AdditiveAttention.energies(att, queries[2], state)
    torch.testing.assert_close(fused, reference, atol=1e-6, rtol=1e-5)
    grads = []
    for energies in (fused, reference):
        att.zero_grad()
        (energies * torch.linspace(-1, 1, energies.size(-1))).sum().backward(retain_graph=True)
        grads.append({n: p.grad.clone() for n, p in att.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and "location_conv.weight" in grads[0]
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-5, rtol=1e-4)


def test_multihead_reports_the_mean_of_head_weights() -> None:
    att = make_attention("multihead")
    memory, mask, queries = batch_inputs()
    out = run_steps(att, queries[:2], memory, mask)[-1]
    assert out.state.weights.shape == (3, 2, 11)
    torch.testing.assert_close(out.weights, out.state.weights.mean(1))
    assert not torch.allclose(out.state.weights[:, 0], out.state.weights[:, 1])


def test_state_index_select_reorders_consistently() -> None:
    """Permuting the batch (state + inputs) mid-sequence gives the permuted outputs."""
    att = make_attention("location_sensitive")
    memory, mask, queries = batch_inputs()
    perm = torch.tensor([2, 0, 1])
    reference = run_steps(att, queries, memory, mask)
    state = reference[1].state.index_select(perm)
    for s in range(2, 5):
        out = att(queries[s][perm], memory[perm], mask[perm], state)
        state = out.state
        torch.testing.assert_close(out.context, reference[s].context[perm])
        torch.testing.assert_close(out.weights, reference[s].weights[perm])


def test_expected_alignment_matches_sequential_definition() -> None:
    """alpha_j = p_j * sum_{k<=j} alpha_prev_k * prod_{k<=l<j} (1 - p_l) (Raffel et al. 2017, eq. 9)."""
    gen = torch.Generator().manual_seed(3)
    p = torch.rand(2, 9, generator=gen)
    previous = torch.softmax(torch.randn(2, 9, generator=gen), -1) * 0.9
    expected = torch.zeros(2, 9)
    for b in range(2):
        for j in range(9):
            total = sum(previous[b, k] * torch.prod(1 - p[b, k:j]) for k in range(j + 1))
            expected[b, j] = p[b, j] * total
    torch.testing.assert_close(expected_alignment(p, previous), expected, atol=1e-6, rtol=1e-5)
    assert torch.all(expected.sum(-1) <= previous.sum(-1))


def test_chunkwise_weights_match_definition() -> None:
    gen = torch.Generator().manual_seed(4)
    alpha, energy, w = torch.rand(1, 8, generator=gen) / 8, torch.randn(1, 8, generator=gen), 3
    mask = torch.ones(1, 8, dtype=torch.bool)
    beta = torch.zeros(1, 8)
    for k in range(8):  # spread alpha_k over the chunk [k-w+1, k] by softmax of the energies
        lo = max(0, k - w + 1)
        beta[0, lo : k + 1] += alpha[0, k] * torch.softmax(energy[0, lo : k + 1], -1)
    torch.testing.assert_close(chunkwise_weights(alpha, energy, mask, w), beta, atol=1e-6, rtol=1e-5)


def test_mocha_training_alignment_sums_at_most_one_and_noise_is_seeded() -> None:
    att = make_attention("mocha", init_bias=0.0, noise_std=1.0).train()
    memory, mask, queries = batch_inputs()
    runs = []
    for _ in range(2):
        state = att.init_state(memory, mask, generator=torch.Generator().manual_seed(7))
        weights = []
        for query in queries:
            out = att(query, memory, mask, state)
            state = out.state
            assert torch.all(state.alignment.sum(-1) <= 1 + 1e-6)
            torch.testing.assert_close(out.weights.sum(-1), state.alignment.sum(-1))
            weights.append(out.weights)
        runs.append(torch.stack(weights))
    torch.testing.assert_close(runs[0], runs[1])


class ScriptedMoChA(MonotonicChunkwiseAttention):
    """MoChA whose monotonic energies are read from the query (one per frame): tests the hard selection
    logic on energies that really move the head, which a randomly initialised energy network rarely does."""

    def energies(self, query, state):
        return query[:, : state.keys.size(1)]


def scripted_mocha() -> ScriptedMoChA:
    torch.manual_seed(0)
    return ScriptedMoChA(16, MEMORY, 8, chunk_size=3).eval()


def test_mocha_hard_attention_is_monotonic_and_chunked() -> None:
    att = scripted_mocha()
    gen = torch.Generator().manual_seed(5)
    memory, mask = torch.randn(3, 11, MEMORY, generator=gen), lengths_to_mask(LENGTHS, 11)
    state, previous, moved, skipped = att.init_state(memory, mask), torch.zeros(3, dtype=torch.long), 0, 0
    with torch.no_grad():
        for _ in range(12):
            out = att(torch.randn(3, 16, generator=gen) - 1.0, memory, mask, state)
            state = out.state
            assert torch.all(state.position >= previous) and torch.all(state.position < LENGTHS)
            moved += int((state.position > previous).sum())
            skipped += int((~state.attended).sum())
            previous = state.position
            for b in range(3):
                support = out.weights[b].nonzero().flatten()
                if state.attended[b]:
                    assert support.min() > state.position[b] - 3 and support.max() == state.position[b]
                    torch.testing.assert_close(out.weights[b].sum(), torch.tensor(1.0))
                else:
                    assert support.numel() == 0 and torch.all(out.context[b] == 0)
    assert moved >= 5 and skipped >= 1  # both branches were exercised


def test_mocha_hard_selection_uses_the_network_energies() -> None:
    """The real (unscripted) hard step selects the first frame at/after the position with e > 0."""
    att = make_attention("mocha", init_bias=-1.0)
    att.energy_gain.data.fill_(3.0)
    memory, mask, queries = batch_inputs()
    state = att.init_state(memory, mask)
    with torch.no_grad():
        for query in queries:
            positive = (att.energies(query, state) > 0) & mask
            out = att(query, memory, mask, state)
            for b in range(3):
                later = positive[b, int(state.position[b]) :].nonzero().flatten()
                assert bool(out.state.attended[b]) == (later.numel() > 0)
                if later.numel():
                    assert int(out.state.position[b]) == int(state.position[b]) + int(later[0])
            state = out.state


def test_mocha_hard_attention_streams_over_growing_memory() -> None:
    """Stepping with memory that grows until a frame is selected equals stepping over the full memory."""
    att = scripted_mocha()
    gen = torch.Generator().manual_seed(6)
    memory, queries = torch.randn(1, 15, MEMORY, generator=gen), torch.randn(8, 1, 16, generator=gen) - 1.0
    full_mask = torch.ones(1, 15, dtype=torch.bool)
    full = run_steps(att, queries, memory, full_mask)
    state, available, waited = att.init_state(memory[:, :1], full_mask[:, :1]), 1, 0
    with torch.no_grad():
        for step, query in enumerate(queries):
            out = att(query, memory[:, :available], full_mask[:, :available], state)
            while not bool(out.state.attended) and available < 15:  # wait for more encoder frames
                available, waited = available + 1, waited + 1
                out = att(query, memory[:, :available], full_mask[:, :available], state)
            state = out.state
            assert bool(state.attended) == bool(full[step].state.attended)
            assert int(state.position) == int(full[step].state.position)
            torch.testing.assert_close(out.context, full[step].context)
    assert waited >= 3 and int(state.position) >= 3
    torch.testing.assert_close(state.keys, att.project_memory(memory[:, :available]))


def test_unknown_attention_kind_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="location_sensitive"):
        build_attention(AttentionConfig(kind="luong"), 4, 4)
