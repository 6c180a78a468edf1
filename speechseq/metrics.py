"""Corpus-level text metrics: WER/CER (jiwer) and BLEU (sacrebleu).

``evaluate.load("wer")`` downloads its script from the Hub and fails offline, so the libraries are called
directly. Every rate is corpus-level: total edits over total reference words (or characters), not a mean of
per-utterance rates, which would over-weight short utterances.

>>> round(word_error_rate(["a b c", "d e"], ["a b", "d e"]), 3)
0.2
>>> error_rates(["a b c"], ["a x c d"]).counts()
{'substitutions': 1, 'deletions': 0, 'insertions': 1, 'hits': 2}
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import jiwer

from speechseq.errors import SpeechSeqError


class MetricInputError(SpeechSeqError, ValueError):
    """References and hypotheses that cannot be scored (different counts, no reference words)."""


def _check(refs: Sequence[str], hyps: Sequence[str]) -> tuple[list[str], list[str]]:
    if len(refs) != len(hyps):
        raise MetricInputError(f"{len(refs)} references but {len(hyps)} hypotheses")
    if not refs or not any(r.strip() for r in refs):
        raise MetricInputError("no reference words to score against")
    # jiwer refuses empty references; an empty reference contributes only insertions, which it
    # cannot count, so such pairs are dropped (their hypothesis words are not errors we can measure).
    pairs = [(r, h) for r, h in zip(refs, hyps) if r.strip()]
    return [r for r, _ in pairs], [h for _, h in pairs]


@dataclasses.dataclass(frozen=True)
class ErrorRates:
    """Word and character error rates with the word-level edit counts.

    Attributes:
        wer: word error rate, (S + D + I) / N over the corpus.
        cer: character error rate over the corpus (spaces count as characters).
        substitutions / deletions / insertions / hits: word-level alignment counts.
    """

    wer: float
    cer: float
    substitutions: int
    deletions: int
    insertions: int
    hits: int

    def counts(self) -> dict[str, int]:
        """The word-level edit counts as a dict."""
        return {
            "substitutions": self.substitutions,
            "deletions": self.deletions,
            "insertions": self.insertions,
            "hits": self.hits,
        }


def error_rates(refs: Sequence[str], hyps: Sequence[str]) -> ErrorRates:
    """WER, CER and word edit counts of hypotheses against references (already normalised text)."""
    refs, hyps = _check(refs, hyps)
    words = jiwer.process_words(refs, hyps)
    return ErrorRates(
        wer=float(words.wer),
        cer=float(jiwer.cer(refs, hyps)),
        substitutions=words.substitutions,
        deletions=words.deletions,
        insertions=words.insertions,
        hits=words.hits,
    )


def word_error_rate(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus WER: word edits / reference words."""
    refs, hyps = _check(refs, hyps)
    return float(jiwer.wer(refs, hyps))


def char_error_rate(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Corpus CER: character edits / reference characters."""
    refs, hyps = _check(refs, hyps)
    return float(jiwer.cer(refs, hyps))


def bleu(refs: Sequence[str], hyps: Sequence[str], tokenize: str = "13a") -> float:
    """Corpus BLEU (0-100) with sacrebleu's default 13a tokenisation, one reference per hypothesis.

    >>> round(bleu(["the cat sat on the mat"], ["the cat sat on the mat"]), 1)
    100.0
    """
    import sacrebleu

    if len(refs) != len(hyps):
        raise MetricInputError(f"{len(refs)} references but {len(hyps)} hypotheses")
    return float(sacrebleu.corpus_bleu(list(hyps), [list(refs)], tokenize=tokenize).score)
