"""Config system: strict dataclass mapping, overrides, task configs, and the command line's config views."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from speechseq.config import RunConfig, TrainConfig, from_dict, load_task_config, to_dict, to_yaml
from speechseq.errors import ConfigError
from speechseq.features import FeatureConfig
from speechseq.train import main


def test_unknown_key_names_path_valid_keys_and_suggestion() -> None:
    with pytest.raises(ConfigError) as info:
        from_dict(RunConfig, {"train": {"lrr": 0.1}})
    message = str(info.value)
    assert "'train.lrr'" in message
    assert "did you mean 'train.lr'" in message
    valid = {f.name for f in dataclasses.fields(TrainConfig)}
    assert all(name in message for name in valid)


def test_unknown_key_without_close_match_has_no_suggestion() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'zzzz'; valid keys: output_dir, print_config") as info:
        from_dict(RunConfig, {"zzzz": 1})
    assert "did you mean" not in str(info.value)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"train": {"lr": "fast"}}, r"train\.lr: expected float, got str \('fast'\)"),
        ({"train": {"max_steps": 2.5}}, r"train\.max_steps: expected int, got float"),
        ({"train": {"progress": 1}}, r"train\.progress: expected bool, got int"),
        ({"seed": True}, r"seed: expected int, got bool"),
        ({"train": {"betas": [0.9]}}, r"train\.betas: expected 2 items"),
        ({"train": {"schedule": "cosin"}}, r"train\.schedule: expected one of 'constant', 'linear'"),
        ({"train": {"mixed_precision": False}}, r"YAML reads no/off/yes/on as booleans"),
        ({"train": 3}, r"train: expected a mapping for TrainConfig, got int"),
    ],
)
def test_wrong_types_name_key_expected_and_given(values: dict, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        from_dict(RunConfig, values)


def test_values_are_converted_to_the_annotated_types() -> None:
    cfg = from_dict(RunConfig, {"train": {"lr": 1, "betas": [0.8, 0.9], "clip_grad_norm": None}})
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)
    assert cfg.train.betas == (0.8, 0.9)
    assert cfg.train.clip_grad_norm is None


def test_dict_round_trip_is_identity() -> None:
    cfg = load_task_config("ctc", ["train.lr=0.5", "model.encoder.conv_strides=[2,1]"])
    assert from_dict(type(cfg), to_dict(cfg)) == cfg


def test_overrides_are_typed_and_applied() -> None:
    cfg = load_task_config("ctc", ["train.lr=3e-4", "train.max_steps=7", "model.encoder.conv_strides=[2,1]",
                                   "train.clip_grad_norm=null", "data.lang=es"])
    assert (cfg.train.lr, cfg.train.max_steps, cfg.train.clip_grad_norm) == (3e-4, 7, None)
    assert cfg.model.encoder.conv_strides == (2, 1)
    assert cfg.data.lang == "es"
    assert cfg.task == "ctc"


def test_override_typo_in_nested_key_is_reported_with_its_path() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'model\.encoder\.hiden_size' \(did you mean "
                                          r"'model\.encoder\.hidden_size'\?\)"):
        load_task_config("ctc", ["model.encoder.hiden_size=8"])


def test_partial_nested_mapping_keeps_the_fields_own_default() -> None:
    # The CTC config's features default to the 16 kHz ASR preset, not FeatureConfig()'s 22.05 kHz.
    cfg = load_task_config("ctc", ["features.n_mels=40"])
    assert cfg.features == dataclasses.replace(FeatureConfig.asr_16k(), n_mels=40)


def test_config_file_and_saved_config_reload_identically(tmp_path: Path) -> None:
    cfg = load_task_config("ctc", ["train.lr=0.01", "output_dir=somewhere"])
    path = tmp_path / "config.yaml"
    path.write_text(to_yaml(cfg))
    assert load_task_config(None, [f"config={path}"]) == cfg
    again = load_task_config(None, [f"config={path}", "train.max_steps=3"])
    assert again.train.max_steps == 3 and again.train.lr == 0.01


def test_unknown_task_and_missing_task_are_clear() -> None:
    with pytest.raises(ConfigError, match=r"unknown task 'ctcc' \(did you mean 'ctc'\?\)"):
        load_task_config("ctcc", [])
    with pytest.raises(ConfigError, match="no task given"):
        load_task_config(None, ["train.lr=1"])
    with pytest.raises(ConfigError, match="not of the form key=value"):
        load_task_config("ctc", ["train.lr"])


def test_print_config_prints_the_merged_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["task=ctc", "train.lr=0.125", "print_config=true"]) == 0
    printed = capsys.readouterr().out
    assert "lr: 0.125" in printed
    assert load_task_config("ctc", ["train.lr=0.125", "print_config=true"]) == from_dict(
        type(load_task_config("ctc")), __import__("yaml").safe_load(printed)
    )


def test_help_lists_tasks_and_shows_merged_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help", "task=ctc", "train.max_steps=11"]) == 0
    printed = capsys.readouterr().out
    assert "usage: python -m speechseq.train" in printed and "ctc" in printed
    assert "max_steps: 11" in printed


def test_main_reports_config_errors_with_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["task=ctc", "train.lrr=1"]) == 1
    assert "did you mean 'train.lr'" in capsys.readouterr().err
