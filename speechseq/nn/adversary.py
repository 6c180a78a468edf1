"""Speaker-adversarial training: a frame-level speaker classifier behind a gradient reversal layer.

With few training speakers an encoder learns their voices along with the words. Speaker-invariant
training (Meng et al. 2018, after Ganin & Lempitsky's domain-adversarial training, 2015) adds a small
classifier that predicts the speaker of every encoder frame. The classifier minimises its cross-entropy;
between it and the encoder sits a gradient reversal layer, so the encoder receives the *negated* gradient,
scaled by ``weight``, and learns states from which the speaker is hard to tell.

It is a minimax game, and it does not remove the speaker from the states: the encoder learns to fool the
classifier it trains against (whose accuracy stays low, ``tests/test_adversary.py``), but on a toy task a
fresh classifier trained afterwards on the same states still told the speakers apart, as Elazar &
Goldberg (2018) found for text. What it changes in a recogniser must be measured (``tasks/las/fsdd_experiments.md``).

The classifier is a training-time head only: decoding never calls it. A model fine-tuned with it starts
the head from fresh weights (the pretrained model has none; see ``fresh_prefixes`` of
:class:`speechseq.hub.PretrainedModel`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

from speechseq.errors import ConfigError
from speechseq.nn.masking import lengths_to_mask


@dataclass
class SpeakerAdversaryConfig:
    """``model.adversary.*``.

    Attributes:
        weight: scale of the reversed gradient the encoder receives (0 turns the adversary off, the default).
        speakers: the training speakers, the classifier's classes; filled from the training data by the
            recipe when left empty.
        hidden_size: width of the classifier's hidden layer.
    """

    weight: float = 0.0
    speakers: list[str] = field(default_factory=list)
    hidden_size: int = 128

    def check(self) -> None:
        """Raise :class:`ConfigError` naming the key of a bad setting."""
        if self.weight < 0:
            raise ConfigError(f"model.adversary.weight must be >= 0, got {self.weight}")
        if self.hidden_size < 1:
            raise ConfigError(f"model.adversary.hidden_size must be >= 1, got {self.hidden_size}")
        if self.weight > 0 and len(self.speakers) < 2:
            raise ConfigError(
                f"model.adversary.speakers: the adversary needs at least two training speakers, got {self.speakers}"
            )
        if len(set(self.speakers)) != len(self.speakers) or "" in self.speakers:
            raise ConfigError(f"model.adversary.speakers must be distinct, non-empty names, got {self.speakers}")


class _ReverseGradient(torch.autograd.Function):
    """Identity forward; the gradient times ``-scale`` backward."""

    @staticmethod
    def forward(ctx, inputs: torch.Tensor, scale: float) -> torch.Tensor:  # type: ignore[override]
        ctx.scale = scale
        return inputs.view_as(inputs)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return -ctx.scale * grad, None


def reverse_gradient(inputs: torch.Tensor, scale: float) -> torch.Tensor:
    """``inputs`` unchanged; in the backward pass the gradient is multiplied by ``-scale``.

    >>> x = torch.ones(2, requires_grad=True)
    >>> (3 * reverse_gradient(x, 0.5)).sum().backward()
    >>> x.grad
    tensor([-1.5000, -1.5000])
    """
    return _ReverseGradient.apply(inputs, scale)


@dataclass
class AdversaryOutput:
    """loss: mean cross-entropy over the valid frames; accuracy: fraction of them classified right."""

    loss: torch.Tensor
    accuracy: float


class SpeakerAdversary(nn.Module):
    """Frame-level speaker classifier behind a gradient reversal layer.

    ``forward(memory (B,T,D), lengths (B,), speakers: B names) -> AdversaryOutput``.

    Example:
        >>> head = SpeakerAdversary(SpeakerAdversaryConfig(weight=1.0, speakers=["a", "b"], hidden_size=4), 3)
        >>> out = head(torch.randn(2, 5, 3), torch.tensor([5, 2]), ["a", "b"])
        >>> 0.0 <= out.accuracy <= 1.0, out.loss.item() > 0
        (True, True)
    """

    def __init__(self, config: SpeakerAdversaryConfig, input_dim: int) -> None:
        super().__init__()
        config.check()
        self.config = config
        self.index = {name: i for i, name in enumerate(config.speakers)}
        self.classifier = nn.Sequential(
            nn.Linear(input_dim, config.hidden_size), nn.ReLU(), nn.Linear(config.hidden_size, len(config.speakers))
        )

    def labels(self, speakers: Sequence[str], device: torch.device) -> torch.Tensor:
        """(B,) class ids of the batch's speaker names; an unknown name is a :class:`ConfigError`."""
        unknown = sorted({s for s in speakers if s not in self.index})
        if unknown:
            raise ConfigError(
                f"model.adversary.speakers {self.config.speakers} lacks the training speakers {unknown}"
            )
        return torch.tensor([self.index[s] for s in speakers], dtype=torch.long, device=device)

    def forward(self, memory: torch.Tensor, lengths: torch.Tensor, speakers: Sequence[str]) -> AdversaryOutput:
        """Classify every valid frame of ``memory`` as its utterance's speaker (padding frames excluded)."""
        logits = self.classifier(reverse_gradient(memory, self.config.weight)).float()  # (B, T, S)
        mask = lengths_to_mask(lengths, memory.size(1))  # (B, T)
        targets = self.labels(speakers, memory.device).unsqueeze(1).expand(-1, memory.size(1))
        per_frame = nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
        frames = mask.sum().clamp(min=1)
        right = (logits.argmax(-1) == targets) & mask
        return AdversaryOutput(loss=(per_frame * mask).sum() / frames, accuracy=float(right.sum() / frames))
