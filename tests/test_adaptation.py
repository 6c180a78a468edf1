"""Self-training adaptation (speechseq.adaptation) of a tiny LAS model overfit to five real FSDD recordings."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_inference import OTHER_WORDS, OTHERS, overfit, training_batch
from test_las import FILES, WORDS, tiny_rnn_las

from speechseq.adaptation import PseudoLabel, SelfTrainingConfig, confidence, pseudo_label, self_train
from speechseq.audio import load_audio
from speechseq.data.collate import pad_tokens, pad_waves
from speechseq.decoding import DecodingOptions
from speechseq.decoding.closed_set import closed_set_decode
from speechseq.errors import ConfigError, SpeechSeqError
from speechseq.text import CharTokenizer

VOCABULARY = WORDS + OTHER_WORDS  # ten words the tokenizer can write


@pytest.fixture(scope="module")
def setup(fsdd_dir: Path):
    waves = [load_audio(fsdd_dir / f"{name}.wav", 16000) for name in FILES]
    # the "new speaker": other takes of other speakers, never trained on
    new = [load_audio(fsdd_dir / f"{name}.wav", 16000) for name in OTHERS + ["0_george_3", "2_jackson_4"]]
    tokenizer = CharTokenizer.from_texts(VOCABULARY)
    model = overfit(tiny_rnn_las(tokenizer, "location"), training_batch(waves, tokenizer), waves)
    return model, new


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def pseudo_loss(model, waves: list[np.ndarray], texts: list[str]) -> float:
    """Joint loss of ``model`` (eval mode) on ``texts`` as the transcripts of ``waves``."""
    wave, lengths = pad_waves(waves)
    tokens, token_lengths = pad_tokens([model.tokenizer.encode(t) for t in texts])
    with torch.no_grad():
        return float(model.eval()(wave, lengths, tokens, token_lengths).loss)


def test_confidence_is_the_closed_set_posterior_of_the_best_candidate(setup) -> None:
    model, new = setup
    options = DecodingOptions(beam_size=10, nbest=10, ctc_weight=0.3)
    labels = pseudo_label(model, new, options, vocabulary=VOCABULARY)
    candidates = [model.tokenizer.encode(w) for w in VOCABULARY]
    for wave, label in zip(new, labels):
        with torch.no_grad():
            enc = model.encode(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))
        (result,) = closed_set_decode(model.decoder, enc, candidates, options)
        scores = torch.tensor([h.score for h in result.hypotheses], dtype=torch.float64)
        assert label.text == model.tokenizer.decode(result.tokens)
        assert label.confidence == pytest.approx(float(scores.softmax(0)[0]), abs=1e-6)
    assert confidence([0.0, float("-inf")]) == 1.0


def test_self_training_learns_its_confident_labels_and_leaves_the_model_alone(setup) -> None:
    model, new = setup
    before = weights(model)
    rng_state = torch.get_rng_state()
    config = SelfTrainingConfig(steps=15, lr=3e-3, batch_size=4, min_confidence=0.3, seed=1)
    adapted, report = self_train(model, new, config, vocabulary=VOCABULARY)
    assert torch.equal(torch.get_rng_state(), rng_state)  # the caller's RNG did not move
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the original is untouched
    assert not adapted.training and len(report.losses) == 15
    assert report.kept == [i for i, lab in enumerate(report.labels) if lab.confidence >= 0.3]
    assert 0 < len(report.kept)
    kept_waves = [new[i] for i in report.kept]
    kept_texts = [report.labels[i].text for i in report.kept]
    # it moved towards its own transcripts: their loss fell, and it reads them back
    assert pseudo_loss(adapted, kept_waves, kept_texts) < 0.7 * pseudo_loss(model, kept_waves, kept_texts)
    relabel = pseudo_label(adapted, kept_waves, vocabulary=VOCABULARY)
    assert [lab.text for lab in relabel] == kept_texts
    # the same seed gives the same weights, another seed other weights
    again, _ = self_train(model, new, config, vocabulary=VOCABULARY)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in adapted.state_dict().items())
    other, _ = self_train(model, new, SelfTrainingConfig(**{**config.__dict__, "seed": 2}), vocabulary=VOCABULARY)
    assert any(not torch.equal(v, other.state_dict()[k]) for k, v in adapted.state_dict().items())


def test_nothing_confident_and_bad_settings_are_named(setup, monkeypatch) -> None:
    model, new = setup
    unsure = [PseudoLabel("one", 0.4), PseudoLabel("nine", 0.6)]
    monkeypatch.setattr("speechseq.adaptation.pseudo_label", lambda *args, **kwargs: unsure)
    with pytest.raises(SpeechSeqError, match=r"min_confidence 0.8 \(best 0.600\)"):
        self_train(model, new[:2], SelfTrainingConfig(steps=1), vocabulary=VOCABULARY)
    for key, value in [("steps", 0), ("lr", 0.0), ("min_confidence", 1.5), ("batch_size", 0)]:
        with pytest.raises(ConfigError, match=f"SelfTrainingConfig.{key}"):
            SelfTrainingConfig(**{key: value})
    with pytest.raises(ConfigError, match="at least one recording"):
        self_train(model, [])


def test_cli_adapt_saves_the_adapted_model_and_what_it_learnt_from(setup, fsdd_dir: Path, tmp_path: Path, capsys) -> None:
    from speechseq.commands_asr import main as asr_main
    from speechseq.models import from_pretrained

    model, new = setup
    folder = model.save_pretrained(tmp_path / "model")
    files = [fsdd_dir / f"{name}.wav" for name in OTHERS + ["0_george_3", "2_jackson_4"]]  # 8 kHz, resampled
    argv = ["adapt", "--model", folder, "--out", tmp_path / "adapted", "--vocabulary", ",".join(VOCABULARY),
            "--ctc-weight", "0.3", "--steps", "6", "--lr", "3e-3", "--min-confidence", "0.3", "--no-progress", *files]
    assert asr_main([str(a) for a in argv]) == 0
    assert "adapted model in" in capsys.readouterr().out
    record = json.loads((tmp_path / "adapted" / "adaptation.json").read_text())
    options = DecodingOptions(beam_size=10, nbest=10, ctc_weight=0.3)
    config = SelfTrainingConfig(steps=6, lr=3e-3, min_confidence=0.3)
    api, report = self_train(from_pretrained(folder), new, config, options, VOCABULARY)
    assert [f["text"] for f in record["files"]] == [lab.text for lab in report.labels]
    assert [f["kept"] for f in record["files"]] == [i in report.kept for i in range(len(new))]
    saved = from_pretrained(tmp_path / "adapted")
    for key, value in api.state_dict().items():
        torch.testing.assert_close(saved.state_dict()[key], value, rtol=0, atol=1e-6)
    code = asr_main(["adapt", "--model", str(folder), "--out", str(tmp_path / "x"), "--int8", str(files[0])])
    assert code == 1 and "--int8" in capsys.readouterr().err
    code = asr_main(["adapt", "--model", str(folder), "--out", str(tmp_path / "x"), str(tmp_path / "missing.wav")])
    assert code == 1 and "missing.wav" in capsys.readouterr().err


def test_pseudo_labels_fuse_the_language_model_when_given(setup) -> None:
    """With an LM weighing 1000, every pseudo-label is the phrase the LM prefers; the confidence is the
    posterior of the fused scores."""
    from speechseq.models.lm import LMConfig, RNNLM

    model, new = setup
    torch.manual_seed(3)
    lm = RNNLM(LMConfig(vocab_size=model.config.vocab_size, embedding_dim=8, hidden_size=16, num_layers=1)).eval()
    tokens, lengths = pad_tokens([model.tokenizer.encode(w) for w in VOCABULARY])
    with torch.no_grad():
        lm_logp = -lm(tokens, lengths).utterance_nll
    top2 = lm_logp.topk(2).values
    assert float(top2[0] - top2[1]) > 0.05  # the LM's favourite is clear enough for the check below
    options = DecodingOptions(beam_size=10, nbest=10, ctc_weight=0.3, lm_weight=1000.0)
    labels = pseudo_label(model, new, options, vocabulary=VOCABULARY, lm=lm)
    assert {lab.text for lab in labels} == {VOCABULARY[int(lm_logp.argmax())]}
    plain = pseudo_label(model, new, dataclasses.replace(options, lm_weight=0.0), vocabulary=VOCABULARY)
    assert [lab.text for lab in plain] != [lab.text for lab in labels]
