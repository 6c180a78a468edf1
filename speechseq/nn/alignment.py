"""Alignment priors and scores for attention matrices (B, L output steps, T input frames).

``guided_attention_loss`` is the diagonal prior of Tachibana et al. (2018): attention mass far from the
diagonal ``l/L = t/T`` is penalised by ``1 - exp(-(l/L - t/T)^2 / (2 sigma^2))``. ``alignment_scores``
measures how usable an alignment is: its mass near the diagonal, its sharpness (mean max weight) and the
share of steps whose peak does not move backwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from speechseq.nn.masking import lengths_to_mask


def diagonal_prior(
    output_lengths: torch.Tensor, input_lengths: torch.Tensor, max_output: int, max_input: int, sigma: float = 0.2
) -> torch.Tensor:
    """Gaussian band ``exp(-(l/L - t/T)^2 / (2 sigma^2))`` per utterance, zero outside its lengths.

    Positions are frame centres, ``(l + 0.5) / L``, so the band is symmetric for any pair of lengths.

    Args:
        output_lengths: (B,) decoder lengths L.
        input_lengths: (B,) encoder lengths T.
        max_output, max_input: padded sizes of the attention matrix.
        sigma: width of the band in normalised units.

    Returns:
        (B, max_output, max_input) float tensor in [0, 1].

    >>> p = diagonal_prior(torch.tensor([2]), torch.tensor([2]), 2, 2)
    >>> p[0].diagonal().tolist()
    [1.0, 1.0]
    """
    steps = (torch.arange(max_output, device=output_lengths.device) + 0.5).unsqueeze(0)
    frames = (torch.arange(max_input, device=input_lengths.device) + 0.5).unsqueeze(0)
    rel_steps = steps / output_lengths.unsqueeze(1).float()  # (B, L)
    rel_frames = frames / input_lengths.unsqueeze(1).float()  # (B, T)
    distance = rel_steps.unsqueeze(2) - rel_frames.unsqueeze(1)
    prior = torch.exp(-distance.pow(2) / (2 * sigma**2))
    valid = lengths_to_mask(output_lengths, max_output).unsqueeze(2) & lengths_to_mask(input_lengths, max_input).unsqueeze(1)
    return prior * valid.to(prior.dtype)


def guided_attention_loss(
    weights: torch.Tensor, output_lengths: torch.Tensor, input_lengths: torch.Tensor, sigma: float = 0.2
) -> torch.Tensor:
    """Guided attention loss (Tachibana et al. 2018): mean of ``A * (1 - prior)`` over valid cells.

    Args:
        weights: (B, L, T) attention weights.
        output_lengths: (B,) valid steps per utterance.
        input_lengths: (B,) valid frames per utterance.
        sigma: band width g (0.2 in the paper).

    Returns:
        scalar loss; 0 for an alignment concentrated on the diagonal.

    >>> diag = torch.eye(8).unsqueeze(0)
    >>> lens = torch.tensor([8])
    >>> float(guided_attention_loss(diag, lens, lens))
    0.0
    """
    batch, max_output, max_input = weights.shape
    prior = diagonal_prior(output_lengths, input_lengths, max_output, max_input, sigma)
    valid = lengths_to_mask(output_lengths, max_output).unsqueeze(2) & lengths_to_mask(input_lengths, max_input).unsqueeze(1)
    penalty = weights * (1.0 - prior) * valid.to(weights.dtype)
    return penalty.sum() / valid.sum().clamp(min=1)


@dataclass
class AlignmentScores:
    """Per-utterance alignment quality, each (B,) in [0, 1] (higher is better).

    Attributes:
        diagonality: mean over steps of the attention mass inside the diagonal band (``diagonal_prior``).
        focus: mean over steps of the largest weight (1 = one frame per step).
        monotonicity: share of consecutive steps whose peak frame does not move backwards.
    """

    diagonality: torch.Tensor
    focus: torch.Tensor
    monotonicity: torch.Tensor

    def summary(self) -> dict[str, float]:
        """Batch means as plain floats, for logging."""
        return {name: float(getattr(self, name).mean()) for name in ("diagonality", "focus", "monotonicity")}


def alignment_scores(
    weights: torch.Tensor, output_lengths: torch.Tensor, input_lengths: torch.Tensor, sigma: float = 0.2
) -> AlignmentScores:
    """Score attention matrices ``weights`` (B, L, T) within each utterance's lengths.

    >>> s = alignment_scores(torch.eye(5).unsqueeze(0), torch.tensor([5]), torch.tensor([5]))
    >>> s.summary()
    {'diagonality': 1.0, 'focus': 1.0, 'monotonicity': 1.0}
    """
    weights = weights.detach()
    batch, max_output, max_input = weights.shape
    step_mask = lengths_to_mask(output_lengths, max_output).to(weights.dtype)  # (B, L)
    frame_mask = lengths_to_mask(input_lengths, max_input).unsqueeze(1).to(weights.dtype)
    weights = weights * frame_mask
    steps = output_lengths.clamp(min=1).to(weights.dtype)
    prior = diagonal_prior(output_lengths, input_lengths, max_output, max_input, sigma)
    diagonality = ((weights * prior).sum(-1) * step_mask).sum(-1) / steps
    focus = (weights.max(dim=-1).values * step_mask).sum(-1) / steps
    peaks = weights.argmax(dim=-1)  # (B, L)
    forward = (peaks[:, 1:] >= peaks[:, :-1]).to(weights.dtype) * step_mask[:, 1:]
    monotonicity = forward.sum(-1) / (output_lengths - 1).clamp(min=1).to(weights.dtype)
    monotonicity = torch.where(output_lengths > 1, monotonicity, torch.ones_like(monotonicity))
    return AlignmentScores(diagonality=diagonality, focus=focus, monotonicity=monotonicity)
