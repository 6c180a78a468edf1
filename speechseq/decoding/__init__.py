"""Decoding: options/result dataclasses, scorers, the CTC prefix scorer and batched beam search.

>>> from speechseq.decoding import DecodingOptions, build_beam_search, EncoderOutput
>>> # search = build_beam_search(DecodingOptions(beam_size=10, ctc_weight=0.3, lm_weight=0.5), decoder, lm)
>>> # results = search(EncoderOutput(memory, lengths, ctc_log_probs))   # one N-best list per utterance

See docs/decoding.md.
"""

from speechseq.decoding.beam_search import BeamSearch, build_beam_search, ctc_beam_search, ctc_greedy
from speechseq.decoding.ctc_prefix import CTCPrefixScorer, CTCPrefixState
from speechseq.decoding.finalize import EndDetector
from speechseq.decoding.options import DecodingOptions, DecodingResult, EncoderOutput, Hypothesis
from speechseq.decoding.scorers import DecoderScorer, FullScorer, LMScorer, PartialScorer, ScorerInputError

__all__ = [
    "BeamSearch",
    "CTCPrefixScorer",
    "CTCPrefixState",
    "DecoderScorer",
    "DecodingOptions",
    "DecodingResult",
    "EncoderOutput",
    "EndDetector",
    "FullScorer",
    "Hypothesis",
    "LMScorer",
    "PartialScorer",
    "ScorerInputError",
    "build_beam_search",
    "ctc_beam_search",
    "ctc_greedy",
]
