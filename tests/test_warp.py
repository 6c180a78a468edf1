"""Per-speaker VTLN by a speed warp chosen on the model's confidence (speechseq.warp), on a tiny LAS model
overfit to five real FSDD recordings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_adaptation import VOCABULARY
from test_inference import overfit, training_batch
from test_las import FILES, tiny_rnn_las

from speechseq.audio import load_audio, save_audio
from speechseq.augment import speed_perturb
from speechseq.commands_asr import main as asr_main
from speechseq.decoding import DecodingOptions
from speechseq.decoding.closed_set import closed_set_decode
from speechseq.errors import ConfigError
from speechseq.inference import transcribe
from speechseq.text import CharTokenizer
from speechseq.warp import DEFAULT_FACTORS, choose_warp, closed_set_confidence, pick, transcript_confidence

RATE = 16000


@pytest.fixture(scope="module")
def setup(fsdd_dir: Path):
    waves = [load_audio(fsdd_dir / f"{name}.wav", RATE) for name in FILES]
    tokenizer = CharTokenizer.from_texts(VOCABULARY)
    return overfit(tiny_rnn_las(tokenizer, "location"), training_batch(waves, tokenizer), waves), waves


@pytest.mark.parametrize("played_at", [1 / 1.15, 1.15])
def test_the_chosen_warp_undoes_a_speed_change_of_the_audio_the_model_knows(setup, played_at) -> None:
    """The model has heard these five recordings at their own speed only. Played slower (lower formants, as
    from a longer vocal tract), the warp the model is surest of plays them faster, and the other way round.
    (The tiny model's confidence is flat within a few per cent of the right factor, so only the side is
    asserted, and that the right factor beats its mirror image.)"""
    model, waves = setup
    speaker = [speed_perturb(w, RATE, played_at) for w in waves]
    choice = choose_warp(speaker, RATE, DEFAULT_FACTORS, closed_set_confidence(model, VOCABULARY))
    undo, mirror = (1.15, 0.85) if played_at < 1 else (0.85, 1.15)
    assert (choice.factor > 1.0) == (played_at < 1.0) and choice.factor != 1.0
    assert set(choice.scores) == set(DEFAULT_FACTORS)
    assert choice.scores[undo] > choice.scores[mirror]


def test_the_confidence_is_the_decoder_log_probability_of_the_best_word(setup) -> None:
    model, waves = setup
    scores = closed_set_confidence(model, VOCABULARY)(waves)
    candidates = [model.tokenizer.encode(w) for w in VOCABULARY]
    options = DecodingOptions(beam_size=10, nbest=10, ctc_weight=0.5, length_bonus=1.0)  # the mix must not leak in
    for wave, score in zip(waves, scores):
        with torch.no_grad():
            enc = model.encode(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))
        (result,) = closed_set_decode(model.decoder, enc, candidates, options)
        best = max(h.scores["decoder"] for h in result.hypotheses)
        assert score == pytest.approx(best, abs=1e-5)
        assert score < 0.0


def test_ties_go_to_no_warp_and_bad_input_is_a_clear_error() -> None:
    assert pick({0.95: -1.0, 1.0: -1.0, 1.05: -1.0}) == 1.0
    assert pick({0.9: -1.0, 1.1: -1.0}) in (0.9, 1.1)
    wave = np.zeros(800, np.float32)
    with pytest.raises(ConfigError, match="positive speed factors"):
        choose_warp([wave], RATE, [1.0, 0.0], lambda ws: np.zeros(len(ws)))
    with pytest.raises(ConfigError, match="positive speed factors"):
        choose_warp([wave], RATE, [], lambda ws: np.zeros(len(ws)))
    with pytest.raises(ConfigError, match="at least one recording"):
        choose_warp([], RATE, [1.0], lambda ws: np.zeros(len(ws)))
    with pytest.raises(ConfigError, match="shape"):
        choose_warp([wave, wave], RATE, [1.0], lambda ws: np.zeros(1))


def test_the_guard_warps_only_when_the_confidence_gain_is_large_enough() -> None:
    scores = {0.9: -0.97, 0.95: -0.985, 1.0: -1.0, 1.1: -1.2}  # 0.9 beats no warp by 0.03
    assert pick(scores) == 0.9
    assert pick(scores, min_gain=0.03 - 1e-9) == 0.9
    assert pick(scores, min_gain=0.031) == 1.0  # not 0.95 either: below the gain, no warp at all
    # choose_warp passes the guard on: a scorer that likes 0.9 slightly (by its duration) is left unwarped.
    waves = [np.random.default_rng(0).standard_normal(8000).astype(np.float32)]
    def prefers_longer(warped):
        return np.array([len(w) / 8000 * 0.01 for w in warped])
    assert choose_warp(waves, RATE, [0.9, 1.0, 1.1], prefers_longer).factor == 0.9
    assert choose_warp(waves, RATE, [0.9, 1.0, 1.1], prefers_longer, min_gain=0.01).factor == 1.0
    with pytest.raises(ConfigError, match="needs the factor 1.0 in the grid"):
        pick({0.9: -1.0, 1.1: -2.0}, min_gain=0.01)


def test_cli_vtln_warps_one_speakers_files_by_the_chosen_factor(setup, tmp_path, capsys) -> None:
    """``speechseq transcribe --vtln``: the files are slowed recordings; the factor the CLI reports plays them
    faster, and its transcripts are the Python API's on the files warped by that factor."""
    model, waves = setup
    folder = model.save_pretrained(tmp_path / "model")
    files = []
    for name, wave in zip(FILES, waves):
        files.append(tmp_path / f"{name}.wav")
        save_audio(files[-1], speed_perturb(wave, RATE, 1 / 1.15), RATE)
    code = asr_main(["transcribe", "--model", str(folder), *map(str, files), "--vocabulary", ",".join(VOCABULARY),
                     "--vtln", "--json", "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 0, err
    factor = float(err.split("vtln: speed factor ")[1].split()[0])
    assert factor > 1.0
    warped = [speed_perturb(load_audio(f, RATE), RATE, factor) for f in files]
    options = DecodingOptions(max_len_ratio=model.config.max_decode_ratio)
    api = transcribe(model, warped, options, vocabulary=VOCABULARY)
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["source"] for line in lines] == [str(f) for f in files]
    assert [line["text"] for line in lines] == [r.text for r in api]
    assert [line["score"] for line in lines] == pytest.approx([r.score for r in api], abs=1e-4)
    assert [line["duration"] for line in lines] == pytest.approx([len(load_audio(f, RATE)) / RATE for f in files])
    for extra, message in [([], "add --vocabulary"), (["--vocabulary", "one", "--stream"], "--vtln")]:
        code = asr_main(["transcribe", "--model", str(folder), str(files[0]), "--vtln", *extra])
        assert code == 1 and message in capsys.readouterr().err


def test_the_open_vocabulary_confidence_is_the_greedy_transcripts_decoder_log_probability_per_token(setup) -> None:
    model, waves = setup
    scores = transcript_confidence(model)(waves)
    for wave, score in zip(waves, scores):
        (greedy,) = transcribe(model, [wave], DecodingOptions(max_len_ratio=model.config.max_decode_ratio))
        tokens = torch.tensor([greedy.tokens])
        with torch.no_grad():  # teacher-forced: log p(transcript + eos | audio), summed over its tokens
            enc = model.encode(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))
            (result,) = closed_set_decode(model.decoder, enc, [greedy.tokens], DecodingOptions())
        assert tokens.numel() > 0
        assert score == pytest.approx(result.hypotheses[0].scores["decoder"] / (len(greedy.tokens) + 1), abs=1e-4)
    slowed = transcript_confidence(model)([speed_perturb(w, RATE, 1 / 1.15) for w in waves])
    assert scores.mean() > slowed.mean()  # the model is surer of the recordings it knows as they are
