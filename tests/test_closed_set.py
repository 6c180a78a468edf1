"""Closed-set decoding: exact scores (step-wise decoder, brute-force CTC, the beam search's own numbers),
batching invariance, ranking and bad input."""

from __future__ import annotations

import math

import pytest
import torch
from test_beam_search import EOS, VOCAB, las_decoder, random_batch, random_lm, step_log_probs, transformer_decoder
from test_decoding_ctc_prefix import BruteForce

from speechseq.decoding import DecodingOptions, EncoderOutput, build_beam_search
from speechseq.decoding.closed_set import check_candidates, closed_set_decode
from speechseq.errors import ConfigError

CANDIDATES = [[3], [4, 5], [3, 3], [6, 1, 7], [8, 4, 4, 3]]
DECODERS = {"las": las_decoder, "transformer": transformer_decoder}


@torch.no_grad()
@pytest.mark.parametrize("kind", sorted(DECODERS))
def test_scores_are_the_step_wise_decoder_and_every_ctc_alignment(kind):
    decoder = DECODERS[kind](seed=1, eos_bias=0.0)
    batch = random_batch(2, [5, 4])
    options = DecodingOptions(beam_size=len(CANDIDATES), nbest=len(CANDIDATES), ctc_weight=0.5)
    results = closed_set_decode(decoder, batch, CANDIDATES, options)
    for b, result in enumerate(results):
        length = int(batch.lengths[b])
        brute = BruteForce(batch.ctc_log_probs[b, :length].double().numpy())
        assert len(result.hypotheses) == len(CANDIDATES)
        for hyp in result.hypotheses:
            rows = step_log_probs(decoder, batch.memory[b], length, hyp.tokens)
            expected_att = float(rows[torch.arange(len(hyp.tokens) + 1), torch.tensor(hyp.tokens + [EOS])].sum())
            assert hyp.scores["decoder"] == pytest.approx(expected_att, abs=1e-4)
            expected_ctc = brute.full(tuple(hyp.tokens))
            if math.isinf(expected_ctc):  # [8, 4, 4, 3] needs 5 frames (a blank between the 4s): not in 4
                assert hyp.scores["ctc"] == -math.inf
            else:
                assert hyp.scores["ctc"] == pytest.approx(expected_ctc, abs=1e-4)
        totals = [h.score for h in result.hypotheses]
        assert totals == sorted(totals, reverse=True)


SEARCH_DECODERS = {
    "location": lambda: las_decoder(seed=5, eos_bias=1.0),
    "mocha": lambda: las_decoder(seed=5, eos_bias=1.0, kind="mocha"),  # hard monotonic attention in eval
    "multihead": lambda: las_decoder(seed=5, eos_bias=1.0, kind="multihead"),
    "transformer": lambda: transformer_decoder(seed=5, eos_bias=1.0),
}


@torch.no_grad()
@pytest.mark.parametrize("kind", sorted(SEARCH_DECODERS))
def test_a_beam_search_hypothesis_gets_the_score_the_search_gave_it(kind):
    decoder = SEARCH_DECODERS[kind]()
    options = DecodingOptions(beam_size=4, nbest=4, ctc_weight=0.4, lm_weight=0.3, length_bonus=0.2)
    lm = random_lm(6)
    batch = random_batch(7, [10, 8])
    searched = build_beam_search(options, decoder=decoder, lm=lm)(batch)
    checked = 0
    for b, result in enumerate(searched):
        ended = [h for h in result.hypotheses if h.ended]
        one = batch.rows(b, b + 1)
        rescored = closed_set_decode(decoder, one, [h.tokens for h in ended], options, lm)[0].hypotheses
        by_tokens = {tuple(h.tokens): h for h in rescored}
        for hyp in ended:
            again = by_tokens[tuple(hyp.tokens)]
            assert again.score == pytest.approx(hyp.score, abs=1e-3)
            for name in ("decoder", "ctc", "lm"):
                assert again.scores[name] == pytest.approx(hyp.scores[name], abs=1e-3)
            checked += 1
        # the search's best ended hypothesis is also the best of the closed set made of them
        assert rescored[0].tokens == ended[0].tokens
    assert checked >= 4


@torch.no_grad()
def test_an_utterance_alone_and_in_a_padded_batch_gets_the_same_scores():
    decoder = las_decoder(seed=3, eos_bias=0.0)
    batch = random_batch(4, [9, 5, 7])
    options = DecodingOptions(beam_size=5, nbest=5, ctc_weight=0.3, length_bonus=0.5)
    together = closed_set_decode(decoder, batch, CANDIDATES, options)
    for b in range(3):
        alone = closed_set_decode(decoder, batch.rows(b, b + 1), CANDIDATES, options)[0]
        assert [h.tokens for h in alone.hypotheses] == [h.tokens for h in together[b].hypotheses]
        for x, y in zip(alone.hypotheses, together[b].hypotheses):
            assert x.score == pytest.approx(y.score, abs=1e-4)


@torch.no_grad()
def test_the_total_is_the_weighted_sum_and_the_weights_change_the_winner():
    decoder = las_decoder(seed=8, eos_bias=0.0)
    lm = random_lm(9)
    batch = random_batch(10, [12])
    options = DecodingOptions(beam_size=5, nbest=5, ctc_weight=0.2, lm_weight=0.7, length_bonus=0.3)
    (result,) = closed_set_decode(decoder, batch, CANDIDATES, options, lm)
    for h in result.hypotheses:
        expected = 0.8 * h.scores["decoder"] + 0.2 * h.scores["ctc"] + 0.7 * h.scores["lm"] + 0.3 * (len(h.tokens) + 1)
        assert h.score == pytest.approx(expected, abs=1e-4)
    # each scorer alone picks its own favourite
    for name, opts in {
        "decoder": DecodingOptions(ctc_weight=0.0),
        "ctc": DecodingOptions(ctc_weight=1.0),
    }.items():
        (alone,) = closed_set_decode(decoder if name == "decoder" else None, batch, CANDIDATES, opts)
        favourite = max(result.hypotheses, key=lambda h: h.scores[name])
        assert alone.tokens == favourite.tokens
    long_bonus = DecodingOptions(ctc_weight=0.2, length_bonus=100.0)
    assert closed_set_decode(decoder, batch, CANDIDATES, long_bonus)[0].tokens == [8, 4, 4, 3]


def test_bad_candidates_and_missing_scorers_are_named():
    decoder = las_decoder(seed=1, eos_bias=0.0)
    batch = random_batch(2, [6])
    for candidates, message in [
        ([], "at least one candidate"),
        ([[3], []], "candidate 1 is empty"),
        ([[3, EOS]], "candidate 0 has token ids [2]"),
        ([[0]], "candidate 0 has token ids [0]"),
        ([[3, VOCAB]], f"candidate 0 has token ids [{VOCAB}]"),
    ]:
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            closed_set_decode(decoder, batch, candidates, DecodingOptions(ctc_weight=0.3))
    with pytest.raises(ConfigError, match="needs CTC log-probabilities"):
        closed_set_decode(decoder, random_batch(2, [6], ctc=False), [[3]], DecodingOptions(ctc_weight=0.3))
    with pytest.raises(ConfigError, match="needs the attention decoder"):
        closed_set_decode(None, batch, [[3]], DecodingOptions(ctc_weight=0.3))
    with pytest.raises(ConfigError, match="needs a language model"):
        closed_set_decode(decoder, batch, [[3]], DecodingOptions(lm_weight=0.5))
    assert check_candidates([(5, 6)], vocab_size=VOCAB) == [[5, 6]]
    assert isinstance(batch, EncoderOutput)
