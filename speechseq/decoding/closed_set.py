"""Closed-set decoding: score a fixed list of allowed transcripts instead of searching.

Where the output can only be one of a few known phrases (spoken digits, commands, a keyword list), the
best decoding is to score every allowed transcript with the same combination the beam search uses,
``(1−λ)·log p_att + λ·log p_CTC + β·log p_LM + bonus·(length + 1)``, and rank them. Each score is exact:
the attention decoder is teacher-forced through the whole candidate (its ``<eos>`` included), the CTC score
is the full-sequence ``log p_CTC(y | x)`` (the CTC loss, negated), and the LM scores the sentence with its
``<eos>``. The same numbers as the beam search's for a hypothesis it finds (``tests/test_closed_set.py``).

>>> import torch
>>> from speechseq.decoding import DecodingOptions, EncoderOutput
>>> probs = torch.tensor([[[0.1, 0.0, 0.0, 0.8, 0.1], [0.7, 0.0, 0.0, 0.1, 0.2]]])  # (B=1, T=2, V=5)
>>> ctc_only = EncoderOutput(None, torch.tensor([2]), probs.clamp(min=1e-9).log())
>>> (result,) = closed_set_decode(None, ctc_only, [[4], [3], [3, 4]], DecodingOptions(ctc_weight=1.0, beam_size=3, nbest=3))
>>> [(h.tokens, round(h.score, 3)) for h in result.hypotheses]   # p(a) = .8·.7 + .8·.1 + .1·.1, p(ab) = .8·.2
[([3], -0.431), ([3, 4], -1.833), ([4], -2.207)]
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from speechseq.decoding.options import BLANK_ID, EOS_ID, DecodingOptions, DecodingResult, EncoderOutput, Hypothesis
from speechseq.errors import ConfigError


def check_candidates(candidates: Sequence[Sequence[int]], vocab_size: int) -> list[list[int]]:
    """``candidates`` as lists of ints, refusing an empty list, an empty candidate or ids out of range.

    Token 0 (blank/pad) and ``<sos>/<eos>`` are not transcript tokens, so they are refused too.
    """
    out = [list(map(int, c)) for c in candidates]
    if not out:
        raise ConfigError("closed-set decoding needs at least one candidate transcript")
    for i, cand in enumerate(out):
        if not cand:
            raise ConfigError(f"candidate {i} is empty: every allowed transcript needs at least one token")
        bad = [t for t in cand if t in (BLANK_ID, EOS_ID) or not 0 <= t < vocab_size]
        if bad:
            raise ConfigError(f"candidate {i} has token ids {bad} that are not transcript tokens (vocab {vocab_size})")
    return out


def _pad(candidates: list[list[int]], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, L) token ids padded with 0 and their (K,) lengths."""
    lengths = torch.tensor([len(c) for c in candidates], device=device)
    tokens = torch.zeros(len(candidates), int(lengths.max()), dtype=torch.long, device=device)
    for k, cand in enumerate(candidates):
        tokens[k, : len(cand)] = torch.tensor(cand, device=device)
    return tokens, lengths


def decoder_scores(decoder: Any, inputs: EncoderOutput, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Teacher-forced ``log p_att(y <eos> | x)`` of every candidate for every utterance.

    Args:
        decoder: an attention decoder (``forward(tokens_in, memory, memory_lengths)`` -> logits (N, L+1, V)).
        inputs: the batch's encoder output, B utterances.
        tokens: (K, L) candidates padded with 0; lengths (K,).

    Returns:
        (B, K) summed log-probabilities, ``<eos>`` included.
    """
    batch, count = inputs.batch_size, tokens.size(0)
    memory = inputs.memory.repeat_interleave(count, dim=0)  # (B·K, T, D): utterance-major, as beams are
    memory_lengths = inputs.lengths.repeat_interleave(count)
    sos = torch.full((count, 1), EOS_ID, dtype=torch.long, device=tokens.device)
    tokens_in = torch.cat([sos, tokens], dim=1).repeat(batch, 1)  # (B·K, L+1)
    targets = torch.cat([tokens, torch.zeros_like(sos)], dim=1)
    targets[torch.arange(count), lengths] = EOS_ID
    targets = targets.repeat(batch, 1)
    logits = decoder(tokens_in, memory, memory_lengths).logits.float()
    picked = logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B·K, L+1)
    valid = torch.arange(targets.size(1), device=tokens.device) <= lengths.repeat(batch).unsqueeze(1)
    return (picked * valid).sum(1).view(batch, count)


def ctc_scores(inputs: EncoderOutput, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Full-sequence ``log p_CTC(y | x)`` (B, K); −inf where a candidate cannot fit in the frames."""
    batch, count = inputs.batch_size, tokens.size(0)
    log_probs = inputs.ctc_log_probs.float().repeat_interleave(count, dim=0)  # (B·K, T, V)
    loss = nn.functional.ctc_loss(
        log_probs.transpose(0, 1), tokens.repeat(batch, 1), inputs.lengths.repeat_interleave(count),
        lengths.repeat(batch), blank=BLANK_ID, reduction="none", zero_infinity=False,
    )
    return -loss.view(batch, count)


def lm_scores(lm: Any, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``log p_LM(y <eos>)`` of every candidate, (K,)."""
    return -lm(tokens, lengths).utterance_nll.float()


@torch.no_grad()
def closed_set_decode(
    decoder: Any, inputs: EncoderOutput, candidates: Sequence[Sequence[int]], options: DecodingOptions, lm: Any = None
) -> list[DecodingResult]:
    """Rank the allowed transcripts ``candidates`` for every utterance of a batch.

    The score of a candidate y of length L is ``(1−λ)·att + λ·ctc + β·lm + bonus·(L+1)``, with λ, β and
    the bonus from ``options`` (``ctc_weight``, ``lm_weight``, ``length_bonus``; ``length_normalization``
    divides by L+1). The search settings (beam size, length limits) do not apply: every candidate is scored.

    Args:
        decoder: the attention decoder (None when ``options.ctc_weight`` is 1).
        inputs: encoder output of B utterances (``ctc_log_probs`` needed when λ > 0).
        candidates: K token-id sequences without specials.
        options: the weights; ``options.nbest`` candidates are returned (all of them when nbest ≥ K).
        lm: a language model with ``forward(tokens, lengths).utterance_nll`` (needed when β > 0).

    Returns:
        One :class:`DecodingResult` per utterance, its hypotheses best first, each with the unweighted
        ``scores`` of every scorer (``decoder``, ``ctc``, ``lm``).
    """
    inputs = EncoderOutput.coerce(inputs)
    weights = {"decoder": 1.0 - options.ctc_weight, "ctc": options.ctc_weight, "lm": options.lm_weight}
    if weights["decoder"] > 0 and decoder is None:
        raise ConfigError("closed-set decoding with ctc_weight < 1 needs the attention decoder")
    if weights["ctc"] > 0 and inputs.ctc_log_probs is None:
        raise ConfigError("closed-set decoding with ctc_weight > 0 needs CTC log-probabilities (a CTC head)")
    if weights["lm"] > 0 and lm is None:
        raise ConfigError("closed-set decoding with lm_weight > 0 needs a language model")
    # The output vocabulary: the CTC head's, else the decoder's (every speechseq decoder has vocab_size).
    vocab = inputs.ctc_log_probs.size(-1) if inputs.ctc_log_probs is not None else decoder.vocab_size
    cands = check_candidates(candidates, vocab)
    tokens, lengths = _pad(cands, inputs.device)
    parts: dict[str, torch.Tensor] = {}
    if weights["decoder"] > 0:
        parts["decoder"] = decoder_scores(decoder, inputs, tokens, lengths)
    if weights["ctc"] > 0:
        parts["ctc"] = ctc_scores(inputs, tokens, lengths)
    if weights["lm"] > 0:
        parts["lm"] = lm_scores(lm, tokens, lengths).unsqueeze(0).expand(inputs.batch_size, -1)
    steps = (lengths + 1).float()
    total = sum(weights[name] * score for name, score in parts.items()) + options.length_bonus * steps
    if options.length_normalization:
        total = total / steps
    results = []
    for b in range(inputs.batch_size):
        order = torch.argsort(total[b], descending=True, stable=True)[: options.nbest].tolist()
        results.append(DecodingResult([
            Hypothesis(cands[k], float(total[b, k]), {name: float(s[b, k]) for name, s in parts.items()})
            for k in order
        ]))
    return results
