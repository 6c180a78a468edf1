"""Attention encoder-decoder ASR: Listen, Attend and Spell, or a Transformer/Conformer encoder-decoder.

``model.backbone`` picks the pair:

* ``rnn``: pyramidal BiLSTM listener (8× shorter) + attention LSTM speller (location-aware attention by
  default; any kind of ``speechseq.nn.attention``), as in Chan et al. (2016);
* ``transformer`` / ``conformer``: Conv2d 4× subsampling + Transformer or Conformer encoder, and a
  Transformer decoder.

Every backbone has a CTC head on the encoder and is trained on ``a·L_CTC + (1−a)·L_att`` (Kim et al. 2017),
where ``L_att`` is label-smoothed cross-entropy of the next token, ``a = ctc_weight``. The model takes raw
waveforms: log-mel → random frequency warp (training, off by default) → per-utterance normalisation →
SpecAugment (training) → encoder. Scheduled sampling (Bengio et al. 2015) feeds the decoder its own argmax
with a probability that ramps up with the number of training batches the model has seen (``sampling``);
that count is a buffer, so it is checkpointed and a resumed run continues the ramp where it was.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal, Sequence

import numpy as np
import torch
from torch import nn

from speechseq.endpoint import floor_relative, trim_silence
from speechseq.errors import ConfigError
from speechseq.features import FeatureConfig, LogMel, SpecAugment, SpecAugmentConfig, checkpointed_generator
from speechseq.freq_warp import FrequencyWarp, FrequencyWarpConfig
from speechseq.hub import PretrainedModel
from speechseq.models.ctc import BLANK_ID, normalize_utterances
from speechseq.nn.adversary import AdversaryOutput, SpeakerAdversary, SpeakerAdversaryConfig
from speechseq.nn.attention import AttentionConfig
from speechseq.nn.conformer import ConformerEncoder, ConformerEncoderConfig
from speechseq.nn.decoders import AttentionLSTMDecoder, AttentionLSTMDecoderConfig, DecoderOutput
from speechseq.nn.encoders import PyramidBiLSTMEncoder, PyramidBiLSTMEncoderConfig
from speechseq.nn.masking import lengths_to_mask
from speechseq.nn.transformer_decoder import TransformerDecoder, TransformerDecoderConfig
from speechseq.nn.transformer_encoder import TransformerEncoder, TransformerEncoderConfig

SOS_EOS_ID = 2


@dataclasses.dataclass
class SamplingScheduleConfig:
    """Scheduled-sampling probability as a function of training batches seen (linear ramp).

    Attributes:
        start_prob: probability before and at ``start_batch``.
        end_prob: probability from ``start_batch + ramp_batches`` on (0 turns scheduled sampling off).
        start_batch: training batches of pure teacher forcing before the ramp.
        ramp_batches: length of the linear ramp.
        sample_tokens: feed back a token sampled from the softmax instead of the argmax.
    """

    start_prob: float = 0.0
    end_prob: float = 0.0
    start_batch: int = 0
    ramp_batches: int = 1000
    sample_tokens: bool = False

    def probability(self, batches: int) -> float:
        """Sampling probability after ``batches`` training batches.

        >>> SamplingScheduleConfig(end_prob=0.2, start_batch=10, ramp_batches=20).probability(20)
        0.1
        """
        progress = min(1.0, max(0.0, (batches - self.start_batch) / max(1, self.ramp_batches)))
        return self.start_prob + (self.end_prob - self.start_prob) * progress


def _rnn_decoder_default() -> AttentionLSTMDecoderConfig:
    return AttentionLSTMDecoderConfig(embedding_dim=128, hidden_size=256, attention=AttentionConfig(kind="location"))


@dataclasses.dataclass
class LASConfig:
    """Configuration of :class:`LASModel` (``model.*`` of ``configs/las.yaml``).

    Attributes:
        vocab_size: output classes, specials included (set from the tokenizer by the recipe).
        backbone: ``rnn`` (listener + speller), ``transformer`` or ``conformer`` (+ Transformer decoder).
        listener: pyramidal BiLSTM encoder of ``rnn``; ``input_dim`` must equal ``features.n_mels``.
        transformer_encoder: encoder of ``transformer``.
        conformer_encoder: encoder of ``conformer``.
        speller: attention LSTM decoder of ``rnn`` (its ``attention`` picks the attention kind).
        transformer_decoder: decoder of ``transformer`` and ``conformer``.
        ctc_weight: a in ``a·L_CTC + (1−a)·L_att``.
        label_smoothing: label smoothing of the attention cross-entropy.
        sampling: scheduled-sampling ramp.
        specaugment: masking policy applied to the features in training mode.
        use_specaugment: turn SpecAugment on/off.
        freq_warp: random non-uniform warp of the mel axis in training (:mod:`speechseq.freq_warp`), before
            normalisation; off unless ``freq_warp.prob`` > 0.
        adversary: speaker-adversarial training (:mod:`speechseq.nn.adversary`): a frame-level speaker
            classifier on the encoder states behind a gradient reversal layer; off unless ``adversary.weight`` > 0.
        max_decode_ratio: greedy decoding stops after ``ratio × encoder frames + 5`` tokens at most.
        trim_db: cut every input (training and inference) to the span from its first to its last frame
            within this many dB of its loudest (:func:`speechseq.endpoint.trim_silence`); ``None`` keeps
            whole inputs. For corpora cut tightly around the speech, whose models break on a lead-in.
        trim_margin: frames kept on each side of the loud span when trimming.
        floor_db: raise every log-mel cell to at least this many dB below the utterance's loudest
            (:func:`speechseq.endpoint.floor_relative`), before normalisation; ``None`` keeps them.
        normalization: ``band``: each utterance's mel bands to zero mean and unit variance each;
            ``utterance``: one mean and variance over all its cells, which keeps the spectral envelope
            (for one-word inputs, whose per-band means are much of the word).
    """

    vocab_size: int = 0
    backbone: Literal["rnn", "transformer", "conformer"] = "rnn"
    listener: PyramidBiLSTMEncoderConfig = dataclasses.field(default_factory=PyramidBiLSTMEncoderConfig)
    transformer_encoder: TransformerEncoderConfig = dataclasses.field(default_factory=TransformerEncoderConfig)
    conformer_encoder: ConformerEncoderConfig = dataclasses.field(default_factory=ConformerEncoderConfig)
    speller: AttentionLSTMDecoderConfig = dataclasses.field(default_factory=_rnn_decoder_default)
    transformer_decoder: TransformerDecoderConfig = dataclasses.field(default_factory=TransformerDecoderConfig)
    ctc_weight: float = 0.3
    label_smoothing: float = 0.1
    sampling: SamplingScheduleConfig = dataclasses.field(default_factory=SamplingScheduleConfig)
    specaugment: SpecAugmentConfig = dataclasses.field(default_factory=SpecAugmentConfig)
    use_specaugment: bool = True
    freq_warp: FrequencyWarpConfig = dataclasses.field(default_factory=FrequencyWarpConfig)
    adversary: SpeakerAdversaryConfig = dataclasses.field(default_factory=SpeakerAdversaryConfig)
    max_decode_ratio: float = 1.0
    trim_db: float | None = None
    trim_margin: int = 0
    floor_db: float | None = None
    normalization: Literal["band", "utterance"] = "band"

    def encoder_config(self) -> Any:
        """The config of the encoder that ``backbone`` uses."""
        return {"rnn": self.listener, "transformer": self.transformer_encoder, "conformer": self.conformer_encoder}[
            self.backbone
        ]


@dataclasses.dataclass
class EncoderOutput:
    """memory (B,T',D), lengths (B,), ctc_log_probs (B,T',V)."""

    memory: torch.Tensor
    lengths: torch.Tensor
    ctc_log_probs: torch.Tensor


@dataclasses.dataclass
class LASOutput:
    """Forward result; the loss fields are set when targets were given.

    Attributes:
        encoder: encoder states, lengths and CTC log-probabilities.
        logits: (B, L+1, V) decoder logits (inputs ``<sos> y``, targets ``y <eos>``).
        attention: (B, L+1, T') decoder attention weights.
        loss: ``a·ctc_loss + (1−a)·att_loss``.
        ctc_loss: mean over utterances of the CTC loss per target token.
        att_loss: label-smoothed cross-entropy per target token (``<eos>`` included).
        utterance_loss: (B,) the combined loss of each utterance.
        sampling_prob: scheduled-sampling probability used.
        adversary_loss: the speaker adversary's cross-entropy per frame (training with ``adversary`` on;
            included in ``loss``, its gradient reversed for the encoder).
        adversary_accuracy: fraction of frames whose speaker the adversary told right.
    """

    encoder: EncoderOutput
    logits: torch.Tensor | None = None
    attention: torch.Tensor | None = None
    loss: torch.Tensor | None = None
    ctc_loss: torch.Tensor | None = None
    att_loss: torch.Tensor | None = None
    utterance_loss: torch.Tensor | None = None
    sampling_prob: float = 0.0
    adversary_loss: torch.Tensor | None = None
    adversary_accuracy: float | None = None


@dataclasses.dataclass
class GreedyResult:
    """tokens: one id list per utterance (without ``<eos>``); attention: (steps, T') array per utterance."""

    tokens: list[list[int]]
    attention: list[np.ndarray]


def add_sos_eos(tokens: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoder inputs ``<sos> y`` and targets ``y <eos>``, both (B, L+1), padded with 0.

    >>> add_sos_eos(torch.tensor([[5, 6], [7, 0]]), torch.tensor([2, 1]))
    (tensor([[2, 5, 6],
            [2, 7, 0]]), tensor([[5, 6, 2],
            [7, 2, 0]]))
    """
    sos = tokens.new_full((tokens.size(0), 1), SOS_EOS_ID)
    inputs = torch.cat([sos, tokens], dim=1)
    targets = torch.cat([tokens, tokens.new_zeros(tokens.size(0), 1)], dim=1)
    targets = targets.scatter(1, lengths.unsqueeze(1), SOS_EOS_ID)
    return inputs, targets


def smoothed_nll(logits: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Label-smoothed cross-entropy summed per utterance over its ``lengths`` valid targets: (B,).

    Args:
        logits: (B, L, V); targets: (B, L); lengths: (B,) valid targets (``<eos>`` included).
    """
    per_token = nn.functional.cross_entropy(
        logits.float().transpose(1, 2), targets, reduction="none", label_smoothing=smoothing
    )
    return (per_token * lengths_to_mask(lengths, targets.size(1))).sum(1)


class LASModel(PretrainedModel):
    """Attention encoder-decoder ASR with a CTC head (``family = "las"``).

    ``forward(wave (B,S), wave_lengths (B,), tokens (B,L) | None, token_lengths (B,) | None) -> LASOutput``.

    Example:
        >>> from speechseq.text import CharTokenizer
        >>> tok = CharTokenizer.from_texts(["yes", "no"])
        >>> feats = dataclasses.replace(FeatureConfig.asr_16k(), n_mels=20)
        >>> cfg = LASConfig(vocab_size=tok.vocab_size, listener=PyramidBiLSTMEncoderConfig(input_dim=20, hidden_size=8),
        ...                 speller=AttentionLSTMDecoderConfig(embedding_dim=8, hidden_size=16))
        >>> model = LASModel(cfg, feats, tok)
        >>> out = model(torch.randn(2, 8000), torch.tensor([8000, 6000]), torch.tensor([[5, 3, 4], [6, 7, 0]]),
        ...             torch.tensor([3, 2]))
        >>> tuple(out.logits.shape), out.loss.item() > 0
        ((2, 4, 8), True)
        >>> len(model.eval().transcribe([np.zeros(8000, dtype=np.float32)]))
        1
    """

    family = "las"
    config_class = LASConfig

    def __init__(self, config: LASConfig, feature_config: FeatureConfig | None = None, tokenizer: Any = None):
        super().__init__(config, feature_config or FeatureConfig.asr_16k(), tokenizer)
        _check_config(config, self.feature_config)
        self.frontend = LogMel(self.feature_config)
        self.specaugment = SpecAugment(config.specaugment) if config.use_specaugment else None
        self.freq_warp = FrequencyWarp(config.freq_warp)
        self.encoder = _build_encoder(config)
        self.ctc_head = nn.Linear(self.encoder.output_dim, config.vocab_size)
        self.decoder = _build_decoder(config, self.encoder.output_dim)
        if config.adversary.weight > 0:  # built only when on: models without it keep their weights file
            self.speaker_adversary = SpeakerAdversary(config.adversary, self.encoder.output_dim)
        # Training batches seen: drives the scheduled-sampling ramp; a buffer so checkpoints carry it.
        self.register_buffer("batches_seen", torch.zeros((), dtype=torch.long))

    def fresh_prefixes(self) -> tuple[str, ...]:
        """The speaker adversary, a training-only head, starts fresh when fine-tuning a model without one."""
        return ("speaker_adversary",) if hasattr(self, "speaker_adversary") else ()

    def _adversary(self, enc: EncoderOutput, speakers: Sequence[str] | None) -> AdversaryOutput | None:
        """The speaker adversary's output on this batch (training with ``adversary`` on), else ``None``."""
        if not self.training or not hasattr(self, "speaker_adversary"):
            return None
        if speakers is None:
            raise ConfigError("model.adversary.weight > 0: training batches must carry their speakers")
        return self.speaker_adversary(enc.memory, enc.lengths, speakers)

    def _augment(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.specaugment is None or not self.training:
            return features
        return self.specaugment(features, lengths, generator=checkpointed_generator())

    def _warp(self, features: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, F) log-mel -> the same, its mel axis randomly warped in training (``config.freq_warp``)."""
        if not self.training or self.config.freq_warp.prob <= 0:
            return features  # no draw either: runs without the warp keep their random stream
        return self.freq_warp(features, frames, checkpointed_generator())

    def encode(self, wave: torch.Tensor, wave_lengths: torch.Tensor) -> EncoderOutput:
        """Waveforms (B,S) with lengths (B,) -> encoder states, their lengths and CTC log-probabilities."""
        features, frames = self.frontend(wave, wave_lengths)
        if self.config.trim_db is not None:
            features, frames = trim_silence(features, frames, self.config.trim_db, self.config.trim_margin)
        if self.config.floor_db is not None:
            features = floor_relative(features, frames, self.config.floor_db)
        features = self._warp(features, frames)
        per_band = self.config.normalization == "band"
        features = self._augment(normalize_utterances(features, frames, per_band=per_band), frames)
        memory, lengths = self.encoder(features, frames)
        return EncoderOutput(memory, lengths, self.ctc_head(memory).float().log_softmax(-1))

    def _sampling(self, sampling_prob: float | None) -> tuple[float, torch.Generator | None]:
        """Scheduled-sampling probability of this batch (training only) and a generator for its draws."""
        if not self.training:
            return 0.0, None
        prob = self.config.sampling.probability(int(self.batches_seen)) if sampling_prob is None else sampling_prob
        self.batches_seen += 1
        if prob <= 0:
            return 0.0, None
        return prob, checkpointed_generator()

    def forward(
        self,
        wave: torch.Tensor,
        wave_lengths: torch.Tensor,
        tokens: torch.Tensor | None = None,
        token_lengths: torch.Tensor | None = None,
        sampling_prob: float | None = None,
        speakers: Sequence[str] | None = None,
    ) -> LASOutput:
        """Encode; with targets, also teacher-force the decoder and compute the joint loss.

        ``sampling_prob`` overrides the configured schedule (training mode only). ``speakers`` (B names)
        are the speaker adversary's targets; needed in training when ``adversary`` is on, unused otherwise.
        """
        enc = self.encode(wave, wave_lengths)
        if tokens is None:
            return LASOutput(encoder=enc)
        if token_lengths is None:
            raise ConfigError("LASModel.forward: tokens need token_lengths")
        prob, generator = self._sampling(sampling_prob)
        inputs, targets = add_sos_eos(tokens, token_lengths)
        dec: DecoderOutput = self.decoder(
            inputs, enc.memory, enc.lengths, sampling_prob=prob, generator=generator,
            sample_tokens=self.config.sampling.sample_tokens,
        )
        target_lengths = token_lengths + 1
        att_sum = smoothed_nll(dec.logits, targets, target_lengths, self.config.label_smoothing)
        ctc = nn.functional.ctc_loss(
            enc.ctc_log_probs.transpose(0, 1), tokens, enc.lengths, token_lengths,
            blank=BLANK_ID, reduction="none", zero_infinity=True,
        ) / token_lengths.clamp(min=1).float()
        a = self.config.ctc_weight
        att_per_utt = att_sum / target_lengths.float()
        loss = a * ctc.mean() + (1 - a) * att_sum.sum() / target_lengths.sum()
        adversary = self._adversary(enc, speakers)
        if adversary is not None:  # the reversal layer makes the encoder's share of this gradient negative
            loss = loss + adversary.loss
        return LASOutput(
            encoder=enc, logits=dec.logits, attention=dec.attention, loss=loss,
            ctc_loss=ctc.mean(), att_loss=att_sum.sum() / target_lengths.sum(),
            utterance_loss=a * ctc + (1 - a) * att_per_utt, sampling_prob=prob,
            adversary_loss=None if adversary is None else adversary.loss,
            adversary_accuracy=None if adversary is None else adversary.accuracy,
        )

    @torch.no_grad()
    def greedy_decode(self, memory: torch.Tensor, memory_lengths: torch.Tensor) -> GreedyResult:
        """Batched greedy decoding from encoder states (B,T',D): argmax token per step until ``<eos>``."""
        batch = memory.size(0)
        mask = lengths_to_mask(memory_lengths, memory.size(1))
        max_steps = int(math.ceil(self.config.max_decode_ratio * int(memory_lengths.max()))) + 5
        state = self.decoder.init_state(memory, memory_lengths)
        prev = torch.full((batch,), SOS_EOS_ID, dtype=torch.long, device=memory.device)
        finished = torch.zeros(batch, dtype=torch.bool, device=memory.device)
        steps, weights = [], []
        for _ in range(max_steps):
            out = self.decoder.step(prev, state, memory, mask)
            state, prev = out.state, out.logits.argmax(-1)
            steps.append(prev)
            weights.append(out.attention)
            finished |= prev == SOS_EOS_ID
            if bool(finished.all()):
                break
        ids, attention = torch.stack(steps, 1).cpu(), torch.stack(weights, 1).float().cpu()
        tokens, maps = [], []
        for b in range(batch):
            row = ids[b].tolist()
            length = row.index(SOS_EOS_ID) if SOS_EOS_ID in row else len(row)
            tokens.append(row[:length])
            maps.append(attention[b, : length + 1, : int(memory_lengths[b])].numpy())
        return GreedyResult(tokens=tokens, attention=maps)

    @torch.no_grad()
    def decode(self, wave: torch.Tensor, wave_lengths: torch.Tensor) -> GreedyResult:
        """Greedy token ids (and attention maps) of a padded batch ``wave (B,S)``, ``wave_lengths (B,)``."""
        enc = self.encode(wave, wave_lengths)
        return self.greedy_decode(enc.memory, enc.lengths)

    @torch.no_grad()
    def transcribe(self, waves: Sequence[np.ndarray], sample_rate: int | None = None) -> list[str]:
        """Greedy transcripts of 1-D waveforms (resampled from ``sample_rate`` when it differs)."""
        from speechseq.audio import resample
        from speechseq.data.collate import pad_waves

        if self.tokenizer is None:
            raise ConfigError("this LASModel has no tokenizer; use decode() for token ids")
        rate = self.feature_config.sample_rate
        if sample_rate is not None and sample_rate != rate:
            waves = [resample(np.asarray(w, dtype=np.float32), sample_rate, rate) for w in waves]
        wave, lengths = pad_waves(list(waves))
        device = next(self.parameters()).device
        result = self.decode(wave.to(device), lengths.to(device))
        return [self.tokenizer.decode(seq) for seq in result.tokens]


def _check_config(config: LASConfig, features: FeatureConfig) -> None:
    if config.vocab_size < 4:
        raise ConfigError(f"model.vocab_size must be >= 4 (3 specials + symbols), got {config.vocab_size}")
    if not 0.0 <= config.ctc_weight <= 1.0:
        raise ConfigError(f"model.ctc_weight must be in [0, 1], got {config.ctc_weight}")
    if config.trim_db is not None and config.trim_db <= 0:
        raise ConfigError(f"model.trim_db must be > 0 dB (or null), got {config.trim_db}")
    if config.floor_db is not None and config.floor_db <= 0:
        raise ConfigError(f"model.floor_db must be > 0 dB (or null), got {config.floor_db}")
    if config.normalization not in ("band", "utterance"):
        raise ConfigError(f"model.normalization must be 'band' or 'utterance', got {config.normalization!r}")
    if config.trim_margin < 0:
        raise ConfigError(f"model.trim_margin must be >= 0 frames, got {config.trim_margin}")
    config.adversary.check()
    name = {"rnn": "listener", "transformer": "transformer_encoder", "conformer": "conformer_encoder"}[config.backbone]
    if config.encoder_config().input_dim != features.n_mels:
        raise ConfigError(
            f"model.{name}.input_dim ({config.encoder_config().input_dim}) must equal features.n_mels "
            f"({features.n_mels})"
        )


def _build_encoder(config: LASConfig) -> nn.Module:
    if config.backbone == "rnn":
        return PyramidBiLSTMEncoder(config.listener)
    if config.backbone == "transformer":
        return TransformerEncoder(config.transformer_encoder)
    return ConformerEncoder(config.conformer_encoder)


def _build_decoder(config: LASConfig, memory_dim: int) -> nn.Module:
    if config.backbone == "rnn":
        return AttentionLSTMDecoder(config.speller, config.vocab_size, memory_dim)
    return TransformerDecoder(config.transformer_decoder, config.vocab_size, memory_dim)
