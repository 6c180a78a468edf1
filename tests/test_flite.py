"""Flite's voices of real people as extra training voices of the embedded corpus (``data.corpus_flite_voices``).

The config tests run everywhere; the synthesis tests need the ``flite`` program (``apt install flite``, which
``.ci/run`` tries) and are skipped without it.
"""

from __future__ import annotations

from dataclasses import replace

import librosa
import numpy as np
import pytest

from speechseq.data.embedded import EmbeddedCorpusConfig, plan_corpus
from speechseq.data.voices import TRAIN_REGION, Voice, sample_voices
from speechseq.errors import ConfigError
from speechseq.text import flite

CONFIG = EmbeddedCorpusConfig.preset("tiny", seed=7)
ENGLISH = replace(CONFIG, languages=("en",))
needs_flite = pytest.mark.skipif(not flite.available(), reason="the flite program is not installed")


def test_flite_pool_deals_each_voice_before_repeats_with_training_prosody() -> None:
    voices = sample_voices(10, seed=3, pool="flite")
    assert {v.variant for v in voices[:4]} == set(flite.VOICES)
    assert all(v.engine == "flite" and v.speaker.startswith("fl") and TRAIN_REGION.contains(v) for v in voices)
    assert [v.params() for v in voices] == [v.params() for v in sample_voices(10, seed=3, pool="flite")]


def test_flite_voices_join_the_training_voices_and_change_the_key_only_when_set() -> None:
    # Caches built before the field keep their key: neither the field nor the voices' engine is in it.
    recipe = CONFIG.recipe()
    assert "flite_voices" not in recipe["config"]
    assert all("engine" not in v for v in recipe["voices"]["train"])
    more = replace(ENGLISH, flite_voices=5)
    train = more.voices()["train"]
    # The espeak voices are the same ones, the Flite voices come after them.
    assert [v.params() for v in train[: CONFIG.train_voices]] == [v.params() for v in CONFIG.voices()["train"]]
    assert [v.engine for v in train[CONFIG.train_voices:]] == ["flite"] * 5
    assert more.voices()["unseen"] == CONFIG.voices()["unseen"]  # the unseen-voice test keeps its voices
    assert more.recipe()["config"]["flite_voices"] == 5 and "flite" not in recipe
    assert more.recipe()["flite"] == flite.version()  # another Flite may speak otherwise
    assert more.recipe_hash() != ENGLISH.recipe_hash()
    # They are seen voices: in training (and so in the seen-voice validation and test), never in test_unseen.
    rows = plan_corpus(more).rows
    assert any(r["speaker"].startswith("fl") for r in rows["train"])
    assert not any(r["speaker"].startswith("fl") for r in rows["test_unseen"])


def test_flite_voices_need_english_only() -> None:
    with pytest.raises(ConfigError, match="flite_voices=2 needs languages"):
        replace(CONFIG, flite_voices=2)  # the tiny preset is bilingual
    with pytest.raises(ConfigError, match="flite_voices=-1"):
        replace(ENGLISH, flite_voices=-1)
    voice = sample_voices(1, seed=0, pool="flite")[0]
    with pytest.raises(ConfigError, match=f"voice {voice.speaker}: Flite voices speak English only"):
        voice.render("uno dos", "es")


def test_data_corpus_flite_voices_reaches_the_corpus_config() -> None:
    from speechseq.config import load_task_config
    from speechseq.recipes.base import embedded_config

    cfg = load_task_config("las", ["data.size=tiny", "data.corpus_flite_voices=3", "data.corpus_seed=7"])
    assert embedded_config(cfg.data) == replace(ENGLISH, flite_voices=3)
    spanish = load_task_config("las", ["data.size=tiny", "data.corpus_flite_voices=3", "data.lang=es"])
    with pytest.raises(ConfigError, match="data.corpus_flite_voices=3 needs data.lang=en"):
        embedded_config(spanish.data)


def test_bad_voice_and_empty_text_are_refused() -> None:
    with pytest.raises(flite.FliteError, match="unknown Flite voice 'kal8'"):
        flite.synthesize("one", "kal8")
    with pytest.raises(flite.FliteError, match="empty text"):
        flite.synthesize("  ", "awb")


def _median_f0(wave: np.ndarray) -> float:
    f0, _, _ = librosa.pyin(wave, fmin=50, fmax=400, sr=flite.SAMPLE_RATE)
    return float(np.nanmedian(f0))


@needs_flite
def test_version_is_read_from_the_program() -> None:
    assert flite.version().startswith("flite-")


@needs_flite
def test_pitch_and_stretch_move_f0_and_duration_by_their_factors() -> None:
    text = "two zero six three eight"
    base = flite.synthesize(text, "awb")
    assert base.dtype == np.float32 and np.abs(base).max() > 0.05
    higher = flite.synthesize(text, "awb", pitch=1.25)
    assert _median_f0(higher) / _median_f0(base) == pytest.approx(1.25, rel=0.08)
    slower = flite.synthesize(text, "awb", stretch=1.3)
    assert len(slower) / len(base) == pytest.approx(1.3, rel=0.08)


@needs_flite
def test_a_flite_voice_renders_its_own_prosody() -> None:
    slow = Voice("fl00_kal16", "kal16", pitch=50, pitch_range=50, rate=140, engine="flite")
    fast = replace(slow, rate=175)
    # rate 140 against the voice's own 175 words/min: 1.25 times as long.
    assert len(slow.render("nine five one", "en")) / len(fast.render("nine five one", "en")) == pytest.approx(
        1.25, rel=0.08)
    # The same voice and text give the same samples: Flite is deterministic, so corpora rebuild exactly.
    np.testing.assert_array_equal(fast.render("nine five one", "en"), fast.render("nine five one", "en"))
