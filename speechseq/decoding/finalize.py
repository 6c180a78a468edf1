"""The end of a batched beam search: when an utterance is finished, and its N-best list afterwards.

An utterance is finished when any of these holds (each checked for all utterances at once, on the device):

* no running hypothesis is left (all ended with eos or were pruned);
* its maximum output length is reached;
* ``nbest`` hypotheses have ended with a better score than every running one, and scores can only
  fall (no positive length bonus, no length normalisation): the N-best list can no longer change;
* ESPnet's ``end_detect`` (Watanabe et al. 2017): in each of the last ``end_detect_steps`` steps some
  hypothesis ended, and the best of each of those steps is ``end_detect_margin`` (log score) below the best
  ended hypothesis so far: longer outputs keep getting much worse, so the search is over.

Each step stores O(N) back-pointers (parent row, token, whether the row ended, its scores) instead of
copying every hypothesis: sequences and attention maps are rebuilt once, on the CPU, after the loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from speechseq.decoding.options import DecodingOptions, DecodingResult, Hypothesis


class EndDetector:
    """Tracks ended hypotheses per utterance and decides which utterances are finished.

    Args:
        max_len: (B,) output length limit per utterance (eos included).
        beam_size: running hypotheses per utterance (W).
        options: end-detection settings (``end_detect_steps``, ``end_detect_margin``), ``nbest`` and
            whether scores are monotone (``length_bonus``, ``length_normalization``).

    >>> det = EndDetector(torch.tensor([5]), 2, DecodingOptions(beam_size=2))
    >>> ended, scores = torch.tensor([True, True]), torch.tensor([-1.0, -2.0])
    >>> bool(det.update(0, ended, scores, alive=torch.tensor([False, False])))   # nothing left running
    True
    """

    def __init__(self, max_len: torch.Tensor, beam_size: int, options: DecodingOptions) -> None:
        self.max_len = max_len
        self.beam_size = beam_size
        self.steps = options.end_detect_steps
        self.margin = options.end_detect_margin
        batch = max_len.numel()
        device = max_len.device
        self.finished = torch.zeros(batch, dtype=torch.bool, device=device)
        self.best_ended = torch.full((batch,), float("-inf"), device=device)
        # Every score term is a log-probability (<= 0), so a running hypothesis can only get worse, unless
        # a bonus is added per token or ended hypotheses are ranked by score / length.
        self.monotone = options.length_bonus <= 0 and not options.length_normalization
        self.top_ended = torch.full((batch, options.nbest), float("-inf"), device=device)
        self.recent: list[torch.Tensor] = []  # best score ended at each of the last steps, (B,) each

    def finished_rows(self) -> torch.Tensor:
        """(B·W,) bool: rows of utterances that are finished (their hypotheses stop growing)."""
        return self.finished.repeat_interleave(self.beam_size)

    def update(self, step: int, ended: torch.Tensor, scores: torch.Tensor, alive: torch.Tensor) -> bool:
        """Record one step and say whether every utterance is finished.

        Args:
            step: 0-based step index (the step's tokens are output position ``step``).
            ended: (B·W,) rows that ended at this step.
            scores: (B·W,) their raw (unnormalised) total scores.
            alive: (B·W,) rows still running after this step.

        Returns:
            True when all utterances are finished (one host sync).
        """
        shape = (-1, self.beam_size)
        neg_inf = torch.full_like(scores, float("-inf"))
        ended_scores = torch.where(ended, scores, neg_inf).view(shape)  # (B, W)
        step_best = ended_scores.max(dim=1).values
        self.best_ended = torch.maximum(self.best_ended, step_best)
        done = ~alive.view(shape).any(dim=1)
        done |= step >= self.max_len - 1
        if self.monotone:
            nbest = self.top_ended.size(1)
            self.top_ended = torch.cat([self.top_ended, ended_scores], dim=1).topk(nbest, dim=1).values
            best_running = torch.where(alive, scores, neg_inf).view(shape).max(dim=1).values
            done |= self.top_ended[:, -1] >= best_running
        if self.steps > 0:
            self.recent = (self.recent + [step_best])[-self.steps :]
            if len(self.recent) == self.steps:
                recent = torch.stack(self.recent)  # (M, B)
                much_worse = torch.isfinite(recent) & (recent - self.best_ended < -self.margin)
                done |= much_worse.all(dim=0)
        self.finished |= done
        return bool(self.finished.all())


@dataclass
class StepRecord:
    """What one search step decided, rows N = B·W in the new order.

    Attributes:
        parent: (N,) row of the previous step each new row extends.
        token: (N,) token appended.
        ended: (N,) rows that ended here (eos, or the length limit).
        score: (N,) weighted total score of every row (−inf for dead rows).
        final: (N,) ranking score of those rows (length-normalised when asked).
        totals: per scorer, (N,) unweighted cumulative log-probs.
        attention: (N, T) attention weights behind each new token, or None.
    """

    parent: torch.Tensor
    token: torch.Tensor
    ended: torch.Tensor
    score: torch.Tensor
    final: torch.Tensor
    totals: dict[str, torch.Tensor]
    attention: torch.Tensor | None

    def spread(self, rows: torch.Tensor, total: int) -> "StepRecord":
        """This record, made over the running rows only, laid out over all ``total`` rows of the batch:
        running row i is batch row ``rows[i]``; the other rows (finished utterances) neither extend nor end.
        """
        if rows.numel() == total:
            return self
        parent = torch.arange(total, device=rows.device).index_copy(0, rows, rows[self.parent])

        def put(x: torch.Tensor, fill: float | bool | int) -> torch.Tensor:
            out = x.new_full((total, *x.shape[1:]), fill)
            return out.index_copy(0, rows, x)

        attention = None if self.attention is None else put(self.attention, 0.0)
        return StepRecord(
            parent, put(self.token, 0), put(self.ended, False), put(self.score, float("-inf")),
            put(self.final, float("-inf")), {n: put(t, 0.0) for n, t in self.totals.items()}, attention,
        )


@dataclass
class _History:
    """All steps stacked on the CPU: (S, N) tensors, attention (S, N, T) or None."""

    parent: torch.Tensor
    token: torch.Tensor
    ended: torch.Tensor
    final: torch.Tensor
    totals: dict[str, torch.Tensor]
    attention: torch.Tensor | None

    @classmethod
    def stack(cls, records: list[StepRecord]) -> "_History":
        def cat(name: str) -> torch.Tensor:
            return torch.stack([getattr(r, name) for r in records]).cpu()

        names = list(records[0].totals)
        totals = {n: torch.stack([r.totals[n] for r in records]).float().cpu() for n in names}
        has_attention = all(r.attention is not None for r in records)
        attention = torch.stack([r.attention for r in records]).float().cpu() if has_attention else None  # type: ignore[misc]
        return cls(cat("parent"), cat("token"), cat("ended"), cat("final").float(), totals, attention)


def collect_nbest(
    records: list[StepRecord],
    input_lengths: torch.Tensor,
    beam_size: int,
    nbest: int,
    eos: int,
) -> list[DecodingResult]:
    """The ``nbest`` best ended hypotheses of every utterance, best first.

    Args:
        records: one per search step.
        input_lengths: (B,) encoder frames (attention maps are trimmed to them).
        beam_size: W; rows ``b·W .. b·W+W−1`` belong to utterance b.
        nbest: hypotheses kept per utterance.
        eos: id removed from the end of the returned token lists.
    """
    batch = input_lengths.numel()
    if not records:
        return [DecodingResult([Hypothesis([], float("-inf"), ended=False)]) for _ in range(batch)]
    history = _History.stack(records)
    lengths = input_lengths.cpu().tolist()
    results = []
    for b in range(batch):
        rows = slice(b * beam_size, (b + 1) * beam_size)
        steps, slots = torch.nonzero(history.ended[:, rows], as_tuple=True)
        finals = history.final[steps, slots + b * beam_size]
        # Best score first; ties by earlier step then lower slot, so batching never changes the order.
        order = sorted(range(len(finals)), key=lambda i: (-float(finals[i]), int(steps[i]), int(slots[i])))
        hyps = [
            _trace(history, int(steps[i]), int(slots[i]) + b * beam_size, float(finals[i]), lengths[b], eos)
            for i in order[:nbest]
        ]
        results.append(DecodingResult(hyps or [Hypothesis([], float("-inf"), ended=False)]))
    return results


def _trace(history: _History, step: int, row: int, score: float, frames: int, eos: int) -> Hypothesis:
    """Follow the back-pointers from (step, row) to the first step."""
    scores = {name: float(values[step, row]) for name, values in history.totals.items()}
    tokens, attention_rows = [], []
    for s in range(step, -1, -1):
        tokens.append(int(history.token[s, row]))
        if history.attention is not None:
            attention_rows.append(history.attention[s, row, :frames])
        row = int(history.parent[s, row])
    tokens.reverse()
    attention_rows.reverse()
    ended = tokens[-1] == eos
    if ended:
        tokens = tokens[:-1]
    attention = torch.stack(attention_rows) if attention_rows else None
    return Hypothesis(tokens=tokens, score=score, scores=scores, attention=attention, ended=ended)
