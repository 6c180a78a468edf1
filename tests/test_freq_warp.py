"""Random non-uniform frequency warping (speechseq.freq_warp) and its place in the LAS model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_las import FILES, tiny_rnn_las

from speechseq.audio import load_audio
from speechseq.errors import ConfigError
from speechseq.freq_warp import FrequencyWarp, FrequencyWarpConfig, source_positions, warp_bins
from speechseq import from_pretrained
from speechseq.text import CharTokenizer


def test_the_map_is_monotone_keeps_its_ends_and_moves_no_bin_further_than_the_largest_shift() -> None:
    gen = torch.Generator().manual_seed(0)
    bins, limit = 80, 0.12 * 80  # 0.12 is just under the fold-over limit of 3 knots (0.125)
    shifts = (torch.rand(500, 3, generator=gen) * 2 - 1) * limit
    pos = source_positions(bins, shifts)
    assert (pos[:, 1:] - pos[:, :-1] >= 0).all()
    assert (pos[:, 0] == 0).all() and (pos[:, -1] == bins - 1).all()
    assert ((pos - torch.arange(bins)).abs() <= limit + 1e-4).all()
    assert ((pos - torch.arange(bins)).abs().amax() > 0.5 * limit)  # and it does move them


def test_a_peak_at_a_knot_moves_by_that_knots_shift_and_the_others_by_theirs() -> None:
    """With 81 bins the knots sit on bins 20, 40, 60: content there lands exactly on the shifted bins."""
    features = torch.zeros(1, 2, 81)
    features[..., [20, 40, 60]] = torch.tensor([1.0, 2.0, 3.0])
    shifts = torch.tensor([[4.0, -3.0, 2.0]])
    out = warp_bins(features, source_positions(81, shifts))
    assert out[0, 0, 24] == 1.0 and out[0, 0, 37] == 2.0 and out[0, 0, 62] == 3.0
    assert out[0, 0, 20] == 0.0 and out[0, 0, 40] == 0.0 and out[0, 0, 60] == 0.0
    assert torch.equal(out[0, 0], out[0, 1])  # every frame alike: time is untouched


def test_eval_mode_or_probability_zero_leave_features_untouched() -> None:
    feats = torch.randn(3, 10, 40)
    lengths = torch.tensor([10, 7, 4])
    on = FrequencyWarp(FrequencyWarpConfig(prob=1.0))
    assert torch.equal(on.eval()(feats, lengths, torch.Generator().manual_seed(1)), feats)
    off = FrequencyWarp(FrequencyWarpConfig(prob=0.0)).train()
    assert torch.equal(off(feats, lengths, torch.Generator().manual_seed(1)), feats)


def test_about_prob_of_the_utterances_are_warped_the_rest_and_all_padding_are_bit_identical() -> None:
    feats = torch.randn(400, 12, 40)
    lengths = torch.randint(3, 13, (400,))
    warp = FrequencyWarp(FrequencyWarpConfig(prob=0.5)).train()
    out = warp(feats, lengths, torch.Generator().manual_seed(2))
    changed = (out != feats).flatten(1).any(dim=1)
    assert 0.42 < changed.float().mean() < 0.58
    for b in range(400):
        assert torch.equal(out[b, lengths[b]:], feats[b, lengths[b]:])
    again = warp(feats, lengths, torch.Generator().manual_seed(2))
    assert torch.equal(out, again)  # the generator decides everything


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [({"prob": 1.5}, "prob"), ({"knots": 0}, "knots"), ({"max_shift": 0.13}, "max_shift"), ({"max_shift": -0.1}, "max_shift")],
)
def test_bad_policies_name_their_key(kwargs, key) -> None:
    with pytest.raises(ConfigError, match=f"model.freq_warp.{key}"):
        FrequencyWarp(FrequencyWarpConfig(**kwargs))


def test_the_las_model_warps_in_training_only_and_loads_models_saved_before_the_option(fsdd_dir: Path, tmp_path) -> None:
    waves = [torch.from_numpy(load_audio(fsdd_dir / f"{name}.wav", 16000)) for name in FILES[:2]]
    wave = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)
    lengths = torch.tensor([len(w) for w in waves])
    tokenizer = CharTokenizer.from_texts(["zero", "one"])
    plain = tiny_rnn_las(tokenizer)
    warped = tiny_rnn_las(tokenizer, freq_warp=FrequencyWarpConfig(prob=1.0, max_shift=0.1))
    assert plain.state_dict().keys() == warped.state_dict().keys()  # no new weights
    plain.eval(), warped.eval()
    assert torch.equal(plain.encode(wave, lengths).memory, warped.encode(wave, lengths).memory)
    plain.train(), warped.train()
    torch.manual_seed(3)
    a = plain.encode(wave, lengths).memory
    torch.manual_seed(3)
    b = warped.encode(wave, lengths).memory
    assert not torch.allclose(a, b)
    # A model folder written before the option existed has no freq_warp key: it loads with the warp off.
    folder = plain.save_pretrained(tmp_path / "old")
    config = json.loads((folder / "config.json").read_text())
    del config["config"]["freq_warp"]
    (folder / "config.json").write_text(json.dumps(config))
    loaded = from_pretrained(folder)
    assert loaded.config.freq_warp.prob == 0.0
    loaded.eval(), plain.eval()
    assert torch.equal(loaded.encode(wave, lengths).memory, plain.encode(wave, lengths).memory)
