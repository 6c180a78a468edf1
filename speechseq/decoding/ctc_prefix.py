"""CTC prefix scoring for joint CTC/attention decoding (Watanabe et al. 2017), vectorised.

For a label prefix ``g`` and CTC posteriors ``x`` (T frames), the *prefix probability*
``psi(g) = P(the collapsed CTC output starts with g | x)`` is computed from two forward variables over time:
``r_n(t)`` / ``r_b(t)``, the probability that frames ``0..t`` emit exactly ``g`` and frame ``t`` is its last
token / a blank. Extending ``g`` by a token ``c``::

    phi(t)    = r_b(t) + r_n(t)            (only r_b(t) when c repeats the last token of g)
    r_n'(t)   = (r_n'(t-1) + phi(t-1)) · x_c(t)
    r_b'(t)   = (r_n'(t-1) + r_b'(t-1)) · x_blank(t)
    psi(g+c)  = Σ_t phi(t-1) · x_c(t)
    psi(g+eos) = r_n(T-1) + r_b(T-1)       (the whole output is g)

all in log space. The score of appending ``c`` is ``log psi(g+c) − log psi(g)``, so the scores of a
hypothesis add up to its CTC prefix log-probability. One call scores N hypotheses × K candidates at once
(the loop runs over time only), like ESPnet's ``CTCPrefixScoreTH``. Frames past an utterance's length are
padded with certain blanks, so every utterance's values at frame T−1 equal those at its own last frame.

With ``window`` set and the decoder's attention given, the new token may only start within ``window`` frames
of each hypothesis's attention peak; the loop then covers only the frames near the peaks, so the cost per
step stops growing with the input length (an approximation that loses only alignments far from the peak).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from speechseq.decoding.options import BLANK_ID, EOS_ID, EncoderOutput
from speechseq.decoding.scorers import ScorerInputError

# A finite log zero: -inf would turn (-inf) - (-inf) into NaN for prefixes CTC cannot produce.
LOG_ZERO = -1e10


@dataclass
class CTCPrefixState:
    """Forward variables of N prefixes (one per hypothesis).

    Attributes:
        log_probs: (T, B, V) CTC log-posteriors, padded frames set to certain blank; shared, never copied.
        row: (N,) row of ``log_probs`` (utterance) each hypothesis reads.
        r_nonblank: (T, N) log r_n of the prefix.
        r_blank: (T, N) log r_b of the prefix.
        prefix_score: (N,) log psi of the prefix (0 for the empty prefix).
    """

    log_probs: torch.Tensor
    row: torch.Tensor
    r_nonblank: torch.Tensor
    r_blank: torch.Tensor
    prefix_score: torch.Tensor


@dataclass
class CTCCandidateState:
    """Forward variables of every (hypothesis, candidate) pair of one step: tensors (T, N, K) and (N, K)."""

    log_probs: torch.Tensor
    row: torch.Tensor
    r_nonblank: torch.Tensor
    r_blank: torch.Tensor
    prefix_score: torch.Tensor


def pad_with_blanks(log_probs: torch.Tensor, lengths: torch.Tensor, blank: int = BLANK_ID) -> torch.Tensor:
    """Time-major CTC log-probs whose frames past each length emit blank with probability one.

    Args:
        log_probs: (B, T, V) log-posteriors.
        lengths: (B,) valid frames.

    Returns:
        (T, B, V) tensor: 0 for blank and LOG_ZERO for other tokens on padded frames.
    """
    x = log_probs.transpose(0, 1).clone()  # (T, B, V)
    frames = torch.arange(x.size(0), device=x.device).unsqueeze(1)  # (T, 1)
    padded = frames >= lengths.to(x.device).unsqueeze(0)  # (T, B)
    x.masked_fill_(padded.unsqueeze(-1), LOG_ZERO)
    x[..., blank].masked_fill_(padded, 0.0)
    return x


class CTCPrefixScorer:
    """Partial scorer: CTC prefix scores of candidate tokens, batched over hypotheses and candidates.

    Args:
        blank: the CTC blank id (never a candidate: its score is LOG_ZERO).
        eos: the end-of-sentence id: its score is the probability that the output is exactly the prefix.
        window: frames around the attention peak where a new token may start (None = everywhere).

    >>> log_probs = torch.randn(1, 6, 5).log_softmax(-1)   # one utterance, 6 frames, 5 tokens
    >>> scorer = CTCPrefixScorer()
    >>> state = scorer.init_state(EncoderOutput(None, torch.tensor([6]), log_probs))
    >>> scores, cands = scorer.score_partial(torch.tensor([[2]]), torch.tensor([[3, 4, 2]]), state)
    >>> scores.shape, bool((scores <= 0).all())   # log P(output starts with 3), (... with 4), P(empty)
    (torch.Size([1, 3]), True)
    >>> state = scorer.select_state(cands, torch.tensor([0]), torch.tensor([1]))  # continue with token 4
    >>> bool(torch.isclose(state.prefix_score, scores[0, 1]))
    True
    """

    def __init__(self, blank: int = BLANK_ID, eos: int = EOS_ID, window: int | None = None) -> None:
        self.blank, self.eos, self.window = blank, eos, window

    def init_state(self, inputs: EncoderOutput) -> CTCPrefixState:
        """State of the empty prefix for every row of ``inputs`` (needs ``inputs.ctc_log_probs``)."""
        if inputs.ctc_log_probs is None:
            raise ScorerInputError("CTCPrefixScorer needs EncoderOutput.ctc_log_probs (B, T, V)")
        x = pad_with_blanks(inputs.ctc_log_probs, inputs.lengths, self.blank)
        rows = x.size(1)
        return CTCPrefixState(
            log_probs=x,
            row=torch.arange(rows, device=x.device),
            r_nonblank=torch.full((x.size(0), rows), LOG_ZERO, dtype=x.dtype, device=x.device),
            r_blank=torch.cumsum(x[:, :, self.blank], dim=0),  # all-blank paths
            prefix_score=x.new_zeros(rows),
        )

    def score_partial(
        self,
        prefix: torch.Tensor,
        candidates: torch.Tensor,
        state: CTCPrefixState,
        attention: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, CTCCandidateState]:
        """Scores (N, K) of appending ``candidates`` (N, K) to ``prefix`` (N, t), <sos> first.

        Returns the incremental log-probs ``log psi(g+c) − log psi(g)`` and the candidates' state.
        """
        x = state.log_probs
        num_frames = x.size(0)
        length = prefix.size(1) - 1  # tokens after <sos>
        x_cand = x[:, state.row.unsqueeze(1), candidates]  # (T, N, K)
        x_blank = x[:, state.row, self.blank].unsqueeze(-1)  # (T, N, 1)
        start, end = min(max(length, 1), num_frames), num_frames  # g+c needs at least |g|+1 frames
        if self.window is not None and attention is not None:
            x_cand, start, end = self._restrict_to_window(x_cand, attention, start)
        phi = self._phi(prefix, candidates, state, length)
        r_n, r_b = self._forward(x_cand, x_blank, phi, length, start, end)
        # psi(g+c): every first frame t at which c can be emitted after g, plus t = 0 for an empty g.
        psi = torch.logaddexp(r_n[start - 1], torch.logsumexp(phi[start - 1 : end - 1] + x_cand[start:end], dim=0))
        end_score = torch.logaddexp(state.r_nonblank[-1], state.r_blank[-1])  # (N,) P(output == g)
        psi = torch.where(candidates == self.eos, end_score.unsqueeze(1), psi)
        psi = psi.masked_fill(candidates == self.blank, LOG_ZERO)
        scores = psi - state.prefix_score.unsqueeze(1)
        return scores, CTCCandidateState(x, state.row, r_n, r_b, psi)

    def select_state(
        self, state: CTCCandidateState, beam_index: torch.Tensor, candidate_index: torch.Tensor
    ) -> CTCPrefixState:
        """Prefix states of the chosen (hypothesis ``beam_index[i]``, candidate ``candidate_index[i]``)."""
        return CTCPrefixState(
            log_probs=state.log_probs,
            row=state.row[beam_index],
            r_nonblank=state.r_nonblank[:, beam_index, candidate_index],
            r_blank=state.r_blank[:, beam_index, candidate_index],
            prefix_score=state.prefix_score[beam_index, candidate_index],
        )

    def keep_rows(self, state: CTCPrefixState, rows: torch.Tensor, utterances: torch.Tensor) -> CTCPrefixState:
        """Only ``rows`` go on (finished utterances leave the search); the log-probs stay shared."""
        return CTCPrefixState(
            log_probs=state.log_probs,
            row=state.row[rows],
            r_nonblank=state.r_nonblank[:, rows],
            r_blank=state.r_blank[:, rows],
            prefix_score=state.prefix_score[rows],
        )

    def _phi(self, prefix: torch.Tensor, candidates: torch.Tensor, state: CTCPrefixState, length: int) -> torch.Tensor:
        """log phi (T, N, K): probability of g up to frame t such that c may start at t+1."""
        r_sum = torch.logaddexp(state.r_nonblank, state.r_blank).unsqueeze(-1)  # (T, N, 1)
        if length == 0:  # empty prefix: r_n is zero, nothing to repeat
            return r_sum.expand(-1, -1, candidates.size(1))
        # A repeated token needs a blank in between, so only the blank-ending paths of g may continue.
        repeat = (candidates == prefix[:, -1:]).unsqueeze(0)  # (1, N, K)
        return torch.where(repeat, state.r_blank.unsqueeze(-1), r_sum)

    def _restrict_to_window(
        self, x_cand: torch.Tensor, attention: torch.Tensor, start: int
    ) -> tuple[torch.Tensor, int, int]:
        """Mask candidate emissions outside each hypothesis's window; the loop covers all windows."""
        assert self.window is not None
        peak = attention.argmax(dim=-1)  # (N,)
        frames = torch.arange(x_cand.size(0), device=x_cand.device).unsqueeze(1)  # (T, 1)
        outside = (frames - peak.unsqueeze(0)).abs() > self.window  # (T, N)
        x_cand = x_cand.masked_fill(outside.unsqueeze(-1), LOG_ZERO)
        # Two host syncs per step: the loop bounds must be Python ints.
        low = int(peak.min()) - self.window
        high = int(peak.max()) + self.window + 1
        return x_cand, max(start, low), max(min(x_cand.size(0), high), start)

    @staticmethod
    def _forward(
        x_cand: torch.Tensor, x_blank: torch.Tensor, phi: torch.Tensor, length: int, start: int, end: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward variables (T, N, K) of every extended prefix g+c over frames [start, end).

        Args:
            x_cand: (T, N, K) log-probs of the candidates; x_blank: (T, N, 1) of blank.
            phi: (T, N, K) from ``_phi``; length: |g|.
        """
        # One buffer per frame holding [phi, r_n, r_b]: the pair (phi, r_b) at t-1 is the strided view
        # [0::2] and the pair (r_n, r_b) at t the slice [1:3], so a frame costs two tensor ops, not four.
        frames = x_cand.size(0)
        buf = x_cand.new_empty(frames, 3, *x_cand.shape[1:])
        buf[:, 0] = phi
        buf[:, 1:] = LOG_ZERO
        r_n, r_b = buf[:, 1], buf[:, 2]
        emit = torch.stack([x_cand, x_blank.expand_as(x_cand)], dim=1)  # (T, 2, N, K): token, blank
        if length == 0:
            r_n[0] = x_cand[0]
        # Per-frame views of frames start-1 .. end-1, made by four C++ calls up front: Python indexing in the
        # loop cost more than the arithmetic.
        span = slice(start - 1, end)
        r_n_at, phi_rb_at = buf[span, 1:2].unbind(0), buf[span, 0::2].unbind(0)
        out_at, emit_at = buf[span, 1:3].unbind(0), emit[span].unbind(0)
        for i in range(1, end - start + 1):  # frame t = start - 1 + i
            # r_n(t) = (r_n(t-1) + phi(t-1)) x_c(t);  r_b(t) = (r_n(t-1) + r_b(t-1)) x_blank(t)
            torch.logaddexp(r_n_at[i - 1], phi_rb_at[i - 1], out=out_at[i])
            out_at[i].add_(emit_at[i])
        if end < x_cand.size(0):
            # Past the window the new token is no longer emitted: its paths continue with blanks only.
            last = torch.logaddexp(r_n[end - 1], r_b[end - 1]).unsqueeze(0)
            r_b[end:] = last + torch.cumsum(x_blank[end:], dim=0)
        return r_n, r_b
