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
