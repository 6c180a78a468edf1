"""Batched beam search: greedy equivalence, batching invariance, fusion weights, search quality, limits."""

from __future__ import annotations

import dataclasses
import math
import types

import pytest
import torch
from torch import nn

from speechseq.decoding import (
    BeamSearch,
    DecoderScorer,
    DecodingOptions,
    EncoderOutput,
    EndDetector,
    build_beam_search,
)
from speechseq.decoding.ctc_prefix import CTCPrefixScorer
from speechseq.decoding.scorers import ScorerInputError
from speechseq.errors import ConfigError
from speechseq.models.lm import LMConfig, RNNLM
from speechseq.nn.attention import AttentionConfig
from speechseq.nn.decoders import AttentionLSTMDecoder, AttentionLSTMDecoderConfig, StepOutput
from speechseq.nn.masking import lengths_to_mask
from speechseq.nn.state import BatchState
from speechseq.nn.transformer_decoder import TransformerDecoder, TransformerDecoderConfig

BLANK, EOS = 0, 2
VOCAB = 9


# ---------------------------------------------------------------------------------------------- mock models
@dataclasses.dataclass
class ToyState(BatchState):
    hidden: torch.Tensor  # (N, H)


class ToyAttentionDecoder(nn.Module):
    """GRU cell + dot-product attention over the memory, random weights; follows the decoder contract."""

    def __init__(self, vocab: int, dim: int, seed: int, eos_bias: float = 0.0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.embedding = nn.Embedding(vocab, dim)
        self.cell = nn.GRUCell(dim, dim)
        self.out = nn.Linear(2 * dim, vocab)
        with torch.no_grad():
            self.out.weight.mul_(3.0)  # peaky enough that searches differ
            self.out.bias[EOS] += eos_bias

    def init_state(self, memory: torch.Tensor, lengths: torch.Tensor, generator=None) -> ToyState:
        return ToyState(memory.new_zeros(memory.size(0), memory.size(2)))

    def step(self, prev: torch.Tensor, state: ToyState, memory: torch.Tensor, mask: torch.Tensor) -> StepOutput:
        h = self.cell(self.embedding(prev), state.hidden)
        energies = torch.bmm(memory, h.unsqueeze(-1)).squeeze(-1).masked_fill(~mask, float("-inf"))
        weights = energies.softmax(-1)
        context = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)
        return StepOutput(self.out(torch.cat([h, context], -1)), ToyState(h), weights)


@dataclasses.dataclass
class NodeState(BatchState):
    node: torch.Tensor  # (N,) position in a prefix tree


class TableDecoder:
    """A decoder whose next-token distribution is a table over the prefix (a tree of nodes).

    ``children[(node, token)]`` is the node after ``token`` (default: ``sink``); ``probs[node]`` the
    distribution at that node; ``peaks[node]`` the attention peak frame there.
    """

    def __init__(self, probs: dict[int, list[float]], children: dict[tuple[int, int], int], sink: int,
                 peaks: dict[int, int] | None = None, frames: int = 10) -> None:
        nodes = max(probs) + 1
        self.log_probs = torch.full((nodes, VOCAB), -30.0)
        for node, p in probs.items():
            self.log_probs[node, : len(p)] = torch.tensor(p).clamp(min=1e-13).log()
        self.child = torch.full((nodes, VOCAB), sink, dtype=torch.long)
        for (node, token), nxt in children.items():
            self.child[node, token] = nxt
        self.attention = torch.zeros(nodes, frames)
        for node in range(nodes):
            self.attention[node, (peaks or {}).get(node, 0)] = 1.0

    def init_state(self, memory: torch.Tensor, lengths: torch.Tensor, generator=None) -> NodeState:
        return NodeState(torch.zeros(memory.size(0), dtype=torch.long))

    def step(self, prev: torch.Tensor, state: NodeState, memory: torch.Tensor, mask: torch.Tensor) -> StepOutput:
        node = self.child[state.node, prev]
        return StepOutput(self.log_probs[node], NodeState(node), self.attention[node])


# Root 0 --<sos>--> 1; from 1: "a"(3) 0.55, "b"(4) 0.45. After "a": eos .34, a .33, b .33. After "b": eos .9.
# Greedy takes "a" then eos (0.55 · 0.34 = 0.187); the best sequence is "b" (0.45 · 0.9 = 0.405).
GARDEN_PATH = dict(
    probs={0: [0, 0, 1.0], 1: [0, 0, 0, 0.55, 0.45], 2: [0, 0, 0.34, 0.33, 0.33], 3: [0, 0, 0.9, 0.05, 0.05],
           4: [0, 0, 0.5, 0.25, 0.25]},
    children={(0, EOS): 1, (1, 3): 2, (1, 4): 3},
    sink=4,
)


def las_decoder(seed: int, eos_bias: float, kind: str = "location") -> AttentionLSTMDecoder:
    """The real LAS speller of speechseq.nn (location-aware attention by default) with random weights."""
    torch.manual_seed(seed)
    attention = AttentionConfig(kind=kind, attention_dim=8, location_filters=4, location_kernel=5, num_heads=2)
    decoder = AttentionLSTMDecoder(AttentionLSTMDecoderConfig(8, 16, attention=attention), VOCAB, memory_dim=8)
    with torch.no_grad():
        decoder.output.weight.mul_(4.0)
        decoder.output.bias[EOS] += eos_bias
    return decoder.eval()


DECODERS = {
    "toy": lambda seed, eos_bias: ToyAttentionDecoder(VOCAB, 8, seed, eos_bias).eval(),
    "las": las_decoder,
    # the decoders below read one memory row per utterance for all its hypotheses (grouped_memory)
    "las_multihead": lambda seed, eos_bias: las_decoder(seed, eos_bias, "multihead"),
    "las_mocha": lambda seed, eos_bias: las_decoder(seed, eos_bias, "mocha"),
}


def transformer_decoder(seed: int, eos_bias: float) -> TransformerDecoder:
    torch.manual_seed(seed)
    config = TransformerDecoderConfig(d_model=8, num_heads=2, ffn_dim=16, num_layers=2, dropout=0.0)
    decoder = TransformerDecoder(config, VOCAB, memory_dim=8)
    with torch.no_grad():
        decoder.output.weight.mul_(4.0)
        decoder.output.bias[EOS] += eos_bias
    return decoder.eval()


def random_batch(seed: int, lengths: list[int], dim: int = 8, ctc: bool = True) -> EncoderOutput:
    g = torch.Generator().manual_seed(seed)
    frames = max(lengths)
    lens = torch.tensor(lengths)
    mask = lengths_to_mask(lens, frames).unsqueeze(-1)
    memory = torch.randn(len(lengths), frames, dim, generator=g) * mask
    log_probs = (torch.randn(len(lengths), frames, VOCAB, generator=g) * 3).log_softmax(-1) if ctc else None
    return EncoderOutput(memory, lens, log_probs)


def random_lm(seed: int) -> RNNLM:
    torch.manual_seed(seed)
    return RNNLM(LMConfig(vocab_size=VOCAB, embedding_dim=8, hidden_size=8, num_layers=1, dropout=0.0)).eval()


def plain_greedy(decoder, memory: torch.Tensor, length: int, max_len: int) -> tuple[list[int], float]:
    """Reference: argmax over non-blank tokens, one utterance, unpadded, until eos or max_len tokens."""
    mem = memory[:length].unsqueeze(0)
    mask = torch.ones(1, length, dtype=torch.bool)
    state = decoder.init_state(mem, torch.tensor([length]))
    prev, tokens, score = torch.tensor([EOS]), [], 0.0
    for _ in range(max_len):
        out = decoder.step(prev, state, mem, mask)
        logp = out.logits.float().log_softmax(-1)[0]
        logp[BLANK] = float("-inf")
        token = int(logp.argmax())
        score += float(logp[token])
        if token == EOS:
            break
        tokens.append(token)
        prev, state = torch.tensor([token]), out.state
    return tokens, score


def step_log_probs(decoder, memory: torch.Tensor, length: int, tokens: list[int]) -> torch.Tensor:
    """Decoder log-probs (L+1, V) along ``<sos> tokens`` for one unpadded utterance."""
    mem, mask = memory[:length].unsqueeze(0), torch.ones(1, length, dtype=torch.bool)
    state, rows = decoder.init_state(mem, torch.tensor([length])), []
    for prev in [EOS] + tokens:
        out = decoder.step(torch.tensor([prev]), state, mem, mask)
        rows.append(out.logits.float().log_softmax(-1)[0])
        state = out.state
    return torch.stack(rows)


def hyp_key(result) -> list[tuple[tuple[int, ...], float]]:
    return [(tuple(h.tokens), round(h.score, 4)) for h in result.hypotheses]


# ------------------------------------------------------------------------------------------------- tests
@torch.no_grad()
@pytest.mark.parametrize("kind", ["toy", "las"])
def test_beam_one_equals_plain_greedy_loop(kind):
    decoder = DECODERS[kind](seed=1, eos_bias=1.0)
    lengths = [7, 12, 4, 9, 10, 6]
    batch = random_batch(0, lengths, ctc=False)
    options = DecodingOptions(beam_size=1, max_len_ratio=1.0)
    results = BeamSearch({"decoder": DecoderScorer(decoder)}, {"decoder": 1.0}, options)(batch)
    ended_early = 0
    for b, length in enumerate(lengths):
        tokens, score = plain_greedy(decoder, batch.memory[b], length, max_len=length)
        assert results[b].tokens == tokens
        assert results[b].score == pytest.approx(score, abs=1e-5)
        ended_early += len(tokens) < length - 1
    assert ended_early >= 2  # the comparison covers eos endings, not only the length limit


@torch.no_grad()
@pytest.mark.parametrize("kind", ["toy", "las", "las_multihead", "las_mocha"])
@pytest.mark.parametrize(
    "options,use_ctc,use_lm",
    [
        (DecodingOptions(beam_size=4, nbest=3), False, False),
        (DecodingOptions(beam_size=4, nbest=4, ctc_weight=0.3, lm_weight=0.5, length_bonus=0.5), True, True),
        (DecodingOptions(beam_size=3, nbest=2, ctc_weight=0.5, ctc_window=2, max_attention_shift=4,
                         eos_threshold=1.5, length_normalization=True, min_len_ratio=0.2), True, False),
        # max_rows 7 searches the four utterances in groups of two (7 // 3), each cut to its longest input
        (DecodingOptions(beam_size=3, nbest=3, ctc_weight=0.3, lm_weight=0.3, max_rows=7), True, True),
    ],
)
def test_batched_search_equals_one_utterance_at_a_time(options, use_ctc, use_lm, kind):
    decoder = DECODERS[kind](seed=2, eos_bias=0.5)
    lengths = [9, 5, 12, 7]
    batch = random_batch(3, lengths, ctc=use_ctc)
    search = build_beam_search(options, decoder=decoder, lm=random_lm(4) if use_lm else None)
    batched = search(batch)
    for b, length in enumerate(lengths):
        alone = EncoderOutput(
            batch.memory[b : b + 1, :length], batch.lengths[b : b + 1],
            None if batch.ctc_log_probs is None else batch.ctc_log_probs[b : b + 1, :length],
        )
        single = search(alone)[0]
        assert hyp_key(batched[b]) == hyp_key(single)
        for hb, hs in zip(batched[b].hypotheses, single.hypotheses):
            assert hb.scores == pytest.approx(hs.scores, abs=1e-4)
            assert torch.allclose(hb.attention, hs.attention, atol=1e-5)
    assert any(len(r.hypotheses) > 1 for r in batched)


@torch.no_grad()
@pytest.mark.parametrize("beam", [1, 4])
def test_dropping_finished_utterances_changes_no_result(beam, monkeypatch):
    """Utterances of very different lengths finish at different steps; the search drops their rows (the
    scorers' keep_rows is called) and still returns exactly what it returns when it computes them all."""
    decoder = DECODERS["las"](seed=2, eos_bias=0.5)
    lengths = [3, 14, 4, 13, 3, 12]
    batch = random_batch(5, lengths)
    options = DecodingOptions(beam_size=beam, nbest=beam, ctc_weight=0.3, lm_weight=0.3)
    search = build_beam_search(options, decoder=decoder, lm=random_lm(4))
    calls = []
    original = CTCPrefixScorer.keep_rows
    monkeypatch.setattr(CTCPrefixScorer, "keep_rows", lambda self, *a: calls.append(1) or original(self, *a))
    compacted = search(batch)
    assert calls, "no utterance was dropped: the test does not exercise compaction"
    search.can_drop_rows = False  # what a search with a scorer lacking keep_rows does: compute every row
    everything = search(batch)
    for a, b in zip(compacted, everything):
        assert hyp_key(a) == hyp_key(b)
        for ha, hb in zip(a.hypotheses, b.hypotheses):
            assert ha.scores == pytest.approx(hb.scores, abs=1e-5)
            assert torch.allclose(ha.attention, hb.attention, atol=1e-6)


def assert_same_results(a_results, b_results) -> None:
    for a, b in zip(a_results, b_results, strict=True):
        assert hyp_key(a) == hyp_key(b)
        for ha, hb in zip(a.hypotheses, b.hypotheses):
            assert ha.scores == pytest.approx(hb.scores, abs=1e-5)
            assert (ha.attention is None) == (hb.attention is None)
            if ha.attention is not None:
                assert torch.allclose(ha.attention, hb.attention, atol=1e-6)


class MaskingSearch(BeamSearch):
    """Reference for hypothesis pruning: every row stays computed, pruned ones only score −inf."""

    def _select(self, running, s, step, rows_max_len):
        new, record = super()._select(running, s, step, rows_max_len)
        beam = self.options.beam_size
        best = record.score.view(-1, beam).max(dim=1, keepdim=True).values
        far = (record.score.view(-1, beam) < best - self.threshold).view(-1)
        return dataclasses.replace(new, scores=new.scores.masked_fill(far, float("-inf"))), record


PRUNING_DECODERS = {**DECODERS, "transformer": transformer_decoder}


@torch.no_grad()
@pytest.mark.parametrize("kind", list(PRUNING_DECODERS))
@pytest.mark.parametrize("threshold", [1e9, 1.5])
def test_score_beam_pruning_equals_masking_every_row(kind, threshold, monkeypatch):
    """Pruned hypotheses leave the running tensors (any subset of rows, memory per row): the N-best lists,
    per-scorer scores and attention equal those of a search that keeps computing them at −inf, and a
    wide-open beam equals the plain search."""
    decoder = PRUNING_DECODERS[kind](seed=2, eos_bias=0.5)
    lengths = [9, 5, 12, 3, 7]
    batch = random_batch(3, lengths)
    options = DecodingOptions(beam_size=4, nbest=3, ctc_weight=0.3, lm_weight=0.5, length_bonus=0.5)
    lm = random_lm(4)
    reference = build_beam_search(options, decoder=decoder, lm=lm)
    reference.__class__ = MaskingSearch
    reference.threshold = threshold
    pruned = build_beam_search(dataclasses.replace(options, score_beam=threshold), decoder=decoder, lm=lm)
    rows_seen = []
    original = DecoderScorer.select_rows
    monkeypatch.setattr(DecoderScorer, "select_rows", lambda self, st, i: rows_seen.append(i.numel()) or original(self, st, i))
    assert_same_results(pruned(batch), reference(batch))
    # groups of max_rows utterances (each starts with one row under pruning), each cut to its longest input
    grouped = build_beam_search(dataclasses.replace(options, score_beam=threshold, max_rows=2), decoder=decoder, lm=lm)
    assert_same_results(grouped(batch), reference(batch))
    if threshold < 1e9:
        assert min(rows_seen) < len(lengths) * 2, "too little was pruned: the test does not exercise it"
    else:
        assert_same_results(pruned(batch), build_beam_search(options, decoder=decoder, lm=lm)(batch))


@torch.no_grad()
@pytest.mark.parametrize("threshold", [1e9, 1.0])
def test_score_beam_pruning_of_ctc_prefix_search_with_lm_equals_masking(threshold):
    """CTC-only prefix search (no decoder: the LM is the only full scorer) prunes the same way."""
    batch = random_batch(6, [9, 5, 12, 3])
    options = DecodingOptions(beam_size=4, nbest=3, lm_weight=0.5, length_bonus=0.5)
    lm = random_lm(4)
    reference = build_beam_search(options, lm=lm, use_ctc=True, vocab_size=VOCAB)
    reference.__class__ = MaskingSearch
    reference.threshold = threshold
    pruned = build_beam_search(dataclasses.replace(options, score_beam=threshold), lm=lm, use_ctc=True, vocab_size=VOCAB)
    assert_same_results(pruned(batch), reference(batch))
    if threshold >= 1e9:
        assert_same_results(pruned(batch), build_beam_search(options, lm=lm, use_ctc=True, vocab_size=VOCAB)(batch))


def test_score_beam_needs_select_rows_on_full_scorers():
    inner = DecoderScorer(DECODERS["toy"](seed=0, eos_bias=0.0))
    bare = types.SimpleNamespace(  # a full scorer that can reorder rows within utterances only
        init_state=inner.init_state, score=inner.score, select_state=inner.select_state, attention=inner.attention
    )
    with pytest.raises(ScorerInputError, match="select_rows"):
        BeamSearch({"decoder": bare}, {"decoder": 1.0}, DecodingOptions(beam_size=2, score_beam=5.0))
    BeamSearch({"decoder": bare}, {"decoder": 1.0}, DecodingOptions(beam_size=2))  # fine without pruning
    with pytest.raises(ConfigError, match="score_beam"):
        DecodingOptions(beam_size=2, score_beam=0.0)


@torch.no_grad()
def test_hypothesis_score_is_the_weighted_sum_of_its_scorers():
    decoder = ToyAttentionDecoder(VOCAB, 8, seed=5, eos_bias=0.5).eval()
    options = DecodingOptions(beam_size=4, nbest=4, ctc_weight=0.4, lm_weight=0.3, length_bonus=0.2)
    results = build_beam_search(options, decoder=decoder, lm=random_lm(6))(random_batch(7, [10, 8]))
    for result in results:
        scores = [h.score for h in result.hypotheses]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h.tokens) for h in result.hypotheses}) == len(result.hypotheses)
        for h in result.hypotheses:
            steps = len(h.tokens) + int(h.ended)
            expected = 0.6 * h.scores["decoder"] + 0.4 * h.scores["ctc"] + 0.3 * h.scores["lm"] + 0.2 * steps
            assert h.score == pytest.approx(expected, abs=1e-4)
            assert h.attention.shape == (steps, int(result.hypotheses[0].attention.shape[1]))


@torch.no_grad()
def test_lm_weight_zero_leaves_results_unchanged():
    decoder = ToyAttentionDecoder(VOCAB, 8, seed=8, eos_bias=0.5).eval()
    batch = random_batch(9, [11, 6, 9])
    options = DecodingOptions(beam_size=5, nbest=3, ctc_weight=0.3)
    without = build_beam_search(options, decoder=decoder)(batch)
    with_lm = build_beam_search(options, decoder=decoder, lm=random_lm(10))(batch)
    fused = build_beam_search(dataclasses.replace(options, lm_weight=1.0), decoder=decoder, lm=random_lm(10))(batch)
    assert [hyp_key(r) for r in without] == [hyp_key(r) for r in with_lm]
    assert all("lm" in h.scores for r in with_lm for h in r.hypotheses)  # still scored and reported
    assert [hyp_key(r) for r in fused] != [hyp_key(r) for r in without]  # the LM does matter when weighted


@torch.no_grad()
def test_beam_search_finds_the_best_sequence_that_greedy_misses():
    scorer = DecoderScorer(TableDecoder(**GARDEN_PATH))
    batch = EncoderOutput(torch.zeros(1, 10, 1), torch.tensor([10]))
    greedy = BeamSearch({"decoder": scorer}, {"decoder": 1.0}, DecodingOptions(beam_size=1))(batch)[0]
    beam = BeamSearch({"decoder": scorer}, {"decoder": 1.0}, DecodingOptions(beam_size=2, nbest=2))(batch)[0]
    assert greedy.tokens == [3]
    assert greedy.score == pytest.approx(math.log(0.55 * 0.34), abs=1e-5)
    assert beam.tokens == [4]
    assert beam.score == pytest.approx(math.log(0.45 * 0.9), abs=1e-5)
    assert beam.hypotheses[1].tokens == [3]


@torch.no_grad()
def test_attention_shift_limit_drops_jumping_hypotheses():
    # Same tree, but after "b" the attention jumps from frame 0 to frame 8: with a limit of 3 frames the
    # best sequence "b" is pruned and the search falls back to "a".
    table = TableDecoder(**GARDEN_PATH, peaks={3: 8})
    batch = EncoderOutput(torch.zeros(1, 10, 1), torch.tensor([10]))
    free = BeamSearch({"d": DecoderScorer(table)}, {"d": 1.0}, DecodingOptions(beam_size=2))(batch)[0]
    limited = BeamSearch({"d": DecoderScorer(table)}, {"d": 1.0}, DecodingOptions(beam_size=2, max_attention_shift=3))(batch)[0]
    assert free.tokens == [4]
    assert limited.tokens == [3]
    assert limited.best.attention.argmax(-1).tolist() == [0, 0]


@torch.no_grad()
def test_length_limits_and_eos_threshold():
    decoder = ToyAttentionDecoder(VOCAB, 8, seed=11, eos_bias=2.0).eval()
    lengths = [10, 6, 8]
    batch = random_batch(12, lengths, ctc=False)
    search = lambda **kw: build_beam_search(DecodingOptions(beam_size=3, nbest=3, **kw), decoder=decoder)(batch)
    short = search(max_len_ratio=0.3)
    for result, length in zip(short, lengths):
        assert all(len(h.tokens) + h.ended <= int(0.3 * length) for h in result.hypotheses)
    long = search(min_len_ratio=0.5)
    for result, length in zip(long, lengths):
        assert all(len(h.tokens) >= int(0.5 * length) for h in result.hypotheses)
    # With threshold 1, eos may only end a hypothesis where it is the decoder's best token.
    strict, plain = search(eos_threshold=1.0), search()
    eos_was_best = {"strict": [], "plain": []}
    for name, results in (("strict", strict), ("plain", plain)):
        for b, result in enumerate(results):
            for h in result.hypotheses:
                if h.ended:
                    logp = step_log_probs(decoder, batch.memory[b], lengths[b], h.tokens)[-1]
                    eos_was_best[name].append(bool(logp[EOS] >= logp.max()))
    assert eos_was_best["strict"] and all(eos_was_best["strict"])
    assert not all(eos_was_best["plain"])


def test_end_detector_stops_when_recent_endings_are_much_worse():
    det = EndDetector(torch.tensor([50]), 2, DecodingOptions(beam_size=2, end_detect_steps=2, length_bonus=1.0))
    alive = torch.tensor([True, False])
    assert not det.update(0, torch.tensor([False, True]), torch.tensor([0.0, -1.0]), alive)
    assert not det.update(1, torch.tensor([False, True]), torch.tensor([0.0, -20.0]), alive)
    assert det.update(2, torch.tensor([False, True]), torch.tensor([0.0, -30.0]), alive)


def test_end_detector_exact_stop_needs_nbest_better_than_running():
    det = EndDetector(torch.tensor([50]), 2, DecodingOptions(beam_size=2, nbest=1, end_detect_steps=0))
    ended = torch.tensor([False, True])
    assert not det.update(0, ended, torch.tensor([-1.0, -2.0]), torch.tensor([True, False]))
    assert det.update(1, ended, torch.tensor([-3.0, -2.5]), torch.tensor([True, False]))


@torch.no_grad()
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_search_on_gpu_equals_cpu():
    decoder = ToyAttentionDecoder(VOCAB, 8, seed=13, eos_bias=0.5).eval()
    lm = random_lm(14)
    batch = random_batch(15, [9, 7, 12])
    options = DecodingOptions(beam_size=4, nbest=2, ctc_weight=0.3, lm_weight=0.3)
    cpu = build_beam_search(options, decoder=decoder, lm=lm)(batch)
    gpu_batch = EncoderOutput(batch.memory.cuda(), batch.lengths.cuda(), batch.ctc_log_probs.cuda())
    gpu = build_beam_search(options, decoder=decoder.cuda(), lm=lm.cuda())(gpu_batch)
    assert [hyp_key(r) for r in cpu] == [hyp_key(r) for r in gpu]
