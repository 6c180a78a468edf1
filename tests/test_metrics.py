"""WER/CER/BLEU: corpus-level definitions checked against hand-counted edits and sacrebleu itself."""

from __future__ import annotations

import pytest
import sacrebleu

from speechseq.metrics import MetricInputError, bleu, char_error_rate, error_rates, word_error_rate


def test_wer_is_corpus_level_not_a_mean_of_utterance_rates() -> None:
    refs = ["one two three four", "five"]
    hyps = ["one two three four", "six"]
    # 1 substitution over 5 reference words; the mean of per-utterance rates would be (0 + 1) / 2.
    assert word_error_rate(refs, hyps) == pytest.approx(1 / 5)


def test_error_counts_match_a_hand_alignment() -> None:
    rates = error_rates(["the cat sat", "on the mat"], ["the bat sat down", "on mat"])
    assert rates.counts() == {"substitutions": 1, "deletions": 1, "insertions": 1, "hits": 4}
    assert rates.wer == pytest.approx(3 / 6)


def test_cer_counts_characters_including_spaces() -> None:
    # "ab cd" -> "ab d": one deletion over 5 characters.
    assert char_error_rate(["ab cd"], ["ab d"]) == pytest.approx(1 / 5)
    assert error_rates(["ab cd"], ["ab d"]).cer == pytest.approx(1 / 5)


def test_empty_hypothesis_is_all_deletions_and_empty_references_are_skipped() -> None:
    assert word_error_rate(["a b", ""], ["", "x"]) == 1.0


def test_bad_inputs_raise() -> None:
    with pytest.raises(MetricInputError, match="2 references but 1 hypotheses"):
        word_error_rate(["a", "b"], ["a"])
    with pytest.raises(MetricInputError, match="no reference words"):
        error_rates(["", " "], ["a", "b"])


def test_bleu_equals_sacrebleu_and_is_100_for_identity() -> None:
    refs = ["the quick brown fox jumps over the lazy dog", "a b c d e f"]
    hyps = ["the quick brown fox jumped over the lazy dog", "a b c d e f"]
    assert bleu(refs, refs) == pytest.approx(100.0)
    assert bleu(refs, hyps) == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    assert 0 < bleu(refs, hyps) < 100
