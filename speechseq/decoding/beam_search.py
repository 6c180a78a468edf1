"""Batched, label-synchronous beam search over a dict of weighted scorers (ESPnet's BatchBeamSearch design).

All utterances × beams run as one tensor of N = B·W rows (utterance-major). Each step:

1. every *full* scorer scores the whole vocabulary for every row (attention decoder, LM);
2. their weighted sum, with blank, early eos, the eos threshold and attention jumps masked, picks K
   pre-beam candidates per row (all tokens when there is no partial scorer);
3. *partial* scorers (CTC prefix) score those candidates only;
4. ``score(row) + Σ_s w_s·logp_s(candidate) + length_bonus`` ranks the W·K candidates of each utterance,
   and the best W become the new rows;
5. every scorer's state is reordered with that one index (rows never leave their utterance);
6. rows that chose eos (or hit the length limit) are recorded as ended and stop growing; finished
   utterances (see :mod:`speechseq.decoding.finalize`) stop too, and the loop ends when all have;
7. once a quarter of the rows belong to finished utterances, those utterances leave the running tensors
   (``keep_rows`` of every scorer); records stay in the whole batch's layout.

Batches of more than ``max_rows`` hypotheses are searched in groups of utterances.

With ``score_beam`` (hypothesis pruning) step 7 is replaced: after every step only the hypotheses within
``score_beam`` of their utterance's best go on, as any subset of the B·W rows (``_select_pruned``); the
scorers then compute only those, and W stays the most an utterance may hold.

The first step starts from W copies of <sos> of which only the first is alive (the others score −inf), so
the beam fills from one hypothesis without a special case. Greedy decoding is ``beam_size=1``. The inner
loop has two host syncs per step (the "all finished?" test and the count of finished rows), plus two for the
CTC window when it is on.

Ready-made searches from :class:`DecodingOptions` (:func:`build_beam_search`, :func:`ctc_beam_search`)
weigh the scorers as in joint decoding (Watanabe et al. 2017) with shallow fusion::

    (1 − λ) · log p_att + λ · log p_ctc + β · log p_lm + length_bonus · |y|

with λ = ``ctc_weight`` and β = ``lm_weight``. Without an attention decoder (a CTC-only model) the CTC
weight is 1: a label-synchronous CTC prefix beam search. Greedy CTC decoding (best path) is
:func:`speechseq.models.ctc.ctc_greedy`, re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch

from speechseq.decoding.ctc_prefix import CTCPrefixScorer
from speechseq.decoding.finalize import EndDetector, StepRecord, collect_nbest
from speechseq.decoding.options import BLANK_ID, EOS_ID, DecodingOptions, DecodingResult, EncoderOutput
from speechseq.decoding.scorers import DecoderScorer, FullScorer, LMScorer, PartialScorer, ScorerInputError
from speechseq.models.ctc import ctc_greedy

__all__ = ["BeamSearch", "build_beam_search", "ctc_beam_search", "ctc_greedy"]

NEG_INF = float("-inf")


@dataclass
class _Running:
    """The running rows of a search (N = B·W).

    Attributes:
        scores: (N,) weighted total score, −inf for dead rows.
        tokens: (N, i+1) tokens so far, <sos> first.
        states: scorer name -> that scorer's state.
        totals: scorer name -> (N,) unweighted cumulative log-prob.
        peak: (N,) attention peak of the previous step, or None.
    """

    scores: torch.Tensor
    tokens: torch.Tensor
    states: dict[str, Any]
    totals: dict[str, torch.Tensor]
    peak: torch.Tensor | None = None


@dataclass
class _StepScores:
    """Scores of one step before selection.

    Attributes:
        full: scorer name -> (N, V) log-probs of the full scorers.
        states: scorer name -> state after scoring (full scorers) or candidate state (partial scorers).
        partial: scorer name -> (N, K) log-probs of the candidates.
        candidates: (N, K) candidate tokens.
        combined: (N, K) weighted sum of all scorers + length bonus for each candidate.
        attention: (N, T) attention weights of this step, or None.
    """

    full: dict[str, torch.Tensor]
    states: dict[str, Any]
    partial: dict[str, torch.Tensor]
    candidates: torch.Tensor
    combined: torch.Tensor
    attention: torch.Tensor | None


class BeamSearch:
    """Joint beam search: ``Σ_s weight_s · log p_s + length_bonus`` over full and partial scorers.

    Args:
        scorers: name -> scorer; objects with ``score_partial`` are partial scorers, others full scorers.
        weights: name -> weight (a missing name weighs 0: scored and reported, but not used to rank).
        options: beam size, lengths, end detection, ...
        vocab_size: V; needed only when there is no full scorer (CTC-only search scores every token).
        eos: end-of-sentence id (also <sos>); blank: the id never emitted (CTC blank / pad).

    >>> import torch
    >>> from speechseq.decoding.ctc_prefix import CTCPrefixScorer
    >>> log_probs = torch.tensor([[[.1, 0, 0, .8, .1], [.8, 0, 0, .1, .1], [.1, 0, 0, .1, .8]]]).clamp(1e-6).log()
    >>> search = BeamSearch({"ctc": CTCPrefixScorer()}, {"ctc": 1.0}, DecodingOptions(beam_size=3), vocab_size=5)
    >>> search(EncoderOutput(None, torch.tensor([3]), log_probs))[0].tokens
    [3, 4]
    """

    def __init__(
        self,
        scorers: Mapping[str, FullScorer | PartialScorer],
        weights: Mapping[str, float],
        options: DecodingOptions,
        vocab_size: int | None = None,
        eos: int = EOS_ID,
        blank: int = BLANK_ID,
    ) -> None:
        unknown = set(weights) - set(scorers)
        if unknown:
            raise ScorerInputError(f"weights name scorers that do not exist: {sorted(unknown)}")
        self.partial = {n: s for n, s in scorers.items() if isinstance(s, PartialScorer)}
        self.full = {n: s for n, s in scorers.items() if n not in self.partial}
        if not self.full and vocab_size is None:
            raise ScorerInputError("BeamSearch without a full scorer needs vocab_size")
        self.weights = {n: float(weights.get(n, 0.0)) for n in scorers}
        # Finished utterances can leave the running rows only if every scorer can drop rows from its state.
        self.can_drop_rows = all(hasattr(s, "keep_rows") for s in scorers.values())
        if options.score_beam is not None and not all(hasattr(s, "select_rows") for s in self.full.values()):
            lacking = sorted(n for n, s in self.full.items() if not hasattr(s, "select_rows"))
            raise ScorerInputError(
                f"DecodingOptions.score_beam needs select_rows on every full scorer; {lacking} lack it"
            )
        self.options, self.vocab_size, self.eos, self.blank = options, vocab_size, eos, blank

    @torch.no_grad()
    def __call__(self, inputs: EncoderOutput | Any) -> list[DecodingResult]:
        """Decode a batch: ``inputs`` (an ``EncoderOutput`` or any object with its fields, such as
        ``LASModel.encode``'s result) holds B utterances; returns B N-best lists."""
        inputs = EncoderOutput.coerce(inputs)
        beam = self.options.beam_size
        pruning = self.options.score_beam is not None
        # Without pruning every utterance holds W rows throughout; with it, one row at first and then its
        # live hypotheses only (a few), so max_rows counts utterances.
        group = max(1, (self.options.max_rows or beam * inputs.batch_size) // (1 if pruning else beam))
        if inputs.batch_size > group:
            return [
                result
                for start in range(0, inputs.batch_size, group)
                for result in self(inputs.rows(start, start + group))
            ]
        min_len, max_len = self.options.length_limits(inputs.lengths)
        detector = EndDetector(max_len, beam, self.options)
        rows_min_len = min_len.repeat_interleave(beam)
        rows_max_len = max_len.repeat_interleave(beam)
        # Rows of the running tensors -> rows of the whole batch (B·W); records and the end detector always
        # see the whole batch, the scorers only the rows still searched.
        total = inputs.batch_size * beam
        if pruning:  # only the first row of each utterance is alive at the start: run only those
            running = self._start(inputs, inputs.batch_size, 1)
            rows = torch.arange(0, total, beam, device=inputs.device)
        else:
            running = self._start(inputs.repeat_rows(beam), inputs.batch_size, beam)
            rows = torch.arange(total, device=inputs.device)
        records: list[StepRecord] = []
        for step in range(int(max_len.max())):
            running.scores = running.scores.masked_fill(detector.finished_rows()[rows], NEG_INF)
            step_scores = self._score(running, step, rows_min_len[rows])
            if pruning:
                running, record, rows = self._select_pruned(running, step_scores, step, rows, rows_max_len, detector)
            else:
                running, record = self._select(running, step_scores, step, rows_max_len[rows])
                record = record.spread(rows, total)
            records.append(record)
            alive = torch.zeros_like(record.ended).index_fill(0, rows[torch.isfinite(running.scores)], True)
            if detector.update(step, record.ended, record.score, alive):
                break
            keep = None if pruning else self._rows_to_keep(detector, rows)  # pruning drops them every step
            if keep is not None:
                running, rows = self._keep(running, keep), rows[keep]
        return collect_nbest(records, inputs.lengths, beam, self.options.nbest, self.eos)

    def _rows_to_keep(self, detector: EndDetector, rows: torch.Tensor) -> torch.Tensor | None:
        """Running rows to keep when at least a quarter of them belong to finished utterances, else None.

        Dropping finished utterances saves their share of every later step: in a batch the search runs until
        its longest utterance ends (beam 10 + CTC + LM over groups of 12 utterances ran 56 steps for outputs
        of 39 tokens on average). Compacting copies every state, hence the threshold.
        """
        if not self.can_drop_rows:
            return None
        finished = detector.finished_rows()[rows]
        if int(finished.sum()) * 4 < rows.numel():  # one host sync
            return None
        return torch.nonzero(~finished).squeeze(1)

    def _keep(self, running: _Running, keep: torch.Tensor) -> _Running:
        """``running`` restricted to the rows ``keep`` (whole utterances, utterance-major)."""
        beam = self.options.beam_size
        utterances = keep[::beam] // beam  # positions of the kept utterances among the running ones
        return _Running(
            scores=running.scores[keep],
            tokens=running.tokens[keep],
            states={
                name: scorer.keep_rows(running.states[name], keep, utterances)  # type: ignore[union-attr]
                for name, scorer in {**self.full, **self.partial}.items()
            },
            totals={name: total[keep] for name, total in running.totals.items()},
            peak=None if running.peak is None else running.peak[keep],
        )

    def _start(self, rows: EncoderOutput, batch: int, beam: int) -> _Running:
        """``beam`` rows of <sos> per utterance, only the first alive."""
        device = rows.device
        scores = torch.full((batch, beam), NEG_INF, device=device)
        scores[:, 0] = 0.0
        n = batch * beam
        return _Running(
            scores=scores.view(n),
            tokens=torch.full((n, 1), self.eos, dtype=torch.long, device=device),
            states={name: scorer.init_state(rows) for name, scorer in {**self.full, **self.partial}.items()},
            totals={name: torch.zeros(n, device=device) for name in self.weights},
        )

    def _score(self, running: _Running, step: int, rows_min_len: torch.Tensor) -> _StepScores:
        """Full scores, masks, pre-beam candidates and partial scores of one step."""
        last = running.tokens[:, -1]
        full, states, attention = {}, {}, None
        for name, scorer in self.full.items():
            full[name], states[name] = scorer.score(last, running.states[name])
            if attention is None:
                attention = scorer.attention(states[name])
        weighted = self._weighted_full(full, last)
        self._mask(weighted, step, rows_min_len, running, attention)
        candidates = self._candidates(weighted)
        combined = weighted.gather(1, candidates) + self.options.length_bonus
        partial = {}
        for name, scorer in self.partial.items():
            partial[name], states[name] = scorer.score_partial(
                running.tokens, candidates, running.states[name], attention=attention
            )
            if self.weights[name] != 0.0:
                combined = combined + self.weights[name] * partial[name]
        return _StepScores(full, states, partial, candidates, combined, attention)

    def _weighted_full(self, full: dict[str, torch.Tensor], last: torch.Tensor) -> torch.Tensor:
        """(N, V) Σ weight·logp over full scorers (zeros when there is none); zero weights are skipped."""
        vocab = self.vocab_size or next(iter(full.values())).size(-1)
        weighted = torch.zeros(last.numel(), vocab, device=last.device)
        for name, logp in full.items():
            if self.weights[name] != 0.0:  # 0 · (−inf) would be NaN
                weighted = weighted + self.weights[name] * logp
        return weighted

    def _mask(
        self,
        weighted: torch.Tensor,
        step: int,
        rows_min_len: torch.Tensor,
        running: _Running,
        attention: torch.Tensor | None,
    ) -> None:
        """In place: forbid blank, eos before the minimum length or below the eos threshold, and rows
        whose attention jumped too far."""
        opts, eos = self.options, self.eos
        weighted[:, self.blank] = NEG_INF
        if opts.eos_threshold is not None:
            best = weighted.max(dim=-1).values
            weighted[:, eos] = weighted[:, eos].masked_fill(weighted[:, eos] < opts.eos_threshold * best, NEG_INF)
        weighted[:, eos] = weighted[:, eos].masked_fill(step < rows_min_len, NEG_INF)
        if opts.max_attention_shift is not None and attention is not None and running.peak is not None:
            jumped = (attention.argmax(dim=-1) - running.peak).abs() > opts.max_attention_shift
            weighted.masked_fill_(jumped.unsqueeze(1), NEG_INF)

    def _candidates(self, weighted: torch.Tensor) -> torch.Tensor:
        """(N, K) tokens that partial scorers will score: the pre-beam, or every token.

        The pre-beam is ranked by the weighted full scores; with no full scorer of nonzero weight (pure CTC)
        those are all zero and would pick an arbitrary subset, so then every token is scored.
        """
        vocab = weighted.size(1)
        k = self.options.candidates_per_hypothesis
        ranked = any(self.weights[name] != 0.0 for name in self.full)
        if self.partial and ranked and k < vocab:
            return weighted.topk(k, dim=1).indices
        return torch.arange(vocab, device=weighted.device).expand(weighted.size(0), vocab)

    def _select(
        self, running: _Running, s: _StepScores, step: int, rows_max_len: torch.Tensor
    ) -> tuple[_Running, StepRecord]:
        """Keep the best W candidates per utterance; reorder states; record what ended."""
        beam = self.options.beam_size
        n, k = s.candidates.shape
        total = (running.scores.unsqueeze(1) + s.combined).view(-1, beam * k)  # (B, W·K)
        scores, flat = total.topk(beam, dim=1)
        first_row = torch.arange(0, n, beam, device=flat.device).unsqueeze(1)
        parent = (first_row + torch.div(flat, k, rounding_mode="floor")).view(n)
        choice = (flat % k).view(n)
        token = s.candidates[parent, choice]
        totals = {}
        states = {}
        # With one beam the parent of row i is row i: skip copying the (large) decoder states.
        identity = beam == 1
        for name, scorer in self.full.items():
            totals[name] = running.totals[name][parent] + s.full[name][parent, token]
            states[name] = s.states[name] if identity else scorer.select_state(s.states[name], parent)
        for name, scorer in self.partial.items():
            totals[name] = running.totals[name][parent] + s.partial[name][parent, choice]
            states[name] = scorer.select_state(s.states[name], parent, choice)
        record = self._record(parent, parent, token, scores.view(n), totals, s, step, rows_max_len)
        new = _Running(
            scores=record.score.masked_fill(record.ended, NEG_INF),
            tokens=torch.cat([running.tokens[parent], token.unsqueeze(1)], dim=1),
            states=states,
            totals=totals,
            peak=None if record.attention is None else record.attention.argmax(dim=-1),
        )
        return new, record

    def _record(
        self,
        parent: torch.Tensor,
        source: torch.Tensor,
        token: torch.Tensor,
        scores: torch.Tensor,
        totals: dict[str, torch.Tensor],
        s: _StepScores,
        step: int,
        max_len: torch.Tensor,
    ) -> StepRecord:
        """The step's record: ``parent`` as the record lays rows out, ``source`` the running row scored."""
        alive = torch.isfinite(scores)
        ended = ((token == self.eos) | (step >= max_len - 1)) & alive
        final = scores / (step + 1) if self.options.length_normalization else scores
        attention = None if s.attention is None else s.attention[source]
        return StepRecord(parent, token, ended, scores, final, totals, attention)

    def _select_pruned(
        self,
        running: _Running,
        s: _StepScores,
        step: int,
        rows: torch.Tensor,
        max_len: torch.Tensor,
        detector: EndDetector,
    ) -> tuple[_Running, StepRecord, torch.Tensor]:
        """``_select`` with hypothesis pruning: the running rows are any subset ``rows`` of the batch's B·W.

        Candidates are laid out over all B·W rows (missing ones −inf), the best W per utterance are chosen
        as without pruning, then only those alive, not ended, not finished and within ``score_beam`` of
        their utterance's best new score go on. Returns the new running rows, the record (over all B·W rows)
        and the batch rows of the new running rows.
        """
        beam, total = self.options.beam_size, max_len.numel()
        k = s.candidates.size(1)
        scored = running.scores.unsqueeze(1) + s.combined  # (n, K)
        layout = scored.new_full((total, k), NEG_INF).index_copy_(0, rows, scored)
        scores, flat = layout.view(-1, beam * k).topk(beam, dim=1)
        first_row = torch.arange(0, total, beam, device=flat.device).unsqueeze(1)
        parent = (first_row + torch.div(flat, k, rounding_mode="floor")).view(total)
        choice = (flat % k).view(total)
        # Batch row -> running row (rows that are not running only ever carry −inf: any index will do).
        source = torch.zeros(total, dtype=torch.long, device=rows.device).index_copy_(
            0, rows, torch.arange(rows.numel(), device=rows.device)
        )[parent]
        token = s.candidates[source, choice]
        totals = {name: running.totals[name][source] + s.full[name][source, token] for name in self.full}
        for name in self.partial:
            totals[name] = running.totals[name][source] + s.partial[name][source, choice]
        record = self._record(parent, source, token, scores.view(total), totals, s, step, max_len)
        best = scores.max(dim=1, keepdim=True).values
        near = (scores >= best - self.options.score_beam).view(total)
        keep = torch.nonzero(near & ~record.ended & torch.isfinite(record.score) & ~detector.finished_rows())
        keep = keep.squeeze(1)  # one host sync: the new running rows
        src, chosen = source[keep], choice[keep]
        states = {name: scorer.select_rows(s.states[name], src) for name, scorer in self.full.items()}  # type: ignore[attr-defined]
        for name, scorer in self.partial.items():
            states[name] = scorer.select_state(s.states[name], src, chosen)
        new = _Running(
            scores=record.score[keep],
            tokens=torch.cat([running.tokens[src], token[keep].unsqueeze(1)], dim=1),
            states=states,
            totals={name: t[keep] for name, t in totals.items()},
            peak=None if record.attention is None else record.attention[keep].argmax(dim=-1),
        )
        return new, record, keep


def build_beam_search(
    options: DecodingOptions,
    decoder: Any = None,
    lm: Any = None,
    use_ctc: bool | None = None,
    vocab_size: int | None = None,
    eos: int = EOS_ID,
    blank: int = BLANK_ID,
) -> BeamSearch:
    """A :class:`BeamSearch` over the scorers ``decoder`` / ``ctc`` / ``lm`` weighted from ``options``.

    Args:
        options: beam size, λ (``ctc_weight``), β (``lm_weight``), bonus, limits.
        decoder: an attention decoder of :mod:`speechseq.nn` (``init_state`` / ``step``), or None.
        lm: a language model with ``init_state`` / ``step`` (e.g. ``RNNLM``), or None.
        use_ctc: add the CTC prefix scorer; by default when ``ctc_weight > 0`` or there is no decoder.
            The search inputs must then carry ``ctc_log_probs``.
        vocab_size: V, needed only without a decoder and LM.

    >>> from speechseq.models.lm import LMConfig, RNNLM
    >>> lm = RNNLM(LMConfig(vocab_size=5, embedding_dim=4, hidden_size=4, num_layers=1))
    >>> search = build_beam_search(DecodingOptions(beam_size=4, lm_weight=0.5), lm=lm, vocab_size=5)
    >>> sorted(search.weights.items())
    [('ctc', 1.0), ('lm', 0.5)]
    """
    use_ctc = (options.ctc_weight > 0 or decoder is None) if use_ctc is None else use_ctc
    scorers: dict[str, Any] = {}
    weights: dict[str, float] = {}
    if decoder is not None:
        scorers["decoder"], weights["decoder"] = DecoderScorer(decoder), 1.0 - options.ctc_weight
    if use_ctc:
        scorers["ctc"] = CTCPrefixScorer(blank=blank, eos=eos, window=options.ctc_window)
        weights["ctc"] = options.ctc_weight if decoder is not None else 1.0
    if lm is not None:
        scorers["lm"], weights["lm"] = LMScorer(lm), options.lm_weight
    if decoder is None and not use_ctc:
        raise ScorerInputError("build_beam_search needs a decoder or CTC (an LM alone cannot hear the audio)")
    return BeamSearch(scorers, weights, options, vocab_size=vocab_size, eos=eos, blank=blank)


def ctc_beam_search(
    log_probs: torch.Tensor,
    lengths: torch.Tensor,
    options: DecodingOptions,
    lm: Any = None,
) -> list[DecodingResult]:
    """CTC prefix beam search (optionally with an LM) for CTC-only models.

    Args:
        log_probs: (B, T, V) CTC log-posteriors; lengths: (B,) valid frames.
        options: ``beam_size``, ``lm_weight``, ``length_bonus``, ``nbest``, ... (``ctc_weight`` is ignored).

    >>> lp = torch.tensor([[[.1, 0, 0, .8, .1], [.8, 0, 0, .1, .1], [.1, 0, 0, .1, .8]]]).clamp(1e-6).log()
    >>> ctc_beam_search(lp, torch.tensor([3]), DecodingOptions(beam_size=4))[0].tokens
    [3, 4]
    """
    search = build_beam_search(options, lm=lm, use_ctc=True, vocab_size=log_probs.size(-1))
    return search(EncoderOutput(None, lengths, log_probs))
