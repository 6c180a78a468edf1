"""Guided-attention loss and alignment scores."""

from __future__ import annotations

import torch

from speechseq.nn.alignment import alignment_scores, diagonal_prior, guided_attention_loss


def diagonal_alignment(steps: int, frames: int) -> torch.Tensor:
    """(steps, frames) one-hot alignment following the diagonal."""
    peaks = ((torch.arange(steps) + 0.5) * frames / steps).long().clamp(max=frames - 1)
    return torch.nn.functional.one_hot(peaks, frames).float()


def test_guided_loss_prefers_diagonal_over_random_and_reversed() -> None:
    steps, frames = 12, 30
    lengths_out, lengths_in = torch.tensor([steps]), torch.tensor([frames])
    diagonal = diagonal_alignment(steps, frames).unsqueeze(0)
    random = torch.softmax(3 * torch.randn(1, steps, frames, generator=torch.Generator().manual_seed(0)), -1)
    reversed_ = diagonal.flip(1)
    losses = [guided_attention_loss(a, lengths_out, lengths_in).item() for a in (diagonal, random, reversed_)]
    assert losses[0] < 0.1 * losses[1] and losses[1] < losses[2]


def test_guided_loss_ignores_padding_and_has_gradient() -> None:
    a = diagonal_alignment(6, 10)
    padded = torch.rand(2, 8, 15)
    padded[0, :6, :10] = a
    padded[1] = 0
    padded[1, :4, :5] = diagonal_alignment(4, 5)
    clean = padded.clone()
    clean[0, 6:], clean[0, :, 10:], clean[1, 4:], clean[1, :, 5:] = 0, 0, 0, 0
    out_lengths, in_lengths = torch.tensor([6, 4]), torch.tensor([10, 5])
    torch.testing.assert_close(
        guided_attention_loss(padded, out_lengths, in_lengths), guided_attention_loss(clean, out_lengths, in_lengths)
    )
    weights = torch.rand(1, 4, 5, requires_grad=True)
    guided_attention_loss(weights, torch.tensor([4]), torch.tensor([5])).backward()
    # The gradient is the penalty itself: zero-ish on the diagonal, largest in the far corners.
    assert weights.grad[0, 0, 4] > weights.grad[0, 0, 0]


def test_prior_is_zero_outside_lengths() -> None:
    prior = diagonal_prior(torch.tensor([3]), torch.tensor([4]), 5, 6)
    assert torch.all(prior[0, 3:] == 0) and torch.all(prior[0, :, 4:] == 0) and prior[0, 0, 0] > 0.9


def test_alignment_scores_rank_alignments() -> None:
    steps, frames = 10, 25
    lengths_out, lengths_in = torch.tensor([steps]), torch.tensor([frames])
    diagonal = alignment_scores(diagonal_alignment(steps, frames).unsqueeze(0), lengths_out, lengths_in)
    uniform = alignment_scores(torch.full((1, steps, frames), 1.0 / frames), lengths_out, lengths_in)
    reversed_ = alignment_scores(diagonal_alignment(steps, frames).flip(0).unsqueeze(0), lengths_out, lengths_in)
    assert diagonal.summary() == {"diagonality": diagonal.diagonality.item(), "focus": 1.0, "monotonicity": 1.0}
    assert diagonal.diagonality.item() > 0.95
    torch.testing.assert_close(uniform.focus, torch.tensor([1.0 / frames]))
    assert uniform.diagonality.item() < 0.6 < diagonal.diagonality.item()
    assert reversed_.monotonicity.item() == 0.0 and reversed_.diagonality.item() < 0.5


def test_alignment_scores_respect_lengths() -> None:
    """Scores of a padded batch equal the scores of each utterance alone."""
    a, b = diagonal_alignment(5, 9), torch.softmax(torch.randn(3, 4), -1)
    batch = torch.rand(2, 5, 9)  # garbage padding
    batch[0], batch[1, :3, :4] = a, b
    scores = alignment_scores(batch, torch.tensor([5, 3]), torch.tensor([9, 4]))
    alone = alignment_scores(b.unsqueeze(0), torch.tensor([3]), torch.tensor([4]))
    torch.testing.assert_close(scores.focus[1], alone.focus[0])
    torch.testing.assert_close(scores.diagonality[1], alone.diagonality[0])
    torch.testing.assert_close(scores.monotonicity[1], alone.monotonicity[0])
