"""Hub layer: exact save/load round trip, strict loading, family dispatch, model card, patched push, offline."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import HfApi
from safetensors.torch import load_file, save_file

from speechseq.features import FeatureConfig
from speechseq.hub import CheckpointError, HubError, ModelCardInfo, PretrainedModel
from speechseq.models import from_pretrained
from speechseq.models.ctc import CTCConfig, CTCModel
from speechseq.nn.encoders import ConvBiLSTMEncoderConfig
from speechseq.text import CharTokenizer

SAVED_FILES = {"config.json", "model.safetensors", "tokenizer.json", "README.md"}


def _tiny_ctc(seed: int = 0) -> CTCModel:
    torch.manual_seed(seed)
    tokenizer = CharTokenizer.from_texts(["zero one two", "three"])
    features = dataclasses.replace(FeatureConfig.asr_16k(), n_mels=20)
    encoder = ConvBiLSTMEncoderConfig(input_dim=20, conv_channels=8, hidden_size=8, num_layers=1)
    return CTCModel(CTCConfig(vocab_size=tokenizer.vocab_size, encoder=encoder), features, tokenizer).eval()


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(2, 8000, generator=generator), torch.tensor([8000, 5000])


@pytest.fixture()
def saved(tmp_path: Path) -> Path:
    card = ModelCardInfo(training_data="FSDD digits, 4 speakers", metrics={"test": {"wer": 0.0123, "cer": 0.004}})
    return _tiny_ctc().save_pretrained(tmp_path / "model", card=card)


def test_round_trip_reproduces_outputs_exactly(saved: Path) -> None:
    original = _tiny_ctc()
    loaded = from_pretrained(saved)
    assert type(loaded) is CTCModel and not loaded.training
    assert loaded.config == original.config and loaded.feature_config == original.feature_config
    assert loaded.tokenizer.tokens == original.tokenizer.tokens
    wave, lengths = _batch()
    assert torch.equal(loaded(wave, lengths).log_probs, original(wave, lengths).log_probs)
    assert loaded.transcribe([wave[0].numpy()]) == original.transcribe([wave[0].numpy()])


def test_saved_folder_layout_and_config(saved: Path) -> None:
    assert {p.name for p in saved.iterdir()} == SAVED_FILES
    config = json.loads((saved / "config.json").read_text())
    assert config["family"] == "ctc"
    assert config["feature_config"]["n_mels"] == 20 and config["feature_config"]["sample_rate"] == 16000
    assert config["config"]["vocab_size"] == _tiny_ctc().config.vocab_size


def test_model_card_carries_data_config_and_metrics(saved: Path) -> None:
    card = (saved / "README.md").read_text()
    assert card.startswith("---\n") and "library_name: speechseq" in card
    assert "FSDD digits, 4 speakers" in card
    assert "| test | 0.004 | 0.0123 |" in card  # columns sorted: cer, wer
    assert "hidden_size: 8" in card and "n_mels: 20" in card


@pytest.mark.parametrize("change", ["missing", "unexpected"])
def test_loading_is_strict_about_keys(saved: Path, change: str) -> None:
    weights = load_file(str(saved / "model.safetensors"))
    if change == "missing":
        del weights["head.bias"]
    else:
        weights["head.extra"] = torch.zeros(1)
    save_file(weights, str(saved / "model.safetensors"))
    with pytest.raises(CheckpointError, match=f"{change} \\[[^]]*'head\\.(bias|extra)'"):
        from_pretrained(saved)


def test_shape_mismatch_and_wrong_family_are_errors(saved: Path, tmp_path: Path) -> None:
    config = json.loads((saved / "config.json").read_text())
    config["config"]["encoder"]["hidden_size"] = 16
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="do not fit the model"):
        from_pretrained(saved)

    @dataclasses.dataclass
    class OtherConfig:
        size: int = 2

    class Other(PretrainedModel):
        family, config_class = "other-test-family", OtherConfig

    with pytest.raises(CheckpointError, match="holds a 'ctc' model, not 'other-test-family'"):
        Other.from_pretrained(saved)
    with pytest.raises(CheckpointError, match="not a speechseq model folder"):
        from_pretrained(tmp_path)


def test_push_to_hub_uploads_the_saved_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: dict[str, object] = {}

    def fake_create_repo(self: HfApi, repo_id: str, **kwargs: object) -> str:
        calls["create"] = (repo_id, kwargs)
        return f"https://huggingface.co/{repo_id}"

    def fake_upload_folder(self: HfApi, *, repo_id: str, folder_path: str, **kwargs: object) -> str:
        calls["upload_repo"] = repo_id
        shutil.copytree(folder_path, tmp_path / "uploaded")  # the temp folder is gone after the call
        return "https://huggingface.co/me/tiny-ctc/commit/abc"

    monkeypatch.setattr(HfApi, "create_repo", fake_create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", fake_upload_folder)
    model = _tiny_ctc()
    url = model.push_to_hub("me/tiny-ctc", card=ModelCardInfo(metrics={"test": {"wer": 0.5}}), private=True)
    assert url.endswith("/commit/abc")
    assert calls["create"] == ("me/tiny-ctc", {"private": True, "exist_ok": True, "repo_type": "model"})
    assert calls["upload_repo"] == "me/tiny-ctc"
    uploaded = tmp_path / "uploaded"
    assert {p.name for p in uploaded.iterdir()} == SAVED_FILES
    wave, lengths = _batch()
    assert torch.equal(from_pretrained(uploaded)(wave, lengths).log_probs, model(wave, lengths).log_probs)


def test_offline_repo_name_is_a_clear_error_and_local_path_works(
    monkeypatch: pytest.MonkeyPatch, saved: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(HubError, match=r"'someone/no-such-model' is not a local folder .*HF_HUB_OFFLINE=1"):
        from_pretrained("someone/no-such-model")
    with pytest.raises(HubError, match="no such model folder"):
        from_pretrained(str(tmp_path / "runs" / "missing" / "final"))
    assert isinstance(from_pretrained(str(saved)), CTCModel)


def test_tokenizer_flag_without_file_is_reported(saved: Path) -> None:
    (saved / "tokenizer.json").unlink()
    with pytest.raises(CheckpointError, match="tokenizer.json is missing"):
        from_pretrained(saved)


def test_save_load_keeps_weights_bit_exact(saved: Path) -> None:
    original = _tiny_ctc().state_dict()
    loaded = from_pretrained(saved).state_dict()
    assert original.keys() == loaded.keys()
    assert all(np.array_equal(original[k].numpy(), loaded[k].numpy()) for k in original)
