"""CTC prefix scorer against brute force over every alignment; batching, windowing, CTC-only search."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from speechseq.decoding import CTCPrefixScorer, DecodingOptions, EncoderOutput, ScorerInputError, ctc_beam_search
from speechseq.decoding.ctc_prefix import LOG_ZERO

BLANK, EOS = 0, 2
LABELS = (1, 3, 4)  # emittable symbols of the 5-token test vocabulary (0 blank, 2 <sos/eos>)


def random_log_probs(seed: int, batch: int, frames: int, vocab: int = 5, scale: float = 2.0,
                     dtype: torch.dtype = torch.float64, eos_possible: bool = True) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, frames, vocab, generator=g, dtype=dtype) * scale
    if not eos_possible:
        logits[..., EOS] = -1e4  # a CTC head never emits <sos/eos>: keeps brute force and search comparable
    return logits.log_softmax(-1)


class BruteForce:
    """Every alignment of one utterance (V^T paths), collapsed; log-sums over path sets."""

    def __init__(self, log_probs: np.ndarray) -> None:  # (T, V)
        frames, vocab = log_probs.shape
        paths = np.array(list(itertools.product(range(vocab), repeat=frames)))
        self.path_log_probs = log_probs[np.arange(frames), paths].sum(1)
        self.outputs = [self._collapse(p) for p in paths]

    @staticmethod
    def _collapse(path: np.ndarray) -> tuple[int, ...]:
        out, prev = [], None
        for s in path.tolist():
            if s != prev and s != BLANK:
                out.append(s)
            prev = s
        return tuple(out)

    def _logsum(self, keep: list[bool]) -> float:
        chosen = self.path_log_probs[np.array(keep, dtype=bool)]
        return float(np.logaddexp.reduce(chosen)) if chosen.size else float("-inf")

    def prefix(self, g: tuple[int, ...]) -> float:
        """log P(collapsed output starts with g)."""
        return self._logsum([o[: len(g)] == g for o in self.outputs])

    def full(self, g: tuple[int, ...]) -> float:
        """log P(collapsed output == g)."""
        return self._logsum([o == g for o in self.outputs])


def assert_log_close(value: float, expected: float, tol: float = 1e-5) -> None:
    """Log-probabilities equal to ``tol``; an impossible event (-inf) must score at most LOG_ZERO / 2."""
    if expected == float("-inf"):
        assert value < LOG_ZERO / 2
    else:
        assert value == pytest.approx(expected, abs=tol)


def score_after(scorer: CTCPrefixScorer, state, prefix: tuple[int, ...], candidates: list[int]):
    """Walk ``prefix`` one token at a time (one row), then score ``candidates``; returns (log psi(prefix),
    log psi(prefix + c) for each c)."""
    tokens, total = [EOS], 0.0
    for token in prefix:
        scores, cand_state = scorer.score_partial(torch.tensor([tokens]), torch.tensor([[token]]), state)
        total += float(scores[0, 0])
        state = scorer.select_state(cand_state, torch.tensor([0]), torch.tensor([0]))
        tokens.append(token)
    scores, _ = scorer.score_partial(torch.tensor([tokens]), torch.tensor([candidates]), state)
    return total, [total + float(s) for s in scores[0]]


@pytest.mark.parametrize("frames", [5, 6])
def test_prefix_scores_equal_brute_force_sum_over_alignments(frames):
    log_probs = random_log_probs(seed=frames, batch=1, frames=frames)
    brute = BruteForce(log_probs[0].numpy())
    scorer = CTCPrefixScorer()
    state = scorer.init_state(EncoderOutput(None, torch.tensor([frames]), log_probs))
    prefixes = [(), (3,), (4,), (3, 3), (3, 4), (1, 3, 3), (4, 3, 4), (3, 4, 3, 4)]
    for g in prefixes:
        psi_g, extended = score_after(scorer, state, g, [1, 3, 4, EOS, BLANK])
        assert_log_close(psi_g, brute.prefix(g) if g else 0.0)
        for c, value in zip([1, 3, 4], extended[:3]):
            assert_log_close(value, brute.prefix(g + (c,)))
        assert_log_close(extended[3], brute.full(g))
        assert extended[4] < LOG_ZERO / 2  # blank is never a label


def test_impossible_prefix_scores_log_zero():
    log_probs = random_log_probs(seed=1, batch=1, frames=5)
    scorer = CTCPrefixScorer()
    state = scorer.init_state(EncoderOutput(None, torch.tensor([5]), log_probs))
    # "3 3 3" needs blanks between repeats: 5 frames; "3 3 3 3" needs 7 > 5.
    _, (three,) = score_after(scorer, state, (3, 3), [3])
    _, (too_long,) = score_after(scorer, state, (3, 3, 3), [3])
    assert three > -50 and too_long < LOG_ZERO / 2


def test_batched_hypotheses_equal_one_utterance_at_a_time():
    lengths = [6, 4, 5]
    log_probs = random_log_probs(seed=7, batch=3, frames=6, dtype=torch.float32)
    scorer = CTCPrefixScorer()
    batch_state = scorer.init_state(EncoderOutput(None, torch.tensor(lengths), log_probs))
    # Two hypotheses per utterance: expand the empty prefix with select_state, then extend by (3) / (4).
    rows = torch.tensor([0, 0, 1, 1, 2, 2])
    first = torch.tensor([3, 4, 3, 4, 3, 4])
    sos = torch.full((3, 1), EOS)
    _, cands = scorer.score_partial(sos, torch.tensor([[3, 4]] * 3), batch_state)
    state = scorer.select_state(cands, rows, torch.tensor([0, 1, 0, 1, 0, 1]))
    prefix = torch.stack([torch.full((6,), EOS), first], dim=1)
    candidates = torch.tensor([[1, 3, 4, EOS]] * 6)
    batched, _ = scorer.score_partial(prefix, candidates, state)
    for b, length in enumerate(lengths):
        alone = scorer.init_state(EncoderOutput(None, torch.tensor([length]), log_probs[b : b + 1, :length]))
        brute = BruteForce(log_probs[b, :length].double().numpy())
        for j, token in enumerate((3, 4)):
            psi, extended = score_after(scorer, alone, (token,), [1, 3, 4, EOS])
            row = 2 * b + j
            assert torch.allclose(batched[row], torch.tensor(extended) - psi, atol=1e-5)
            assert state.prefix_score[row].item() == pytest.approx(brute.prefix((token,)), abs=1e-4)


def test_window_is_exact_when_wide_and_close_when_mass_is_near_the_peak():
    frames = 40
    log_probs = random_log_probs(seed=3, batch=1, frames=frames, dtype=torch.float32, scale=1.0)
    inputs = EncoderOutput(None, torch.tensor([frames]), log_probs)
    prefix, candidates = torch.tensor([[EOS]]), torch.tensor([[1, 3, 4, EOS]])
    attention = torch.zeros(1, frames)
    attention[0, 20] = 1.0
    exact, exact_state = CTCPrefixScorer().score_partial(prefix, candidates, CTCPrefixScorer().init_state(inputs))
    wide = CTCPrefixScorer(window=frames)
    scores, state = wide.score_partial(prefix, candidates, wide.init_state(inputs), attention=attention)
    assert torch.equal(scores, exact) and torch.equal(state.r_blank, exact_state.r_blank)

    # A peaky posterior: blank everywhere except token 3 around frame 20. A window of 3 frames there
    # keeps every alignment of any weight.
    peaky = torch.full((1, frames, 5), -25.0)
    peaky[0, :, BLANK] = 0.0
    peaky[0, 19:22, 3] = 0.0
    peaky[0, 19:22, BLANK] = -25.0
    peaky = peaky.log_softmax(-1)
    inputs = EncoderOutput(None, torch.tensor([frames]), peaky)
    exact, _ = CTCPrefixScorer().score_partial(prefix, candidates, CTCPrefixScorer().init_state(inputs))
    narrow = CTCPrefixScorer(window=3)
    scores, cands = narrow.score_partial(prefix, candidates, narrow.init_state(inputs), attention=attention)
    assert torch.allclose(scores[0, 1], exact[0, 1], atol=1e-4)  # token 3 lies inside the window
    # The prefix state after the window continues with blanks, so eos of "3" matches the exact value.
    follow = narrow.select_state(cands, torch.tensor([0]), torch.tensor([1]))
    eos_windowed, _ = narrow.score_partial(torch.tensor([[EOS, 3]]), torch.tensor([[EOS]]), follow, attention)
    exact_follow = CTCPrefixScorer().select_state(_exact_candidates(inputs), torch.tensor([0]), torch.tensor([1]))
    eos_exact, _ = CTCPrefixScorer().score_partial(torch.tensor([[EOS, 3]]), torch.tensor([[EOS]]), exact_follow)
    assert eos_windowed.item() == pytest.approx(eos_exact.item(), abs=1e-4)
    assert eos_exact.item() > -1.0  # "3" alone is the likely output


def _exact_candidates(inputs: EncoderOutput):
    scorer = CTCPrefixScorer()
    return scorer.score_partial(torch.tensor([[EOS]]), torch.tensor([[1, 3, 4, EOS]]), scorer.init_state(inputs))[1]


def test_ctc_only_beam_search_returns_the_exact_nbest_label_sequences():
    frames = 5
    log_probs = random_log_probs(seed=11, batch=2, frames=frames, eos_possible=False, scale=1.5)
    lengths = torch.tensor([5, 4])
    options = DecodingOptions(beam_size=3**frames, nbest=5, max_len_ratio=2.0, end_detect_steps=0)
    results = ctc_beam_search(log_probs.float(), lengths, options)
    for b in range(2):
        brute = BruteForce(log_probs[b, : int(lengths[b])].numpy())
        sequences = {o for o in brute.outputs if EOS not in o}
        best = sorted(sequences, key=brute.full, reverse=True)[:5]
        assert [tuple(h.tokens) for h in results[b].hypotheses] == best
        for h, g in zip(results[b].hypotheses, best):
            assert h.score == pytest.approx(brute.full(g), abs=1e-4)


def test_small_beam_ctc_search_beats_or_matches_best_path():
    log_probs = random_log_probs(seed=12, batch=4, frames=12, dtype=torch.float32, eos_possible=False, scale=1.0)
    lengths = torch.tensor([12, 9, 11, 6])
    from speechseq.decoding import ctc_greedy

    greedy = ctc_greedy(log_probs, lengths)
    beam = ctc_beam_search(log_probs, lengths, DecodingOptions(beam_size=8))
    scorer = CTCPrefixScorer()
    for b in range(4):
        one = EncoderOutput(None, lengths[b : b + 1], log_probs[b : b + 1, : int(lengths[b])])
        _, (greedy_score,) = score_after(scorer, scorer.init_state(one), tuple(greedy[b]), [EOS])
        assert beam[b].score >= greedy_score - 1e-5
        _, (beam_rescored,) = score_after(scorer, scorer.init_state(one), tuple(beam[b].tokens), [EOS])
        assert beam[b].score == pytest.approx(beam_rescored, abs=1e-4)


def test_missing_ctc_log_probs_is_a_clear_error():
    with pytest.raises(ScorerInputError, match="ctc_log_probs"):
        CTCPrefixScorer().init_state(EncoderOutput(None, torch.tensor([3])))


def test_ctc_only_search_scores_every_token_when_vocabulary_exceeds_the_pre_beam():
    # With no full scorer the pre-beam has nothing to rank by: tokens beyond the first few must still be found.
    vocab, frames = 17, 9
    logits = torch.full((1, frames, vocab), -8.0)
    logits[0, :, BLANK] = 0.0
    for t, token in ((1, 16), (4, 9), (7, 16)):
        logits[0, t, token], logits[0, t, BLANK] = 0.0, -8.0
    results = ctc_beam_search(logits.log_softmax(-1), torch.tensor([frames]), DecodingOptions(beam_size=2))
    assert results[0].tokens == [16, 9, 16]
