"""Weight averaging (checkpoint averaging, model soups): exact means, exact copies, refused misfits, the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from speechseq.averaging import average_models, average_state_dicts
from speechseq.cli import main as cli_main
from speechseq.hub import CheckpointError
from speechseq.models import from_pretrained


def _wave() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(2, 8000, generator=torch.Generator().manual_seed(3)), torch.tensor([8000, 5000])


def test_average_of_copies_reproduces_the_model_exactly_through_the_cli(tmp_path: Path, tiny_ctc) -> None:
    model = tiny_ctc(0)
    sources = [str(model.save_pretrained(tmp_path / name)) for name in ("a", "b", "c")]
    assert cli_main(["average", "--out", str(tmp_path / "avg"), *sources]) == 0
    averaged = from_pretrained(tmp_path / "avg")
    wave, lengths = _wave()
    assert torch.equal(averaged(wave, lengths).log_probs, model(wave, lengths).log_probs)
    assert averaged.tokenizer.tokens == model.tokenizer.tokens
    assert "Weight average of 3 models" in (tmp_path / "avg" / "README.md").read_text()


def test_every_weight_is_the_weighted_mean(tmp_path: Path, tiny_ctc) -> None:
    first, second = tiny_ctc(0), tiny_ctc(1)
    a, b = first.save_pretrained(tmp_path / "a"), second.save_pretrained(tmp_path / "b")
    uniform = from_pretrained(average_models([a, b], tmp_path / "uniform")).state_dict()
    weighted = from_pretrained(average_models([a, b], tmp_path / "weighted", weights=[3, 1])).state_dict()
    one, two = first.state_dict(), second.state_dict()
    assert not torch.equal(one["head.weight"], two["head.weight"])  # two different models
    for name, tensor in uniform.items():
        torch.testing.assert_close(tensor, (one[name] + two[name]) / 2, rtol=0, atol=1e-7)
        torch.testing.assert_close(weighted[name], 0.75 * one[name] + 0.25 * two[name], rtol=0, atol=1e-7)


def test_a_training_checkpoint_averages_with_a_saved_model(tmp_path: Path, tiny_ctc) -> None:
    first, second = tiny_ctc(0), tiny_ctc(1)
    saved = first.save_pretrained(tmp_path / "final")
    checkpoint = tmp_path / "checkpoints" / "step_100"
    checkpoint.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in second.state_dict().items()}, str(checkpoint / "model.safetensors"))
    averaged = from_pretrained(average_models([saved, checkpoint], tmp_path / "avg")).state_dict()
    expected = (first.state_dict()["head.bias"] + second.state_dict()["head.bias"]) / 2
    torch.testing.assert_close(averaged["head.bias"], expected, rtol=0, atol=1e-7)


def test_checkpoints_alone_average_into_the_template_s_model(tmp_path: Path, tiny_ctc) -> None:
    template = tiny_ctc(5).save_pretrained(tmp_path / "final")  # config and tokenizer only
    checkpoints = []
    for seed in (0, 1):
        folder = tmp_path / f"seed{seed}" / "checkpoints" / "step_300"
        folder.mkdir(parents=True)
        save_file({k: v.contiguous() for k, v in tiny_ctc(seed).state_dict().items()}, str(folder / "model.safetensors"))
        checkpoints.append(str(folder))
    assert cli_main(["average", "--out", str(tmp_path / "avg"), "--template", str(template), *checkpoints]) == 0
    averaged = from_pretrained(tmp_path / "avg").state_dict()
    expected = (tiny_ctc(0).state_dict()["head.bias"] + tiny_ctc(1).state_dict()["head.bias"]) / 2
    torch.testing.assert_close(averaged["head.bias"], expected, rtol=0, atol=1e-7)
    with pytest.raises(CheckpointError, match="not a speechseq model folder"):  # a checkpoint cannot template
        average_models(checkpoints, tmp_path / "avg2")


def test_integer_buffers_get_the_floor_of_their_mean() -> None:
    averaged = average_state_dicts([{"w": torch.tensor([1.0]), "n": torch.tensor(3)},
                                    {"w": torch.tensor([2.0]), "n": torch.tensor(6)}])
    assert averaged["n"].item() == 4 and averaged["n"].dtype == torch.int64
    assert averaged["w"].item() == 1.5


def test_misfits_are_refused_by_name(tmp_path: Path, tiny_ctc) -> None:
    base = tiny_ctc(0).save_pretrained(tmp_path / "base")
    wider = tiny_ctc(0, hidden=12).save_pretrained(tmp_path / "wider")
    # as many characters as the base's ("zero one two three": z e r o n t w h and space), other ones
    other_chars = tiny_ctc(0, texts=("abcd fgik",)).save_pretrained(tmp_path / "chars")
    with pytest.raises(CheckpointError, match="wider: its config differs"):
        average_models([base, wider], tmp_path / "out")
    with pytest.raises(CheckpointError, match="chars: its tokenizer differs"):
        average_models([base, other_chars], tmp_path / "out")
    with pytest.raises(CheckpointError, match="two or more"):
        average_models([base], tmp_path / "out")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="empty: no model.safetensors"):
        average_models([base, empty], tmp_path / "out")
    wrong = tmp_path / "checkpoints" / "step_1"  # a checkpoint of another architecture
    wrong.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in tiny_ctc(0, hidden=12).state_dict().items()},
              str(wrong / "model.safetensors"))
    with pytest.raises(CheckpointError, match="step_1/model.safetensors: weights do not fit"):
        average_models([base, wrong], tmp_path / "out")
    with pytest.raises(CheckpointError, match="weights must be 2 non-negative"):
        average_models([base, base], tmp_path / "out", weights=[1, -1])
    with pytest.raises(CheckpointError, match="head.weight: shape"):
        average_state_dicts([{"head.weight": torch.zeros(2)}, {"head.weight": torch.zeros(3)}])
    with pytest.raises(CheckpointError, match=r"missing \['b'\]"):
        average_state_dicts([{"a": torch.zeros(1), "b": torch.zeros(1)}, {"a": torch.zeros(1)}])
    assert not (tmp_path / "out").exists()  # nothing half-written
