"""Closed-set ensembles, each model warped to its own VTLN factor (speechseq.ensemble), on tiny LAS models
overfit to five real FSDD recordings: one at their own speed, one at 1.15 times it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_adaptation import VOCABULARY
from test_inference import overfit, tiny_ctc, training_batch
from test_las import FILES, tiny_rnn_las

from speechseq.audio import load_audio, save_audio
from speechseq.augment import speed_perturb
from speechseq.commands_asr import main as asr_main
from speechseq.decoding import DecodingOptions
from speechseq.ensemble import closed_set_table, combine, ensemble_closed_set
from speechseq.errors import ConfigError
from speechseq.inference import transcribe
from speechseq.text import CharTokenizer
from speechseq.warp import DEFAULT_FACTORS, choose_warp, closed_set_confidence

RATE = 16000


@pytest.fixture(scope="module")
def setup(fsdd_dir: Path):
    """(model at the recordings' speed, model at 1.15 times it, the recordings)."""
    waves = [load_audio(fsdd_dir / f"{name}.wav", RATE) for name in FILES]
    tokenizer = CharTokenizer.from_texts(VOCABULARY)
    plain = overfit(tiny_rnn_las(tokenizer, "location"), training_batch(waves, tokenizer), waves)
    fast = [speed_perturb(w, RATE, 1.15) for w in waves]
    faster = overfit(tiny_rnn_las(tokenizer, "location"), training_batch(fast, tokenizer), fast)
    return plain, faster, waves


def test_one_model_unwarped_is_its_closed_set_decoding(setup) -> None:
    plain, _, waves = setup
    result = ensemble_closed_set([plain], waves, RATE, VOCABULARY, ctc_weight=0.3)
    options = DecodingOptions(ctc_weight=0.3, max_len_ratio=plain.config.max_decode_ratio)
    api = transcribe(plain, waves, options, vocabulary=VOCABULARY)
    assert result.texts == [r.text for r in api]
    assert result.scores.max(axis=1) == pytest.approx([r.score for r in api], abs=1e-4)
    assert result.factors == [1.0]


def test_each_model_scores_the_recordings_warped_by_its_own_factor(setup) -> None:
    """The model trained at 1.15 times the speed wants these recordings faster; the other wants them as they
    are. Each factor is the one single-model VTLN picks, and the sum is of each model's table at its factor."""
    plain, faster, waves = setup
    result = ensemble_closed_set([plain, faster], waves, RATE, VOCABULARY, ctc_weight=0.2, factors=DEFAULT_FACTORS)
    alone = [choose_warp(waves, RATE, DEFAULT_FACTORS, closed_set_confidence(m, VOCABULARY)).factor
             for m in (plain, faster)]
    assert result.factors == alone
    assert result.factors[1] > 1.0 and result.factors[1] != result.factors[0]
    expected = sum(combine(closed_set_table(m, [speed_perturb(w, RATE, f) for w in waves], VOCABULARY), 0.2)
                   for m, f in zip((plain, faster), result.factors))
    assert result.scores == pytest.approx(expected, abs=1e-4)
    assert result.texts == [VOCABULARY[k] for k in expected.argmax(axis=1)]
    shared = sum(combine(closed_set_table(m, [speed_perturb(w, RATE, result.factors[1]) for w in waves],
                                          VOCABULARY), 0.2) for m in (plain, faster))
    assert not np.allclose(result.scores, shared)  # one factor for both would be another ensemble


def test_the_table_holds_both_scorers_unweighted(setup) -> None:
    plain, _, waves = setup
    table = closed_set_table(plain, waves, VOCABULARY)
    for lam in (0.0, 0.5, 1.0):
        options = DecodingOptions(ctc_weight=lam, max_len_ratio=plain.config.max_decode_ratio)
        api = transcribe(plain, waves, options, vocabulary=VOCABULARY)
        assert [VOCABULARY[k] for k in combine(table, lam).argmax(axis=1)] == [r.text for r in api], lam


def test_bad_ensembles_are_clear_errors(setup) -> None:
    plain, _, waves = setup
    with pytest.raises(ConfigError, match="at least one model"):
        ensemble_closed_set([], waves, RATE, VOCABULARY)
    with pytest.raises(ConfigError, match="at least one recording"):
        ensemble_closed_set([plain], [], RATE, VOCABULARY)
    with pytest.raises(ConfigError, match="non-empty vocabulary"):
        ensemble_closed_set([plain], waves, RATE, [])
    with pytest.raises(ConfigError, match="positive speed factors"):
        ensemble_closed_set([plain], waves, RATE, VOCABULARY, factors=[0.0])
    ctc = tiny_ctc(plain.tokenizer)
    with pytest.raises(ConfigError, match="model 1 has no attention decoder"):
        ensemble_closed_set([plain, ctc], waves, RATE, VOCABULARY, factors=DEFAULT_FACTORS)


def test_cli_ensemble_with_vtln_prints_the_apis_decisions(setup, tmp_path, capsys) -> None:
    plain, faster, waves = setup
    folders = [plain.save_pretrained(tmp_path / "plain"), faster.save_pretrained(tmp_path / "faster")]
    files = []
    for name, wave in zip(FILES, waves):
        files.append(tmp_path / f"{name}.wav")
        save_audio(files[-1], wave, RATE)
    args = ["transcribe", "--model", str(folders[0]), "--ensemble", str(folders[1]), *map(str, files),
            "--vocabulary", ",".join(VOCABULARY), "--ctc-weight", "0.2", "--vtln", "--json", "--no-progress"]
    code = asr_main(args)
    out, err = capsys.readouterr()
    assert code == 0, err
    loaded = [load_audio(f, RATE) for f in files]
    api = ensemble_closed_set([plain, faster], loaded, RATE, VOCABULARY, 0.2, DEFAULT_FACTORS)
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["source"] for line in lines] == [str(f) for f in files]
    assert [line["text"] for line in lines] == api.texts
    assert lines[0]["factors"] == api.factors and f"speed factors {api.factors}" in err
    assert [line["scores"][t] for line, t in zip(lines, api.texts)] == pytest.approx(api.scores.max(axis=1), abs=1e-4)
    for extra, message in [(["--beam", "2"], "drop --stream"), (["--stream"], "drop --stream")]:
        assert asr_main([*args, *extra]) == 1 and message in capsys.readouterr().err
    no_vocabulary = [a for a in args if a not in ("--vocabulary", ",".join(VOCABULARY))]
    assert asr_main(no_vocabulary) == 1 and "add --vocabulary" in capsys.readouterr().err
