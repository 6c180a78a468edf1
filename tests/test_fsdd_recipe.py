"""The FSDD leave-one-speaker-out protocol (tasks/las/fsdd_loso.py) and its config, without training.

The point of the protocol is that the held-out speaker is never seen: these tests build the splits exactly as
the training run would (same config loading, same split function) and check speaker sets, counts, the
results table and that the packaged config builds a model on FSDD's band-limited features.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def task_script(name: str):
    """``tasks/las/{name}.py`` imported as a module (tasks/ is not a package the library may import)."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "tasks" / "las" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def loso():
    """The fold script."""
    return task_script("fsdd_loso")


def test_speakers_found(loso, fsdd_dir: Path) -> None:
    assert loso.fsdd_speakers(fsdd_dir) == ["george", "jackson", "lucas", "nicolas", "yweweler"]


def test_every_fold_holds_its_speaker_out(loso, fsdd_dir: Path, tmp_path: Path) -> None:
    speakers = loso.fsdd_speakers(fsdd_dir)
    plans = loso.plan_runs(fsdd_dir, tmp_path, speakers, True, ["seed=3"])
    assert [p.name for p in plans] == speakers + ["all"]
    for plan in plans[:-1]:
        splits = loso.split_speakers(plan)
        others = set(speakers) - {plan.held_out}
        # The held-out speaker never trains and never selects the checkpoint; all 500 takes are its test.
        for split in ("train", "validation", "test"):
            assert set(splits[split]) == others, (plan.name, split)
        assert splits["test_unseen"] == {plan.held_out: 500}
        assert splits["train"] == {s: 400 for s in others}  # takes 10-49 of 10 digits
        assert splits["validation"] == {s: 50 for s in others}  # takes 5-9
        assert plan.output_dir == tmp_path / plan.name
        assert "seed=3" in plan.command()


def test_training_from_take_0_adds_the_eval_takes_of_the_training_speakers_only(
    loso, fsdd_dir: Path, tmp_path: Path
) -> None:
    """data.fsdd_train_from_take=0: the four training speakers' takes 0-9 train too; the held-out speaker still
    never trains, and validation and test keep their takes (no longer held out, said in the log)."""
    (plan,) = loso.plan_runs(fsdd_dir, tmp_path, ["george"], False, ["data.fsdd_train_from_take=0"])
    splits = loso.split_speakers(plan)
    others = {"jackson", "lucas", "nicolas", "yweweler"}
    assert splits["train"] == {s: 500 for s in others}
    assert splits["validation"] == {s: 50 for s in others} and splits["test"] == {s: 50 for s in others}
    assert splits["test_unseen"] == {"george": 500}

    from speechseq.errors import ConfigError
    from speechseq.recipes.base import AsrDataConfig, load_asr_splits

    with pytest.raises(ConfigError, match="data.fsdd_train_from_take"):
        load_asr_splits(AsrDataConfig(corpus="fsdd", root=str(fsdd_dir), fsdd_train_from_take=11))


def test_all_speakers_run_trains_on_everyone(loso, fsdd_dir: Path, tmp_path: Path) -> None:
    (plan,) = loso.plan_runs(fsdd_dir, tmp_path, [], True, [])
    splits = loso.split_speakers(plan)
    assert plan.held_out is None and "test_unseen" not in splits
    assert splits["train"] == {s: 400 for s in loso.fsdd_speakers(fsdd_dir)}


def test_extra_overrides_cannot_move_the_held_out_speaker(loso, fsdd_dir: Path, tmp_path: Path) -> None:
    (plan,) = loso.plan_runs(fsdd_dir, tmp_path, ["lucas"], False, ["data.fsdd_unseen_speakers=[george]"])
    assert set(loso.split_speakers(plan)["test_unseen"]) == {"lucas"}


def test_results_table_and_mean(loso, tmp_path: Path) -> None:
    plans = loso.plan_runs(tmp_path, tmp_path, ["a", "b"], True, [])
    metrics = [
        {"test_unseen": {"wer": 0.10, "cer": 0.05}, "test": {"wer": 0.0}, "validation": {"wer": 0.01}},
        {"test_unseen": {"wer": 0.04, "cer": 0.02}, "test": {"wer": 0.02}, "validation": {"wer": 0.0}},
        {"test": {"wer": 0.0}, "validation": {"wer": 0.0}},
    ]
    results = [loso.result_from_metrics(p, m, 60.0) for p, m in zip(plans, metrics)]
    assert loso.mean_unseen_wer(results) == pytest.approx(0.07)  # the all-speakers run is not a fold
    loso.write_results(results, tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["mean_unseen_wer"] == pytest.approx(0.07)
    assert [r["unseen_wer"] for r in saved["runs"]] == [0.10, 0.04, None]
    table = (tmp_path / "out" / "results.md").read_text().splitlines()
    assert table[2] == "| a | 10.0 | 5.0 | 0.0 | 1.0 | 1.0 |"
    assert table[-1] == "| **mean over folds** | **7.0** | | | | |"


def test_dry_run_trains_nothing(loso, fsdd_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "loso"
    assert loso.main(["--root", str(fsdd_dir), "--out", str(out), "--folds", "nicolas", "--no-all", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "data.fsdd_unseen_speakers=[nicolas]" in printed and "test_unseen: {'nicolas': 500}" in printed
    assert not out.exists()
    assert loso.main(["--root", str(fsdd_dir), "--out", str(out), "--only-all", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("speechseq.train") == 1 and "data.fsdd_unseen_speakers=[]" in printed
    assert "test_unseen" not in printed  # everyone trains, no one is held out
    assert "train: {'george': 400, 'jackson': 400, 'lucas': 400, 'nicolas': 400, 'yweweler': 400}" in printed
    with pytest.raises(SystemExit, match="--only-all"):
        loso.main(["--root", str(fsdd_dir), "--out", str(out), "--only-all", "--no-all", "--dry-run"])


def test_config_features_ignore_the_empty_band(fsdd_dir: Path) -> None:
    """The packaged FSDD config loads strictly, and its front end does not see above FSDD's 4 kHz Nyquist."""
    import dataclasses

    import torch

    from speechseq.config import load_task_config
    from speechseq.features import LogMel

    cfg = load_task_config(None, [f"config={REPO_ROOT / 'speechseq/configs/las_fsdd.yaml'}", f"data.root={fsdd_dir}"])
    assert cfg.task == "las" and cfg.data.corpus == "fsdd" and cfg.features.fmax == 4000.0
    t = np.arange(8000) / cfg.features.sample_rate
    low = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * np.random.default_rng(0).standard_normal(t.size)
    high = 0.3 * np.sin(2 * np.pi * 6000 * t)
    waves = torch.tensor(np.stack([low, low + high]), dtype=torch.float32)
    lengths = torch.tensor([8000, 8000])
    mel, _ = LogMel(cfg.features)(waves, lengths)
    full, _ = LogMel(dataclasses.replace(cfg.features, fmax=8000.0))(waves, lengths)
    # A 6 kHz tone (only resampling artefacts live there for 8 kHz audio) leaves the FSDD features unchanged,
    # while a full-band front end sees it.
    # Per band, mean over frames: round-off in quiet bands moves single frames a little, the tone a band a lot.
    assert (mel[0] - mel[1]).abs().mean(0).max() < 0.2
    assert (full[0] - full[1]).abs().mean(0).max() > 1.0


@pytest.fixture(scope="module")
def confusions_script():
    """tasks/las/fsdd_confusions.py."""
    return task_script("fsdd_confusions")


def test_confusions_and_errors_shared_by_two_runs(confusions_script, fsdd_dir: Path) -> None:
    files, refs = confusions_script.speaker_files(fsdd_dir, "george")
    assert len(files) == 500 and refs.count("two") == 50 and refs[0] == confusions_script.DIGITS[int(files[0].name[0])]
    first = ["four" if r == "two" else r for r in refs]  # every "two" heard as "four"
    second = ["zero" if r == "two" and i % 2 else h for i, (r, h) in enumerate(zip(refs, first))]
    assert confusions_script.confusions(refs, first) == {("two", "four"): 50}
    assert confusions_script.shared_errors(refs, first, second) == (50, 25)


def test_confusions_from_cached_tables_pool_runs_and_pick_the_factor_and_ctc_weight(confusions_script, tmp_path) -> None:
    import numpy as np

    digits = confusions_script.DIGITS
    refs = ["two"] * 4 + ["six"] * 4

    def save(folder: Path, two_as_zero: int) -> None:
        # Factor 1: the first `two_as_zero` "two"s go to "zero" by the decoder; CTC always gets them right.
        # Factor 0.9: the decoder is always right.
        decoder = np.full((2, 8, 10), -5.0)
        ctc = np.full((2, 8, 10), -5.0)
        for i, ref in enumerate(refs):
            decoder[:, i, digits.index(ref)] = -1.0
            ctc[:, i, digits.index(ref)] = -1.0
        decoder[1, :two_as_zero, digits.index("zero")] = -0.5
        (folder / "warp_tables").mkdir(parents=True)
        np.savez(folder / "warp_tables" / "jackson.npz", factors=np.array([0.9, 1.0]), references=np.array(refs),
                 decoder=decoder, ctc=ctc)

    save(tmp_path / "s0", 2)
    save(tmp_path / "s1", 4)
    runs, wer, pairs = confusions_script.table_confusions([tmp_path / "s0", tmp_path / "s1"], 1.0, 0.0)["jackson"]
    assert (runs, wer, pairs) == (2, 100.0 * 6 / 16, {("two", "zero"): 6})
    assert confusions_script.table_confusions([tmp_path / "s0"], 0.9, 0.0)["jackson"][1] == 0.0
    assert confusions_script.table_confusions([tmp_path / "s1"], 1.0, 0.5)["jackson"][1] == 0.0  # CTC outvotes
    with pytest.raises(confusions_script.ConfigError, match="factor 1.1 is not among"):
        confusions_script.table_confusions([tmp_path / "s0"], 1.1, 0.0)
    with pytest.raises(confusions_script.ConfigError, match="no warp_tables"):
        confusions_script.table_confusions([tmp_path], 1.0, 0.0)
    assert confusions_script.main([str(tmp_path), "--tables", "1.0"]) == 2  # the CLI says so, no traceback


def test_digit_scores_of_a_padded_candidate_batch_equal_each_word_scored_alone(confusions_script, fsdd_dir) -> None:
    # The ten words have 3-5 letters and are scored as one padded batch; padding must not leak into a score.
    import torch
    from test_las import tiny_rnn_las

    from speechseq.audio import load_audio
    from speechseq.text import CharTokenizer

    digits = confusions_script.DIGITS
    model = tiny_rnn_las(CharTokenizer.from_texts(list(digits))).eval()
    model.config.label_smoothing = 0.1
    wave = load_audio(fsdd_dir / "7_lucas_2.wav", 16000)
    scores = confusions_script.digit_scores(model, [wave])
    assert model.config.label_smoothing == 0.1  # restored
    model.config.label_smoothing = 0.0
    for k, word in enumerate(digits):
        tokens = torch.tensor([model.tokenizer.encode(word)])
        with torch.no_grad():
            alone = model(torch.from_numpy(wave)[None], torch.tensor([len(wave)]), tokens, torch.tensor([len(word)]))
        assert scores[0, k] == pytest.approx(-float(alone.utterance_loss[0]) * (len(word) + 1), rel=1e-4)


@pytest.fixture(scope="module")
def eq_script():
    """tasks/las/fsdd_speaker_eq.py."""
    return task_script("fsdd_speaker_eq")


def _mini_fsdd(fsdd_dir: Path, folder: Path, takes: dict[str, range]) -> Path:
    """A folder of links to some FSDD recordings (nothing copied): speaker -> takes of every digit."""
    folder.mkdir()
    for speaker, indices in takes.items():
        for digit in range(10):
            for index in indices:
                name = f"{digit}_{speaker}_{index}.wav"
                (folder / name).symlink_to(fsdd_dir / name)
    return folder


def test_speaker_eq_reference_is_the_training_speakers_and_ignores_the_held_out_one(
    eq_script, fsdd_dir: Path, tmp_path: Path
) -> None:
    from speechseq.audio import load_audio

    src_a = _mini_fsdd(fsdd_dir, tmp_path / "src_a", {"george": range(2), "jackson": range(2), "lucas": range(2)})
    src_b = _mini_fsdd(fsdd_dir, tmp_path / "src_b", {"george": range(2, 5), "jackson": range(2), "lucas": range(2)})
    record_a = eq_script.equalize_folder(src_a, tmp_path / "a", ["jackson", "lucas"])
    record_b = eq_script.equalize_folder(src_b, tmp_path / "b", ["lucas", "jackson"])
    assert sorted(p.name for p in (tmp_path / "a").glob("*.wav")) == sorted(p.name for p in src_a.iterdir())
    assert record_a["reference_speakers"] == ["jackson", "lucas"] and record_a["sample_rate"] == 8000
    # Other recordings of the held-out speaker change nothing for the reference speakers, to the byte.
    assert record_a["reference"] == record_b["reference"]
    for name in ("0_jackson_0.wav", "7_lucas_1.wav"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    # The held-out speaker is filtered (his curve is far from theirs), keeping his length.
    george, original = load_audio(tmp_path / "a" / "2_george_1.wav"), load_audio(fsdd_dir / "2_george_1.wav")
    assert george.shape == original.shape and np.abs(george - original).max() > 0.05
    # A new speaker's folder (any names, --one-speaker) equalised to a saved reference gets the same filter.
    alone = _mini_fsdd(fsdd_dir, tmp_path / "george_only", {"george": range(2)})
    eq_script.equalize_folder(alone, tmp_path / "c", reference_file=tmp_path / "a" / "speaker_eq.json", one_speaker=True)
    for name in ("2_george_1.wav", "9_george_0.wav"):
        assert (tmp_path / "c" / name).read_bytes() == (tmp_path / "a" / name).read_bytes()
    # The same request reuses the folder; another reference rewrites it.
    stamp = (tmp_path / "a" / "0_jackson_0.wav").stat().st_mtime_ns
    eq_script.equalize_folder(src_a, tmp_path / "a", ["jackson", "lucas"])
    assert (tmp_path / "a" / "0_jackson_0.wav").stat().st_mtime_ns == stamp
    assert eq_script.equalize_folder(src_a, tmp_path / "a", ["jackson"])["reference_speakers"] == ["jackson"]
    assert (tmp_path / "a" / "0_jackson_0.wav").read_bytes() != (tmp_path / "b" / "0_jackson_0.wav").read_bytes()


def test_speaker_eq_refuses_a_missing_reference_speaker_and_mixed_rates(
    eq_script, fsdd_dir: Path, tmp_path: Path
) -> None:
    from speechseq.audio import load_audio, save_audio
    from speechseq.errors import AudioError

    src = _mini_fsdd(fsdd_dir, tmp_path / "src", {"george": range(1), "jackson": range(1)})
    with pytest.raises(ValueError, match="nicolas"):
        eq_script.equalize_folder(src, tmp_path / "out", ["nicolas"])
    save_audio(src / "0_lucas_0.wav", load_audio(fsdd_dir / "0_lucas_0.wav", 16000), 16000)
    with pytest.raises(AudioError, match="0_lucas_0.wav"):
        eq_script.equalize_folder(src, tmp_path / "out", ["george"])
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_speaker_eq_runs_each_read_their_own_copy_equalised_to_their_training_speakers(
    loso, fsdd_dir: Path, tmp_path: Path
) -> None:
    plans = loso.plan_runs(fsdd_dir, tmp_path, ["george", "lucas"], True, ["seed=1"], speaker_eq=True)
    everyone = loso.fsdd_speakers(fsdd_dir)
    for plan in plans:
        assert plan.root == tmp_path / "audio" / plan.name
        assert plan.equalize == (fsdd_dir, [s for s in everyone if s != plan.held_out])
    assert plans[-1].name == "all" and plans[-1].equalize[1] == everyone
    assert loso.plan_runs(fsdd_dir, tmp_path, ["george"], False, [])[0].root == fsdd_dir


def test_scoring_scripts_read_a_speaker_eq_folds_own_recordings(tmp_path: Path) -> None:
    beam = task_script("fsdd_beam")
    for fold in ("george", "lucas"):
        (tmp_path / "out" / fold / "final").mkdir(parents=True)
    (tmp_path / "out" / "audio" / "george").mkdir(parents=True)
    (tmp_path / "out" / "audio" / "george" / "speaker_eq.json").write_text("{}")
    (tmp_path / "out" / "audio" / "lucas").mkdir(parents=True)  # no record: an interrupted equalisation
    models = beam.fold_models([tmp_path / "out"])
    assert beam.fold_root(models["george"], "george", tmp_path / "orig") == tmp_path / "out" / "audio" / "george"
    assert beam.fold_root(models["lucas"], "lucas", tmp_path / "orig") == tmp_path / "orig"


def test_adaptation_scores_each_half_with_a_model_adapted_on_the_other(fsdd_dir: Path) -> None:
    """fsdd_adapt.py's halves: disjoint, together every recording of the speaker, split by take."""
    adapt = task_script("fsdd_adapt")
    rows = [{"id": p.stem} for p in sorted(fsdd_dir.glob("*_george_*.wav"))]
    first, second = adapt.halves_by_take(rows)
    assert len(first) == len(second) == 250
    assert {r["id"] for r in first}.isdisjoint(r["id"] for r in second)
    assert {r["id"] for r in first} | {r["id"] for r in second} == {r["id"] for r in rows}
    assert all(int(r["id"].split("_")[2]) < 25 for r in first)


def test_adapt_fold_scores_every_recording_once_before_and_after(fsdd_dir: Path, tmp_path: Path) -> None:
    """fsdd_adapt.adapt_fold end to end on a tiny untrained model: its "before" WER is the unadapted model's
    closed-set WER over all 500 recordings, and two updates of adaptation at lr 0 change no word."""
    import argparse

    from test_las import tiny_rnn_las

    from speechseq.decoding import DecodingOptions
    from speechseq.inference import evaluate
    from speechseq.recipes.base import AsrDataConfig, load_asr_splits
    from speechseq.text import CharTokenizer

    adapt = task_script("fsdd_adapt")
    model = tiny_rnn_las(CharTokenizer.from_texts(adapt.DIGITS), "location")
    folder = model.save_pretrained(tmp_path / "out" / "george" / "final")
    args = argparse.Namespace(ctc_weight=0.3, steps=2, lr=1e-12, min_confidence=0.0, seed=0)
    result = adapt.adapt_fold(folder, "george", fsdd_dir, args)
    held_out = load_asr_splits(AsrDataConfig(corpus="fsdd", root=str(fsdd_dir), fsdd_unseen_speakers=["george"]))
    direct = evaluate(model.eval(), held_out["test_unseen"], DecodingOptions(ctc_weight=0.3), batch_size=64,
                      vocabulary=adapt.DIGITS)
    assert result["utterances"] == 500 and result["kept"] == 500
    assert result["before_wer"] == round(100 * direct["wer"], 1)
    assert result["after_wer"] == result["before_wer"]


def test_embedded_adaptation_halves_alternate_and_word_errors_are_counted() -> None:
    """embedded_adapt.py: a voice's sentences split alternately in id order (disjoint, complete), and the
    word-error count is the corpus WER times the reference words."""
    adapt = task_script("embedded_adapt")
    rows = [{"id": f"s{i:03d}_un01_x-en"} for i in (5, 1, 4, 2, 3)]
    first, second = adapt.halves(rows)
    assert [r["id"][:4] for r in first] == ["s001", "s003", "s005"]
    assert [r["id"][:4] for r in second] == ["s002", "s004"]
    assert adapt.word_errors(["a b c", "d e"], ["a x c", "d e f"]) == (2, 5)


def test_synthetic_digits_train_only_beside_the_real_speakers_and_the_reference_stays_real(
    loso, fsdd_dir: Path, tmp_path: Path
) -> None:
    from speechseq.audio import audio_info, load_audio
    from speechseq.config import load_task_config
    from speechseq.recipes.base import load_asr_splits

    synth = task_script("fsdd_synth_digits")
    record = synth.write_digits(tmp_path / "synth", takes=2, seed=3, variants=("m3", "f2"))
    again = synth.write_digits(tmp_path / "again", takes=2, seed=3, variants=("m3", "f2"))
    names = sorted(p.name for p in (tmp_path / "synth").glob("*.wav"))
    assert len(names) == record["files"] == 40 and names[0] == "0_synaa_10.wav" and "9_synab_11.wav" in names
    # Seeded: the same voices twice (espeak's own output varies by a few milliseconds from call to call).
    assert record["voices"] == again["voices"] and len({v["pitch"] for v in record["voices"]}) > 1
    for name in ("3_synaa_10.wav", "8_synab_11.wav"):
        wave = load_audio(tmp_path / "synth" / name)
        assert audio_info(tmp_path / "synth" / name).sample_rate == 8000 and abs(np.abs(wave).max() - 0.5) < 2e-3
    # Each take has its own prosody: the same voice's two "seven"s differ.
    takes = [load_audio(tmp_path / "synth" / f"7_synaa_{t}.wav") for t in (10, 11)]
    assert takes[0].shape != takes[1].shape or np.abs(takes[0] - takes[1]).max() > 0.01

    real = _mini_fsdd(fsdd_dir, tmp_path / "real", {s: range(12) for s in ("george", "jackson", "lucas")})
    plans = loso.plan_runs(real, tmp_path / "out", ["george"], False, [], speaker_eq=True,
                           extra_train=tmp_path / "synth")
    assert plans[0].equalize == (tmp_path / "out" / "source", ["jackson", "lucas"])  # real speakers only
    loso.prepare_audio(plans[0])
    config = load_task_config(None, [f"config={plans[0].config}", *plans[0].overrides])
    splits = load_asr_splits(config.data)
    speakers = {split: set(data["speaker"]) for split, data in splits.items()}
    assert speakers["train"] == {"jackson", "lucas", "synaa", "synab"}
    assert speakers["validation"] == speakers["test"] == {"jackson", "lucas"}
    assert speakers["test_unseen"] == {"george"}
    train = splits["train"]
    assert sorted(t for t, s in zip(train["text"], train["speaker"]) if s == "synab") == sorted(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"] * 2)


def test_extra_training_voices_that_would_leak_into_evaluation_are_refused_by_name(
    loso, fsdd_dir: Path, tmp_path: Path
) -> None:
    real = _mini_fsdd(fsdd_dir, tmp_path / "real", {"george": range(1), "jackson": range(1)})
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "3_synaa_7.wav").symlink_to(fsdd_dir / "3_lucas_7.wav")
    with pytest.raises(ValueError, match="3_synaa_7.wav.*take below 10"):
        loso.link_sources(real, extra, tmp_path / "src")
    (extra / "3_synaa_7.wav").unlink()
    (extra / "3_george_12.wav").symlink_to(fsdd_dir / "3_lucas_12.wav")
    with pytest.raises(ValueError, match="3_george_12.wav.*'george'"):
        loso.link_sources(real, extra, tmp_path / "src")
    (extra / "3_george_12.wav").unlink()
    (extra / "three_synaa_12.wav").symlink_to(fsdd_dir / "3_lucas_12.wav")
    with pytest.raises(ValueError, match="three_synaa_12.wav"):
        loso.link_sources(real, extra, tmp_path / "src")
    (extra / "three_synaa_12.wav").unlink()
    (extra / "3_synaa_12.wav").symlink_to(fsdd_dir / "3_lucas_12.wav")
    src = loso.link_sources(real, extra, tmp_path / "src")
    linked = sorted(p.name for p in src.glob("*.wav"))
    assert linked == sorted([p.name for p in real.glob("*.wav")] + ["3_synaa_12.wav"])
    assert (src / "3_synaa_12.wav").resolve() == (fsdd_dir / "3_lucas_12.wav").resolve()


def test_speaker_eq_copy_is_rewritten_when_the_source_files_change(eq_script, fsdd_dir: Path, tmp_path: Path) -> None:
    src = _mini_fsdd(fsdd_dir, tmp_path / "src", {"george": range(2), "jackson": range(2)})
    eq_script.equalize_folder(src, tmp_path / "eq", ["jackson"])
    (src / "5_george_3.wav").symlink_to(fsdd_dir / "5_george_3.wav")  # same request, one more file
    eq_script.equalize_folder(src, tmp_path / "eq", ["jackson"])
    assert (tmp_path / "eq" / "5_george_3.wav").is_file()


def test_soup_averages_each_folds_seeds_and_scores_on_the_first_seeds_equalised_recordings(
    tmp_path: Path, tiny_ctc
) -> None:
    import torch

    from speechseq.models import from_pretrained

    soup, beam = task_script("fsdd_soup"), task_script("fsdd_beam")
    seeds = [tmp_path / "seed0", tmp_path / "seed1"]
    for seed, folder in enumerate(seeds):
        for fold in ("george", "lucas"):
            tiny_ctc(seed).save_pretrained(folder / fold / "final")
        tiny_ctc(seed).save_pretrained(folder / "all" / "final")  # the all-speakers run has no fold
        (folder / "audio" / "george").mkdir(parents=True)
        (folder / "audio" / "george" / "speaker_eq.json").write_text("{}")
    assert soup.main(["--out", str(tmp_path / "soup"), *map(str, seeds)]) == 0
    assert sorted(p.name for p in (tmp_path / "soup").iterdir()) == ["audio", "george", "lucas"]
    averaged = from_pretrained(tmp_path / "soup" / "george" / "final").state_dict()
    expected = (tiny_ctc(0).state_dict()["head.weight"] + tiny_ctc(1).state_dict()["head.weight"]) / 2
    torch.testing.assert_close(averaged["head.weight"], expected, rtol=0, atol=1e-7)
    models = beam.fold_models([tmp_path / "soup"])
    assert beam.fold_root(models["george"], "george", tmp_path / "orig").resolve() == seeds[0] / "audio" / "george"
    with pytest.raises(SystemExit):  # one model per fold is nothing to average
        soup.main(["--out", str(tmp_path / "soup1"), str(seeds[0])])
    # --checkpoint: each run's checkpoints/step_N (weights only), not the final it chose
    from safetensors.torch import save_file

    for seed, folder in enumerate(seeds):
        for fold in ("george", "lucas"):
            (folder / fold / "checkpoints" / "step_3").mkdir(parents=True)
            weights = {k: v.contiguous() for k, v in tiny_ctc(seed + 10).state_dict().items()}
            save_file(weights, str(folder / fold / "checkpoints" / "step_3" / "model.safetensors"))
    assert soup.main(["--checkpoint", "step_3", "--out", str(tmp_path / "last"), *map(str, seeds)]) == 0
    averaged = from_pretrained(tmp_path / "last" / "lucas" / "final").state_dict()
    expected = (tiny_ctc(10).state_dict()["head.weight"] + tiny_ctc(11).state_dict()["head.weight"]) / 2
    torch.testing.assert_close(averaged["head.weight"], expected, rtol=0, atol=1e-7)


def test_closed_set_tables_rank_as_the_library_and_ensembles_sum_them_over_runs_of_the_same_recordings(
    tmp_path: Path, fsdd_dir: Path, capsys
) -> None:
    import dataclasses

    import torch
    from test_las import tiny_rnn_las

    from speechseq.inference import default_options, transcribe
    from speechseq.models import from_pretrained
    from speechseq.text import CharTokenizer

    beam = task_script("fsdd_beam")
    root = _mini_fsdd(fsdd_dir, tmp_path / "fsdd", {"george": range(2), "lucas": range(12)})
    seeds = [tmp_path / "seed0", tmp_path / "seed1"]
    for seed, folder in enumerate(seeds):
        model = tiny_rnn_las(CharTokenizer.from_texts(list(beam.DIGITS)))
        torch.manual_seed(seed)
        with torch.no_grad():  # two different "seeds" of one fold
            for weight in model.parameters():
                weight.add_(0.3 * torch.randn_like(weight))
        model.save_pretrained(folder / "george" / "final")
    grid = [0.0, 0.3, 1.0]
    argv = ["--beam", "0", "--ensemble", "--ctc-grid", "0,0.3,1", "--root", str(root), *map(str, seeds)]
    assert beam.main(argv) == 0
    george = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["george"]
    assert george["ensemble_models"] == 2 and george["utterances"] == 20
    tables = [beam.closed_set_table(s / "george" / "final", "george", root) for s in seeds]
    rows, parts = tables[1]  # the last folder's run is the fold's model
    references = [ref for _, ref in rows]
    assert references.count("seven") == 2 and sorted(parts) == ["ctc", "decoder"]
    # recombined at any CTC weight, the table ranks each recording's words exactly as the library's closed set
    model = from_pretrained(seeds[1] / "george" / "final")
    audio = [str(root / f"{ref_id}.wav") for ref_id, _ in rows]
    for lam in grid:
        options = dataclasses.replace(default_options(model), ctc_weight=lam)
        texts = [r.text for r in transcribe(model, audio, options, vocabulary=beam.DIGITS)]
        assert [beam.DIGITS[k] for k in beam.combine(parts, lam).argmax(axis=1)] == texts, lam
        wer = beam.closed_set_wer(references, [beam.combine(parts, lam)])
        assert george["closed_wer_by_ctc_weight"][str(lam)] == wer
    assert george["closed_wer"] == george["closed_wer_by_ctc_weight"]["0.3"]  # --ctc-weight's default
    assert george["ensemble_closed_wer"] == beam.closed_set_wer(references, [beam.combine(p, 0.3) for _, p in tables])
    # a run scored on another copy of the recordings (its own equalised folder) cannot join the ensemble
    other = seeds[1] / "audio" / "george"
    other.mkdir(parents=True)
    (other / "speaker_eq.json").write_text("{}")
    for name in ("0_george_0.wav", "1_george_0.wav", "0_lucas_11.wav", "0_lucas_5.wav", "0_lucas_0.wav"):
        (other / name).symlink_to(fsdd_dir / name)
    with pytest.raises(SystemExit, match="read different recordings"):
        beam.main(["--beam", "0", "--ensemble", "--root", str(root), *map(str, seeds)])


def test_test_time_views_average_each_views_table_and_the_identity_view_is_the_recording(
    tmp_path: Path, fsdd_dir: Path
) -> None:
    import numpy as np
    from test_las import tiny_rnn_las

    from speechseq.text import CharTokenizer

    beam = task_script("fsdd_beam")
    root = _mini_fsdd(fsdd_dir, tmp_path / "fsdd", {"george": range(1), "lucas": range(3)})
    model_dir = tmp_path / "run" / "george" / "final"
    tiny_rnn_las(CharTokenizer.from_texts(list(beam.DIGITS))).save_pretrained(model_dir)
    rows, plain = beam.closed_set_table(model_dir, "george", root)
    _, identity = beam.closed_set_table(model_dir, "george", root, [beam.parse_view("speed:1")])
    _, slow = beam.closed_set_table(model_dir, "george", root, [beam.parse_view("speed:0.9")])
    _, high = beam.closed_set_table(model_dir, "george", root, [beam.parse_view("pitch:2")])
    _, both = beam.closed_set_table(model_dir, "george", root, [beam.parse_view("speed:0.9"), beam.parse_view("pitch:2")])
    assert len(rows) == 10
    for name in plain:
        np.testing.assert_array_equal(identity[name], plain[name])
        assert not np.allclose(slow[name], plain[name]) and not np.allclose(high[name], plain[name])
        np.testing.assert_allclose(both[name], (slow[name] + high[name]) / 2, rtol=1e-6)
    with pytest.raises(ValueError, match="speed:0"):
        beam.parse_view("speed:0")
    for argv in (["--tta", "tempo:2", "--ctc-grid", "0"], ["--tta", "speed:1"]):  # a bad view; views with no use
        with pytest.raises(SystemExit):
            beam.main(["--beam", "0", "--root", str(root), *argv, str(tmp_path / "run")])


def test_warp_tables_are_cached_per_grid_and_each_fold_is_scored_at_its_own_factor(
    tmp_path: Path, fsdd_dir: Path, monkeypatch
) -> None:
    import numpy as np
    from test_las import tiny_rnn_las

    from speechseq.text import CharTokenizer

    beam, warp = task_script("fsdd_beam"), task_script("fsdd_warp")
    root = _mini_fsdd(fsdd_dir, tmp_path / "fsdd", {"george": range(1), "lucas": range(3)})
    model_dir = tmp_path / "run" / "george" / "final"
    tiny_rnn_las(CharTokenizer.from_texts(list(beam.DIGITS))).save_pretrained(model_dir)
    refs, tables = warp.warp_tables(model_dir, "george", root, [0.9, 1.0])
    _, slow = beam.closed_set_table(model_dir, "george", root, [("speed", 0.9)])
    np.testing.assert_allclose(tables[0.9]["decoder"], slow["decoder"], rtol=1e-6)
    assert len(refs) == 10 and (tmp_path / "run" / "warp_tables" / "george.npz").is_file()

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(warp, "view_tables", no_decoding)
    again_refs, again = warp.warp_tables(model_dir, "george", root, [0.9, 1.0])  # from the cache
    assert again_refs == refs and np.array_equal(again[1.0]["ctc"], tables[1.0]["ctc"])
    with pytest.raises(AssertionError, match="decoded again"):  # another grid is not the cached one
        warp.warp_tables(model_dir, "george", root, [0.9, 1.0, 1.1])

    # two folds: "a" is better warped by 0.9 (its f*), "b" is best unwarped (its f* is 1)
    folds = {
        "a": {"factor": 0.9, "budget_factor": [0.9, 1.0], "views_wer": {0.0: 6.0, 0.1: 6.0},
              "unwarped_views_wer": {0.0: 8.0, 0.1: 7.5},
              "wer": {0.9: {0.0: 5.0, 0.1: 7.0}, 1.0: {0.0: 9.0, 0.1: 8.0}}},
        "b": {"factor": 1.0, "budget_factor": [1.0, 1.0], "views_wer": {0.0: 3.0, 0.1: 3.0},
              "unwarped_views_wer": {0.0: 3.0, 0.1: 3.5},
              "wer": {0.9: {0.0: 2.0, 0.1: 6.0}, 1.0: {0.0: 4.0, 0.1: 5.0}}},
    }
    out = warp.summary(folds, [0.0, 0.1])
    # each fold's λ is the one best on the other fold, at that fold's own f*
    assert out["warped"]["a"] == {"ctc_weight": 0.0, "wer": 5.0} and out["warped"]["b"] == {"ctc_weight": 0.0, "wer": 4.0}
    assert out["unwarped"]["a"] == {"ctc_weight": 0.0, "wer": 9.0} and out["unwarped"]["b"]["ctc_weight"] == 0.1
    assert out["warped"]["mean"] == 4.5 and out["budget_warped"]["a"] == 7.0 and out["oracle"]["b"] == 2.0
    assert out["unwarped_views"]["mean"] == 5.75  # a at λ 0 (best on b), b at λ 0.1 (best on a)
    assert out["by_ctc_weight"]["warped"] == {0.0: 4.5, 0.1: 6.0} and set(out["by_ctc_weight"]) == {"unwarped", "warped"}
    assert "guarded" not in out  # without --min-gain
    # the guard left "a" unwarped (its gain was too small): the guarded column is a's unwarped, b's warped
    folds["a"]["guarded_factor"], folds["b"]["guarded_factor"] = 1.0, 1.0
    guarded = warp.summary(folds, [0.0, 0.1])["guarded"]
    assert guarded["a"] == {"ctc_weight": 0.0, "wer": 9.0} and guarded["b"] == {"ctc_weight": 0.1, "wer": 5.0}


def test_a_warped_ensemble_sums_each_model_at_its_own_factor(tmp_path: Path, capsys) -> None:
    """Model A is right and sure only at 0.9, model B only at 1: warped, each at its own f*, the sum is right
    everywhere; unwarped, A's wrong words outvote B's hesitant right ones."""
    import json

    import numpy as np

    from speechseq.data.readers import DIGIT_WORDS as digits

    script = task_script("fsdd_warp_ensemble")
    two, zero = digits.index("two"), digits.index("zero")
    refs = ["two"] * 8

    def save(folder: Path, scores: np.ndarray, references: list[str] = refs) -> None:
        (folder / "warp_tables").mkdir(parents=True)
        np.savez(folder / "warp_tables" / "jackson.npz", factors=np.array([0.9, 1.0]),
                 references=np.array(references), decoder=scores, ctc=scores)

    a = np.full((2, 8, 10), -5.0)
    a[0, :, two] = -0.1                            # 0.9: right and sure
    a[1, :, two] = -1.0
    a[1, :4, two], a[1, :4, zero] = -2.0, -0.5     # 1: half wrong
    b = np.full((2, 8, 10), -5.0)
    b[0, :, zero], b[0, :, two] = -3.0, -4.0       # 0.9: wrong and unsure
    b[1, :, two], b[1, :, zero] = -1.0, -1.2       # 1: right, barely
    save(tmp_path / "s0", a)
    save(tmp_path / "s1", b)

    references, models = script.cached_models([tmp_path / "s0", tmp_path / "s1"])["jackson"]
    assert references == refs and len(models) == 2
    assert script.ensemble_wer(refs, models, warped=True, grid=[0.0]) == {0.0: 0.0}
    assert script.ensemble_wer(refs, models, warped=False, grid=[0.0]) == {0.0: 50.0}
    assert script.ensemble_wer(refs, models[:1], warped=True, grid=[0.0]) == {0.0: 0.0}
    assert script.ensemble_wer(refs, models[1:], warped=True, grid=[0.0]) == {0.0: 0.0}  # B keeps f* = 1

    assert script.main([str(tmp_path / "s0"), str(tmp_path / "s1"), "--ctc-grid", "0,0.5"]) == 0
    results = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert results["warped"]["mean"] == 0.0 and results["unwarped"]["mean"] == 50.0
    assert results["models"] == {"jackson": 2}

    save(tmp_path / "s2", b, references=["six"] * 8)
    with pytest.raises(script.ConfigError, match="fold jackson: .* different recordings"):
        script.cached_models([tmp_path / "s0", tmp_path / "s2"])
    assert script.main([str(tmp_path)]) == 2  # no cache there: one line, no traceback


def test_ensemble_subsets_score_each_subset_as_the_ensemble_script_does_and_group_by_family(
    tmp_path: Path, capsys
) -> None:
    import json
    import statistics

    import numpy as np

    subsets, ensemble = task_script("fsdd_ensemble_subsets"), task_script("fsdd_warp_ensemble")
    rng = np.random.default_rng(0)

    def save(folder: Path, speaker: str = "jackson") -> None:
        (folder / "warp_tables").mkdir(parents=True)
        scores = rng.normal(size=(2, 8, 10))
        np.savez(folder / "warp_tables" / f"{speaker}.npz", factors=np.array([0.9, 1.0]),
                 references=np.array(["two", "six"] * 4), decoder=scores, ctc=rng.normal(size=(2, 8, 10)))

    for name in ("a0", "a1", "b0"):
        save(tmp_path / name)
    runs = [f"A.0={tmp_path / 'a0'}", f"A.1={tmp_path / 'a1'}", f"B.0={tmp_path / 'b0'}"]
    assert subsets.main([*runs, "--ctc-grid", "0,0.5"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert sorted(out["subsets"]) == ["A.0", "A.0+A.1", "A.0+A.1+B.0", "A.0+B.0", "A.1", "A.1+B.0", "B.0"]
    for key, folders in {"A.1": ["a1"], "A.0+B.0": ["a0", "b0"], "A.0+A.1+B.0": ["a0", "a1", "b0"]}.items():
        assert ensemble.main([*(str(tmp_path / f) for f in folders), "--ctc-grid", "0,0.5"]) == 0
        expected = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert out["subsets"][key]["warped"] == expected["warped"], key
        assert out["subsets"][key]["unwarped"] == expected["unwarped"], key
    warped = {k: v["warped"]["mean"] for k, v in out["subsets"].items()}
    assert set(out["by_kind"]) == {"1 within A", "1 within B", "2 within A", "2 across", "3 across"}
    assert out["by_kind"]["2 within A"]["warped"] == warped["A.0+A.1"]
    assert out["by_kind"]["2 across"] == {
        "subsets": 2, "warped": round(statistics.mean([warped["A.0+B.0"], warped["A.1+B.0"]]), 2),
        "unwarped": round(statistics.mean([out["subsets"][k]["unwarped"]["mean"] for k in ("A.0+B.0", "A.1+B.0")]), 2)}
    assert out["by_kind"]["1 within A"]["subsets"] == 2
    assert out["by_mix"]["A+B"] == out["by_kind"]["2 across"]
    assert out["by_mix"]["A+A+B"]["warped"] == warped["A.0+A.1+B.0"]
    assert out["by_mix"]["A"] == out["by_kind"]["1 within A"]

    # --max-size, and clear errors: a run without a family, runs of different folds
    assert subsets.main([*runs, "--max-size", "1"]) == 0
    assert len(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["subsets"]) == 3
    assert subsets.main([f"a0={tmp_path / 'a0'}"]) == 2
    assert "FAMILY.NAME=FOLDER" in capsys.readouterr().err
    save(tmp_path / "c0", speaker="lucas")
    assert subsets.main([runs[0], f"C.0={tmp_path / 'c0'}"]) == 2
    assert "hold different folds" in capsys.readouterr().err
