"""Corpora (embedded bilingual corpus, public readers), batching and bad-input screening."""

from speechseq.data.collate import SpeechCollator, is_empty_batch, pad_tokens, pad_waves, utterance_rng
from speechseq.data.embedded import EmbeddedCorpusConfig, asr_view, build_embedded_corpus, load_corpus
from speechseq.data.readers import (
    ASR_COLUMNS,
    ASR_FEATURES,
    DatasetFormatError,
    asr_dataset,
    load_fsdd,
    load_hub,
    load_ljspeech,
    load_manifest,
)
from speechseq.data.sampler import BucketBatchSampler
from speechseq.data.screening import REASONS, Problem, ScreenResult, screen_dataset

__all__ = [
    "ASR_COLUMNS",
    "ASR_FEATURES",
    "BucketBatchSampler",
    "DatasetFormatError",
    "EmbeddedCorpusConfig",
    "Problem",
    "REASONS",
    "ScreenResult",
    "SpeechCollator",
    "asr_dataset",
    "asr_view",
    "build_embedded_corpus",
    "is_empty_batch",
    "load_corpus",
    "load_fsdd",
    "load_hub",
    "load_ljspeech",
    "load_manifest",
    "pad_tokens",
    "pad_waves",
    "screen_dataset",
    "utterance_rng",
]
