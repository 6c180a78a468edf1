"""The scorer interfaces of beam search, and thin adapters from models to them.

A search combines several *scorers*, each giving log-probabilities of the next token (ESPnet's design):

* a **full scorer** scores every token of the vocabulary at once (attention decoder, language model);
* a **partial scorer** scores only a few candidate tokens per hypothesis, the ones the full scorers put
  in the pre-beam (the CTC prefix scorer, whose cost grows with the number of tokens scored).

Scorers keep nothing about a run on ``self``: every call takes a state and returns a new one, and the search
reorders states with one index per step. A scorer with ``keep_rows(state, rows, utterances)`` also lets the
search drop the rows of finished utterances (all built-in scorers have it; a search with a scorer that lacks
it keeps computing finished rows, as every search did before). Rows of a state are hypotheses, utterance-major (all beams of
utterance 0, then of utterance 1, ...); ``select_state`` only ever reorders rows *within* an utterance, so scorers
may keep per-utterance tensors (encoder memory) unreordered. A full scorer with ``select_rows(state, index)``
also allows hypothesis pruning (``DecodingOptions.score_beam``): there any subset of rows goes on, so an
utterance's row count changes from step to step and every field is copied (partial scorers'
``select_state`` must accept any index).

Adapters here (the search never branches on what a scorer is):

* :class:`DecoderScorer` wraps any decoder of :mod:`speechseq.nn` (``init_state`` / ``step`` /
  ``state.index_select``), e.g. the LAS speller or the Transformer decoder;
* :class:`LMScorer` wraps any language model with ``init_state(batch_size, device)`` and
  ``step(prev_tokens, state)`` (e.g. :class:`speechseq.models.lm.RNNLM`), for shallow fusion.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

import torch

from speechseq.decoding.options import EncoderOutput
from speechseq.errors import SpeechSeqError
from speechseq.nn.masking import lengths_to_mask


class ScorerInputError(SpeechSeqError):
    """A scorer was given inputs it cannot use (e.g. CTC scoring without CTC log-probs)."""


@runtime_checkable
class FullScorer(Protocol):
    """Scores every token of the vocabulary for each running hypothesis.

    Rows are hypotheses (N = utterances × beams, utterance-major).
    """

    def init_state(self, inputs: EncoderOutput) -> Any:
        """State before the first token, one row per row of ``inputs`` (already repeated for beams)."""
        ...

    def score(self, last_tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """Log-probs (N, V) of the next token given the last tokens (N,) (<sos> at the first step)."""
        ...

    def select_state(self, state: Any, index: torch.Tensor) -> Any:
        """The state whose row i is row ``index[i]`` of ``state``; ``index`` (N,) stays within utterances."""
        ...

    def attention(self, state: Any) -> torch.Tensor | None:
        """Attention weights (N, T) of the last ``score`` call, or None for scorers without attention."""
        ...


@runtime_checkable
class PartialScorer(Protocol):
    """Scores only K candidate tokens per hypothesis (e.g. the CTC prefix score)."""

    def init_state(self, inputs: EncoderOutput) -> Any:
        """State of the empty prefix, one row per row of ``inputs``."""
        ...

    def score_partial(
        self,
        prefix: torch.Tensor,
        candidates: torch.Tensor,
        state: Any,
        attention: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, Any]:
        """Log-probs (N, K) of appending each candidate (N, K) to ``prefix`` (N, t) (<sos> first).

        Returns the scores and a *candidate state* holding every (hypothesis, candidate) pair;
        ``attention`` (N, T) is the decoder's attention at this step, for windowing.
        """
        ...

    def select_state(self, state: Any, beam_index: torch.Tensor, candidate_index: torch.Tensor) -> Any:
        """The state of the chosen pairs: row i continues hypothesis ``beam_index[i]`` with its
        candidate number ``candidate_index[i]`` (both (N,))."""
        ...


@dataclass
class DecoderScorerState:
    """State of :class:`DecoderScorer`.

    Attributes:
        decoder: the decoder's own state (a ``BatchState``), N rows.
        memory: (N, T, D) encoder states, or (B, T, D), one row per utterance, for decoders with
            ``grouped_memory = True`` (their attention reads each utterance's memory once for all its
            hypotheses); never reordered.
        mask: (N, T) bool, True on valid frames.
        attention: (N, T) attention weights of the last step, None before the first.
    """

    decoder: Any
    memory: torch.Tensor
    mask: torch.Tensor
    attention: torch.Tensor | None = None


class DecoderScorer:
    """Full scorer over an autoregressive attention decoder (``init_state``/``step`` of ``speechseq.nn``).

    Args:
        decoder: an object with ``init_state(memory, lengths)`` and
            ``step(prev_tokens, state, memory, mask) -> StepOutput(logits, state, attention)``.

    >>> from speechseq.nn.decoders import AttentionLSTMDecoder, AttentionLSTMDecoderConfig
    >>> from speechseq.nn.attention import AttentionConfig
    >>> config = AttentionLSTMDecoderConfig(8, 16, attention=AttentionConfig("dot", attention_dim=8))
    >>> dec = AttentionLSTMDecoder(config, vocab_size=10, memory_dim=12).eval()
    >>> scorer = DecoderScorer(dec)
    >>> state = scorer.init_state(EncoderOutput(torch.randn(2, 7, 12), torch.tensor([7, 5])))
    >>> logp, state = scorer.score(torch.tensor([2, 2]), state)
    >>> tuple(logp.shape), bool(torch.allclose(logp.exp().sum(-1), torch.ones(2)))
    ((2, 10), True)
    """

    def __init__(self, decoder: Any) -> None:
        self.decoder = decoder

    def init_state(self, inputs: EncoderOutput) -> DecoderScorerState:
        if inputs.memory is None:
            raise ScorerInputError("DecoderScorer needs EncoderOutput.memory (the encoder states)")
        mask = lengths_to_mask(inputs.lengths, inputs.memory.size(1))
        state = self.decoder.init_state(inputs.memory, inputs.lengths)
        memory = inputs.memory
        if getattr(self.decoder, "grouped_memory", False):  # the decoder reads (B,T,D) memory for N rows
            memory = memory[:: inputs.rows_per_utterance].contiguous()
        return DecoderScorerState(state, memory, mask)

    def score(self, last_tokens: torch.Tensor, state: DecoderScorerState) -> tuple[torch.Tensor, DecoderScorerState]:
        out = self.decoder.step(last_tokens, state.decoder, state.memory, state.mask)
        logp = out.logits.float().log_softmax(dim=-1)
        return logp, replace(state, decoder=out.state, attention=out.attention)

    def select_state(self, state: DecoderScorerState, index: torch.Tensor) -> DecoderScorerState:
        attention = None if state.attention is None else state.attention.index_select(0, index)
        # Rows stay within their utterance: projected memory (``per_utterance`` fields) is not copied.
        select = getattr(state.decoder, "select_within_utterances", state.decoder.index_select)
        return replace(state, decoder=select(index), attention=attention)

    def attention(self, state: DecoderScorerState) -> torch.Tensor | None:
        return state.attention

    def select_rows(self, state: DecoderScorerState, index: torch.Tensor) -> DecoderScorerState:
        """Rows ``index`` (N',) of ``state`` in any number per utterance (hypothesis pruning): every field is
        copied, and grouped memory (B, T, D) becomes one row per hypothesis (N', T, D), which grouped
        decoders read as N' utterances of one hypothesis each."""
        memory_index = index
        if state.memory.size(0) != state.mask.size(0):  # grouped: W = N / B rows per utterance, in order
            memory_index = torch.div(index, state.mask.size(0) // state.memory.size(0), rounding_mode="floor")
        attention = None if state.attention is None else state.attention.index_select(0, index)
        return DecoderScorerState(
            decoder=state.decoder.index_select(index),
            memory=state.memory.index_select(0, memory_index),
            mask=state.mask.index_select(0, index),
            attention=attention,
        )

    def keep_rows(self, state: DecoderScorerState, rows: torch.Tensor, utterances: torch.Tensor) -> DecoderScorerState:
        """Only ``rows`` (all the hypotheses of ``utterances``, utterance-major) go on: finished utterances
        leave the search. Their projected memory leaves with them, so this copies every field."""
        grouped = state.memory.size(0) != state.mask.size(0)
        attention = None if state.attention is None else state.attention.index_select(0, rows)
        return DecoderScorerState(
            decoder=state.decoder.index_select(rows),
            memory=state.memory.index_select(0, utterances if grouped else rows),
            mask=state.mask.index_select(0, rows),
            attention=attention,
        )


class LMScorer:
    """Full scorer over a language model, for shallow fusion (the LM sees only the tokens).

    Args:
        lm: an object with ``init_state(batch_size, device)`` returning a state with ``index_select``,
            and ``step(prev_tokens (N,), state)`` returning an object with ``logits (N,V)`` and ``state``.

    >>> from speechseq.models.lm import LMConfig, RNNLM
    >>> scorer = LMScorer(RNNLM(LMConfig(vocab_size=10, embedding_dim=8, hidden_size=8)).eval())
    >>> state = scorer.init_state(EncoderOutput(None, torch.tensor([4, 4, 4])))
    >>> logp, state = scorer.score(torch.tensor([2, 2, 2]), state)
    >>> tuple(logp.shape)
    (3, 10)
    """

    def __init__(self, lm: Any) -> None:
        self.lm = lm

    def init_state(self, inputs: EncoderOutput) -> Any:
        return self.lm.init_state(inputs.batch_size, inputs.device)

    def score(self, last_tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        out = self.lm.step(last_tokens, state)
        return out.logits.float().log_softmax(dim=-1), out.state

    def select_state(self, state: Any, index: torch.Tensor) -> Any:
        return state.index_select(index)

    def select_rows(self, state: Any, index: torch.Tensor) -> Any:
        """Rows ``index`` in any number per utterance (hypothesis pruning)."""
        return state.index_select(index)

    def attention(self, state: Any) -> None:
        return None

    def keep_rows(self, state: Any, rows: torch.Tensor, utterances: torch.Tensor) -> Any:
        """Only ``rows`` go on (finished utterances leave the search)."""
        return state.index_select(rows)
