"""Speaker-adversarial training (speechseq.nn.adversary) and its place in the LAS model and recipe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_las import TINY, tiny_rnn_las

from speechseq.errors import ConfigError
from speechseq.hub import CheckpointError
from speechseq.models.las import LASModel
from speechseq.nn.adversary import SpeakerAdversary, SpeakerAdversaryConfig, reverse_gradient
from speechseq.text import CharTokenizer

SPEAKERS = ["george", "jackson", "lucas"]


def head(weight: float = 0.5) -> SpeakerAdversary:
    torch.manual_seed(0)
    return SpeakerAdversary(SpeakerAdversaryConfig(weight=weight, speakers=SPEAKERS, hidden_size=8), 6)


def test_the_reversal_is_the_identity_forward_and_negates_and_scales_the_gradient() -> None:
    x = torch.randn(3, 4, requires_grad=True)
    target = torch.randn(3, 4)
    y = reverse_gradient(x, 0.25)
    assert torch.equal(y, x)
    ((y - target) ** 2).sum().backward()
    torch.testing.assert_close(x.grad, -0.25 * 2 * (x.detach() - target))


def test_the_encoder_gets_minus_weight_times_the_classifiers_gradient_and_the_classifier_the_plain_one() -> None:
    adversary = head(weight=0.5)
    memory = torch.randn(2, 5, 6, requires_grad=True)
    lengths = torch.tensor([5, 3])
    adversary(memory, lengths, ["lucas", "george"]).loss.backward()
    reversed_grad = memory.grad.clone()
    classifier_grads = [p.grad.clone() for p in adversary.parameters()]

    plain = head(weight=0.5)  # same weights, the loss computed without the reversal layer
    memory.grad = None
    logits = plain.classifier(memory)
    targets = torch.tensor([2, 0]).unsqueeze(1).expand(-1, 5)
    per_frame = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    mask = torch.tensor([[1.0] * 5, [1.0] * 3 + [0.0] * 2])
    ((per_frame * mask).sum() / mask.sum()).backward()
    torch.testing.assert_close(reversed_grad, -0.5 * memory.grad)
    for got, want in zip(classifier_grads, [p.grad for p in plain.parameters()]):
        torch.testing.assert_close(got, want)
    assert reversed_grad[1, 3:].abs().sum() == 0  # padding frames get no gradient


def test_padding_frames_change_neither_loss_nor_accuracy() -> None:
    adversary = head()
    memory = torch.randn(2, 4, 6)
    lengths = torch.tensor([4, 2])
    padded = torch.cat([memory, torch.randn(2, 3, 6)], dim=1)  # longer batch, garbage in the new frames
    padded[1, 2:] = 100.0
    a = adversary(memory, lengths, ["george", "jackson"])
    b = adversary(padded, lengths, ["george", "jackson"])
    torch.testing.assert_close(a.loss, b.loss)
    assert a.accuracy == b.accuracy


def test_with_the_reversal_the_encoder_keeps_its_own_classifier_from_telling_the_speakers() -> None:
    """Frames = content (3 dims, a regression task needs them) + a speaker offset (3 dims). Without the
    reversal the classifier tells every frame's speaker; with it the encoder fights back and the
    classifier's accuracy over the last 100 updates stays far lower, while the task is still solved. The
    speaker is not gone from the states, though: a fresh classifier trained on them afterwards finds it."""
    torch.manual_seed(1)
    content = torch.randn(48, 10, 3)
    speaker = torch.arange(3).repeat_interleave(16)
    offsets = 2.0 * torch.randn(3, 3)[speaker].unsqueeze(1) + 0.3 * torch.randn(48, 10, 3)
    memory = torch.cat([content, offsets], dim=-1)
    target = content.sum(-1, keepdim=True)
    names = [SPEAKERS[i] for i in speaker]
    lengths = torch.full((48,), 10)

    def train(weight: float) -> tuple[float, float, torch.Tensor]:
        torch.manual_seed(2)
        encoder, task = torch.nn.Linear(6, 6), torch.nn.Linear(6, 1)
        adversary = head(weight if weight > 0 else 1e-12)  # ~0: the classifier trains, the encoder ignores it
        optimizer = torch.optim.Adam([*encoder.parameters(), *task.parameters(), *adversary.parameters()], lr=1e-2)
        accuracy = []
        for _ in range(400):
            optimizer.zero_grad()
            states = encoder(memory)
            out = adversary(states, lengths, names)
            (((task(states) - target) ** 2).mean() + out.loss).backward()
            optimizer.step()
            accuracy.append(out.accuracy)
        with torch.no_grad():
            states = encoder(memory)
            error = float(((task(states) - target) ** 2).mean())
        return sum(accuracy[-100:]) / 100, error, states

    accuracy_off, error_off, _ = train(0.0)
    accuracy_on, error_on, states = train(1.0)
    assert accuracy_off > 0.98 and error_off < 1e-3
    assert accuracy_on < 0.8 and error_on < 0.05

    probe = head(1e-12)
    optimizer = torch.optim.Adam(probe.parameters(), lr=2e-2)
    for _ in range(300):
        optimizer.zero_grad()
        probe(states, lengths, names).loss.backward()
        optimizer.step()
    assert probe(states, lengths, names).accuracy > 0.9


@pytest.mark.parametrize("kwargs, key", [
    ({"weight": -1.0, "speakers": SPEAKERS}, "model.adversary.weight"),
    ({"weight": 1.0, "speakers": ["george"]}, "model.adversary.speakers"),
    ({"weight": 1.0, "speakers": ["george", "george"]}, "model.adversary.speakers"),
    ({"weight": 1.0, "speakers": SPEAKERS, "hidden_size": 0}, "model.adversary.hidden_size"),
])
def test_bad_settings_name_their_key(kwargs, key) -> None:
    with pytest.raises(ConfigError, match=key):
        SpeakerAdversaryConfig(**kwargs).check()


def test_an_unknown_training_speaker_names_the_key_and_the_speaker() -> None:
    with pytest.raises(ConfigError, match=r"model.adversary.speakers .* \['nicolas'\]"):
        head()(torch.randn(1, 3, 6), torch.tensor([3]), ["nicolas"])


def batch(tokenizer: CharTokenizer, seconds: tuple[float, ...] = (0.5, 0.3)):
    torch.manual_seed(3)
    waves = torch.randn(len(seconds), int(16000 * max(seconds))) * 0.1
    lengths = torch.tensor([int(16000 * s) for s in seconds])
    tokens = torch.tensor([[5, 6, 7], [8, 5, 0]])[: len(seconds)]
    return waves, lengths, tokens, torch.tensor([3, 2])[: len(seconds)]


def test_the_las_model_adds_the_adversary_in_training_only(tmp_path: Path) -> None:
    tokenizer = CharTokenizer.from_texts(["zero", "one", "two"])
    plain = tiny_rnn_las(tokenizer).train()
    with_head = tiny_rnn_las(tokenizer, adversary=SpeakerAdversaryConfig(weight=0.5, speakers=SPEAKERS)).train()
    # the same seed builds the same LAS weights; the head comes on top
    assert set(plain.state_dict()) == {k for k in with_head.state_dict() if not k.startswith("speaker_adversary.")}
    with_head.load_state_dict({**with_head.state_dict(), **plain.state_dict()})
    wave, lengths, tokens, token_lengths = batch(tokenizer)

    torch.manual_seed(4)
    base = plain(wave, lengths, tokens, token_lengths, sampling_prob=0.0)
    torch.manual_seed(4)
    out = with_head(wave, lengths, tokens, token_lengths, sampling_prob=0.0, speakers=["lucas", "george"])
    torch.testing.assert_close(out.loss, base.loss + out.adversary_loss)
    with pytest.raises(ConfigError, match="speakers"):
        with_head(wave, lengths, tokens, token_lengths, sampling_prob=0.0)

    plain.eval(), with_head.eval()
    evaluated = with_head(wave, lengths, tokens, token_lengths)  # no speakers needed, no adversary
    assert evaluated.adversary_loss is None
    torch.testing.assert_close(evaluated.loss, plain(wave, lengths, tokens, token_lengths).loss)

    folder = with_head.save_pretrained(tmp_path / "saved")
    again = LASModel.from_pretrained(folder).eval()
    assert again.config.adversary.speakers == SPEAKERS
    torch.testing.assert_close(again(wave, lengths, tokens, token_lengths).loss, evaluated.loss, rtol=0, atol=0)


def test_fine_tuning_starts_the_head_fresh_but_any_other_missing_weight_is_still_an_error(tmp_path: Path) -> None:
    from speechseq.train import initialise_from

    tokenizer = CharTokenizer.from_texts(["zero", "one", "two"])
    pretrained = tiny_rnn_las(tokenizer)
    for p in pretrained.parameters():
        torch.nn.init.normal_(p)
    folder = pretrained.save_pretrained(tmp_path / "pretrained")
    model = tiny_rnn_las(tokenizer, adversary=SpeakerAdversaryConfig(weight=0.5, speakers=SPEAKERS))
    head_before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("speaker_adversary.")}
    initialise_from(model, str(folder))
    for key, value in pretrained.state_dict().items():
        assert torch.equal(model.state_dict()[key], value)
    for key, value in head_before.items():
        assert torch.equal(model.state_dict()[key], value)

    plain = tiny_rnn_las(tokenizer)
    plain.fresh_prefixes = lambda: ("decoder",)  # type: ignore[method-assign]
    del plain.ctc_head  # a missing weight outside the fresh heads
    plain.ctc_head = torch.nn.Linear(1, 1)
    with pytest.raises(CheckpointError, match="ctc_head"):
        initialise_from(plain, str(folder))


def test_the_recipe_fills_the_speakers_from_the_training_data(fsdd_dir: Path, tmp_path: Path) -> None:
    from speechseq.config import load_task_config
    from speechseq.train import train

    out_dir = tmp_path / "adv"
    config = load_task_config("las", TINY + [
        f"data.root={fsdd_dir}", f"output_dir={out_dir}", "model.adversary.weight=0.5",
        "data.fsdd_unseen_speakers=[george]",
    ])
    train(config)
    model = LASModel.from_pretrained(out_dir / "final")
    assert model.config.adversary.speakers == ["jackson", "lucas", "nicolas", "yweweler"]
    steps = [json.loads(line) for line in (out_dir / "scalars.jsonl").read_text().splitlines()]
    assert all(0.0 <= s["adversary_accuracy"] <= 1.0 and s["adversary_loss"] > 0 for s in steps)
