"""CTC baseline ASR: log-mel → utterance normalisation → SpecAugment (training) → ConvBiLSTM → linear → CTC.

The model predicts one distribution over the vocabulary per encoder frame, and CTC sums over every
alignment of the transcript to the frames (Graves et al., 2006). Outputs are conditionally independent given
the audio, which is the limit the attention models (LAS, Transformer) improve on; greedy decoding is the
per-frame argmax with repeats merged and blanks (id 0) removed.

The model takes raw waveforms at ``feature_config.sample_rate``: the front end is part of the module, so a
saved model carries its features and cannot be fed mismatched ones.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from speechseq.errors import ConfigError
from speechseq.features import FeatureConfig, LogMel, SpecAugment, SpecAugmentConfig, checkpointed_generator
from speechseq.hub import PretrainedModel
from speechseq.nn.encoders import ConvBiLSTMEncoder, ConvBiLSTMEncoderConfig
from speechseq.nn.masking import lengths_to_mask

BLANK_ID = 0


@dataclasses.dataclass
class CTCConfig:
    """Configuration of :class:`CTCModel` (``model.*`` of ``configs/ctc.yaml``).

    Attributes:
        vocab_size: output classes including the blank (set from the tokenizer by the recipe).
        encoder: ConvBiLSTM encoder; ``input_dim`` is set to the feature config's ``n_mels`` by the recipe.
        specaugment: masking policy applied to the features in training mode.
        use_specaugment: turn SpecAugment on/off.
        dropout: dropout on the encoder output before the CTC head.
    """

    vocab_size: int = 0
    encoder: ConvBiLSTMEncoderConfig = dataclasses.field(default_factory=ConvBiLSTMEncoderConfig)
    specaugment: SpecAugmentConfig = dataclasses.field(default_factory=SpecAugmentConfig)
    use_specaugment: bool = True
    dropout: float = 0.1


@dataclasses.dataclass
class CTCOutput:
    """Forward result.

    Attributes:
        log_probs: (B, T', V) log-softmax over the vocabulary per encoder frame.
        lengths: (B,) valid encoder frames.
        loss: mean CTC loss (each utterance's loss divided by its target length), when targets were given.
        utterance_loss: (B,) the same per utterance, when targets were given.
    """

    log_probs: torch.Tensor
    lengths: torch.Tensor
    loss: torch.Tensor | None = None
    utterance_loss: torch.Tensor | None = None


def normalize_utterances(
    features: torch.Tensor, lengths: torch.Tensor, eps: float = 1e-5, per_band: bool = True
) -> torch.Tensor:
    """Per-utterance mean/variance normalisation over the valid frames; padding becomes 0.

    Args:
        features: (B, T, F).
        lengths: (B,) valid frames.
        per_band: one mean and variance per bin (cepstral mean/variance normalisation); ``False`` uses one
            mean and variance over all the utterance's cells, which removes its gain but keeps its spectral
            envelope (per-bin normalisation of a one-word utterance subtracts the word's average spectrum).

    Returns:
        (B, T, F) normalised features, identical for an utterance alone or padded in a batch.
    """
    mask = lengths_to_mask(lengths, features.size(1)).unsqueeze(-1).to(features.dtype)  # (B, T, 1)
    dims = (1,) if per_band else (1, 2)
    count = lengths.clamp(min=1).to(features.dtype).view(-1, 1, 1) * (1 if per_band else features.size(2))
    mean = (features * mask).sum(dims, keepdim=True) / count
    var = (((features - mean) * mask) ** 2).sum(dims, keepdim=True) / count
    return (features - mean) / torch.sqrt(var + eps) * mask


def ctc_greedy(log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
    """Best path decoding: per-frame argmax, repeats merged, blanks dropped.

    Args:
        log_probs: (B, T, V) scores (any monotone transform of the posteriors).
        lengths: (B,) valid frames.

    Returns:
        One list of token ids per utterance.

    >>> lp = torch.log(torch.tensor([[[.1, .9, 0], [.1, .9, 0], [.9, .1, 0], [.1, .9, 0], [.1, 0, .9]]]))
    >>> ctc_greedy(lp, torch.tensor([5]))
    [[1, 1, 2]]
    """
    best = log_probs.argmax(dim=-1).cpu()  # (B, T)
    keep = torch.ones_like(best, dtype=torch.bool)
    keep[:, 1:] = best[:, 1:] != best[:, :-1]  # first frame of every run
    keep &= best != BLANK_ID
    keep &= lengths_to_mask(lengths.cpu(), best.size(1))
    return [row[mask].tolist() for row, mask in zip(best, keep)]


class CTCModel(PretrainedModel):
    """Waveform-to-characters CTC model (``family = "ctc"``).

    ``forward(wave (B,S), wave_lengths (B,), tokens (B,L) | None, token_lengths (B,) | None) -> CTCOutput``.

    Example:
        >>> from speechseq.text import CharTokenizer
        >>> tok = CharTokenizer.from_texts(["yes", "no"])
        >>> enc = ConvBiLSTMEncoderConfig(input_dim=40, conv_channels=16, hidden_size=8, num_layers=1)
        >>> feats = dataclasses.replace(FeatureConfig.asr_16k(), n_mels=40)
        >>> model = CTCModel(CTCConfig(vocab_size=tok.vocab_size, encoder=enc), feats, tok).eval()
        >>> out = model(torch.randn(2, 16000), torch.tensor([16000, 8000]))
        >>> tuple(out.log_probs.shape), out.lengths.tolist()
        ((2, 26, 8), [26, 13])
        >>> len(model.transcribe([np.zeros(8000, dtype=np.float32)]))
        1
    """

    family = "ctc"
    config_class = CTCConfig

    def __init__(self, config: CTCConfig, feature_config: FeatureConfig | None = None, tokenizer: Any = None):
        super().__init__(config, feature_config or FeatureConfig.asr_16k(), tokenizer)
        if config.vocab_size < 2:
            raise ConfigError(f"model.vocab_size must be >= 2 (blank + symbols), got {config.vocab_size}")
        if config.encoder.input_dim != self.feature_config.n_mels:
            raise ConfigError(
                f"model.encoder.input_dim ({config.encoder.input_dim}) must equal features.n_mels "
                f"({self.feature_config.n_mels})"
            )
        self.frontend = LogMel(self.feature_config)
        self.specaugment = SpecAugment(config.specaugment) if config.use_specaugment else None
        self.encoder = ConvBiLSTMEncoder(config.encoder)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(self.encoder.output_dim, config.vocab_size)

    def _augment(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.specaugment is None or not self.training:
            return features
        # Not the module's own generator: that one is not checkpointed, the global RNG is.
        return self.specaugment(features, lengths, generator=checkpointed_generator())

    def forward(
        self,
        wave: torch.Tensor,
        wave_lengths: torch.Tensor,
        tokens: torch.Tensor | None = None,
        token_lengths: torch.Tensor | None = None,
    ) -> CTCOutput:
        features, frames = self.frontend(wave, wave_lengths)  # (B, T, n_mels)
        features = self._augment(normalize_utterances(features, frames), frames)
        states, lengths = self.encoder(features, frames)  # (B, T', D)
        log_probs = self.head(self.dropout(states)).float().log_softmax(dim=-1)  # (B, T', V)
        if tokens is None:
            return CTCOutput(log_probs, lengths)
        assert token_lengths is not None, "tokens need token_lengths"
        per_utt = nn.functional.ctc_loss(
            log_probs.transpose(0, 1),  # (T', B, V) as torch wants
            tokens,
            lengths,
            token_lengths,
            blank=BLANK_ID,
            reduction="none",
            zero_infinity=True,  # an utterance too short for its transcript gives 0, not inf
        ) / token_lengths.clamp(min=1).to(log_probs.dtype)
        return CTCOutput(log_probs, lengths, per_utt.mean(), per_utt)

    @torch.no_grad()
    def decode(self, wave: torch.Tensor, wave_lengths: torch.Tensor) -> list[list[int]]:
        """Greedy token ids per utterance of a padded batch ``wave (B,S)``, ``wave_lengths (B,)``."""
        out = self(wave, wave_lengths)
        return ctc_greedy(out.log_probs, out.lengths)

    @torch.no_grad()
    def transcribe(self, waves: Sequence[np.ndarray], sample_rate: int | None = None) -> list[str]:
        """Transcripts of 1-D waveforms (resampled from ``sample_rate`` when it differs from the model's)."""
        from speechseq.audio import resample
        from speechseq.data.collate import pad_waves

        if self.tokenizer is None:
            raise ConfigError("this CTCModel has no tokenizer; use decode() for token ids")
        rate = self.feature_config.sample_rate
        if sample_rate is not None and sample_rate != rate:
            waves = [resample(np.asarray(w, dtype=np.float32), sample_rate, rate) for w in waves]
        wave, lengths = pad_waves(list(waves))
        device = next(self.parameters()).device
        ids = self.decode(wave.to(device), lengths.to(device))
        return [self.tokenizer.decode(seq) for seq in ids]
