"""Shared fixtures. Real speech comes from ../shared/data (beside the repository), never from the repo."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# Two cores are shared by the whole suite; more threads only add contention.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the real-speech corpora (fsdd, yesno, ljspeech32)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"real speech corpora not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def fsdd_dir(shared_data: Path) -> Path:
    return shared_data / "fsdd" / "recordings"


@pytest.fixture(scope="session")
def ljspeech_dir(shared_data: Path) -> Path:
    return shared_data / "ljspeech32"


def make_tiny_ctc(seed: int, hidden: int = 8, texts: tuple[str, ...] = ("zero one two", "three")):
    """A tiny CTC model (20 mels, conv + BiLSTM of ``hidden`` units), its weights drawn from ``seed``."""
    import dataclasses

    from speechseq.features import FeatureConfig
    from speechseq.models.ctc import CTCConfig, CTCModel
    from speechseq.nn.encoders import ConvBiLSTMEncoderConfig
    from speechseq.text import CharTokenizer

    torch.manual_seed(seed)
    tokenizer = CharTokenizer.from_texts(list(texts))
    features = dataclasses.replace(FeatureConfig.asr_16k(), n_mels=20)
    encoder = ConvBiLSTMEncoderConfig(input_dim=20, conv_channels=8, hidden_size=hidden, num_layers=1)
    return CTCModel(CTCConfig(vocab_size=tokenizer.vocab_size, encoder=encoder), features, tokenizer).eval()


@pytest.fixture(scope="session")
def tiny_ctc():
    """Factory of tiny CTC models: ``tiny_ctc(seed, hidden=8, texts=(...))``."""
    return make_tiny_ctc
