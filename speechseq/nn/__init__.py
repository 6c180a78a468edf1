"""The shared encoder-decoder core: encoders, attention, decoders with explicit state, alignment losses.

The core knows no task: ASR, TTS and speech translation heads (``speechseq.models``) are built from it.
"""

from speechseq.nn.alignment import AlignmentScores, alignment_scores, guided_attention_loss
from speechseq.nn.attention import ATTENTION_KINDS, AttentionConfig, AttentionOutput, AttentionState, build_attention
from speechseq.nn.conformer import ConformerEncoder, ConformerEncoderConfig
from speechseq.nn.decoders import AttentionLSTMDecoder, AttentionLSTMDecoderConfig, DecoderOutput, StepOutput
from speechseq.nn.encoders import (
    ENCODER_KINDS,
    ConvBiLSTMEncoder,
    ConvBiLSTMEncoderConfig,
    PyramidBiLSTMEncoder,
    PyramidBiLSTMEncoderConfig,
    build_encoder,
    encoder_config,
)
from speechseq.nn.masking import lengths_to_mask
from speechseq.nn.monotonic import MonotonicChunkwiseAttention
from speechseq.nn.state import BatchState
from speechseq.nn.transformer_decoder import TransformerDecoder, TransformerDecoderConfig
from speechseq.nn.transformer_encoder import TransformerEncoder, TransformerEncoderConfig

__all__ = [
    "ATTENTION_KINDS", "ENCODER_KINDS", "AlignmentScores", "AttentionConfig", "AttentionLSTMDecoder",
    "AttentionLSTMDecoderConfig", "AttentionOutput", "AttentionState", "BatchState", "ConformerEncoder",
    "ConformerEncoderConfig", "ConvBiLSTMEncoder", "ConvBiLSTMEncoderConfig", "DecoderOutput",
    "MonotonicChunkwiseAttention", "PyramidBiLSTMEncoder", "PyramidBiLSTMEncoderConfig", "StepOutput",
    "TransformerDecoder", "TransformerDecoderConfig", "TransformerEncoder", "TransformerEncoderConfig",
    "alignment_scores", "build_attention", "build_encoder", "encoder_config", "guided_attention_loss",
    "lengths_to_mask",
]
