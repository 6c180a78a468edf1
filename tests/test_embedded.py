"""The embedded bilingual corpus (tiny preset in a temporary cache) and its voices."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from speechseq.audio import audio_info, load_audio
from speechseq.data import embedded
from speechseq.data.embedded import (
    EmbeddedCorpusConfig,
    asr_view,
    build_embedded_corpus,
    corpus_info,
    plan_corpus,
)
from speechseq.data.grammar_split import choose_held_out, make_sentence_splits
from speechseq.data.voices import (
    TRAIN_REGION,
    TRAIN_VARIANTS,
    UNSEEN_REGION,
    UNSEEN_VARIANTS,
    sample_voices,
)
from speechseq.errors import ConfigError

CONFIG = EmbeddedCorpusConfig.preset("tiny", seed=7)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speechseq-cache")


@pytest.fixture(scope="module")
def corpus(cache: Path):
    return build_embedded_corpus(CONFIG, cache_dir=str(cache), progress=False)


def test_plan_is_deterministic_for_the_seed() -> None:
    def ids_and_texts(config: EmbeddedCorpusConfig) -> list[tuple]:
        plan = plan_corpus(config)
        return [(r["id"], r["text_en"], r["text_es"]) for rows in plan.rows.values() for r in rows]

    first = ids_and_texts(CONFIG)
    assert first == ids_and_texts(CONFIG)
    assert first != ids_and_texts(replace(CONFIG, seed=8))


def test_built_rows_match_the_plan(corpus) -> None:
    plan = plan_corpus(CONFIG)
    for split, rows in plan.rows.items():
        assert list(corpus[split]["id"]) == [r["id"] for r in rows]
        assert list(corpus[split]["text_es"]) == [r["text_es"] for r in rows]


def test_split_sizes_and_sentence_disjointness(corpus) -> None:
    k = CONFIG.voices_per_sentence
    assert len(corpus["train"]) == CONFIG.train_sentences * k
    assert len(corpus["test_unseen"]) == len(corpus["test"]) == CONFIG.test_sentences * k
    train = set(corpus["train"]["sentence_id"]) | set(corpus["validation"]["sentence_id"])
    train_texts = set(corpus["train"]["text_en"]) | set(corpus["train"]["text_es"])
    for split in ("test", "test_unseen"):
        assert train.isdisjoint(corpus[split]["sentence_id"])
        assert train_texts.isdisjoint(set(corpus[split]["text_en"]) | set(corpus[split]["text_es"]))
    assert set(corpus["validation"]["sentence_id"]).isdisjoint(corpus["train"]["sentence_id"])
    # test_unseen is the test sentences spoken by other voices.
    assert set(corpus["test"]["sentence_id"]) == set(corpus["test_unseen"]["sentence_id"])


def test_unseen_voices_never_in_training(corpus) -> None:
    train_speakers = set(corpus["train"]["speaker"])
    assert set(corpus["test"]["speaker"]) <= train_speakers
    assert train_speakers.isdisjoint(corpus["test_unseen"]["speaker"])
    assert set(corpus["train"]["variant"]).isdisjoint(corpus["test_unseen"]["variant"])


def test_held_out_combinations(corpus, cache: Path) -> None:
    held = {"+".join(p) for p in choose_held_out(CONFIG.seed, CONFIG.heldout_fraction)}
    assert set(corpus_info(CONFIG, str(cache))["held_out_pairs"]) == held
    for split in ("train", "validation"):
        assert all(held.isdisjoint(pairs) for pairs in corpus[split]["pairs"])
    for split in ("test", "test_unseen"):
        flagged = [p for pairs in corpus[split]["heldout_pairs"] for p in pairs]
        assert flagged and set(flagged) <= held
        assert all(set(h) == held & set(p) for h, p in
                   zip(corpus[split]["heldout_pairs"], corpus[split]["pairs"]))


def test_texts_come_from_one_grammar_sentence(corpus) -> None:
    counts = {"train": CONFIG.train_sentences, "validation": CONFIG.validation_sentences,
              "test": CONFIG.test_sentences}
    sentences = make_sentence_splits(counts, CONFIG.seed)
    pairs = {s.sentence_id: (s.en, s.es) for split in sentences.splits.values() for s in split}
    for split in corpus.values():
        for sid, en, es in zip(split["sentence_id"], split["text_en"], split["text_es"]):
            assert pairs[sid] == (en, es)
            assert sid == "s" + hashlib.sha1(f"{en}|{es}".encode()).hexdigest()[:12]


def test_audio_decodes_at_the_rate_and_duration_of_the_columns(corpus) -> None:
    for split in ("train", "test_unseen"):
        ds = corpus[split]
        for row in ds.select(range(0, len(ds), max(1, len(ds) // 4))):
            for lang in ("en", "es"):
                info = audio_info(row[f"audio_{lang}"]["path"])
                assert info.sample_rate == 22050
                assert info.duration == pytest.approx(row[f"duration_{lang}"], abs=1e-4)
                canonical = load_audio(row[f"canonical_{lang}"])
                assert len(canonical) / 22050 == pytest.approx(row[f"canonical_duration_{lang}"], abs=1e-4)


def test_renders_are_trimmed(corpus) -> None:
    row = corpus["train"][0]
    voice = next(v for v in CONFIG.voices()["train"] if v.speaker == row["speaker"])
    raw = voice.render(row["text_en"], "en")
    stored = load_audio(row["audio_en"])
    # espeak's pitch flutter changes a re-render by a few samples, never by a whole word.
    assert abs(len(stored) - len(embedded.trim_silence(raw, CONFIG.trim_db))) < 0.02 * len(raw)
    edge = max(np.abs(stored[:1024]).max(), np.abs(stored[-1024:]).max())
    assert edge > 0.01 * np.abs(stored).max()  # speech (within 40 dB of the peak) reaches both ends
    padded = np.concatenate([np.zeros(11025, np.float32), raw, np.zeros(22050, np.float32)])
    assert abs(len(embedded.trim_silence(padded, 40.0)) - len(raw)) <= 1024  # 1.5 s of silence removed


def test_canonical_file_is_shared_by_the_rows_of_a_sentence(corpus) -> None:
    test, unseen = corpus["test"], corpus["test_unseen"]
    by_sentence = dict(zip(test["sentence_id"], (a["path"] for a in test["canonical_es"])))
    for sid, audio in zip(unseen["sentence_id"], unseen["canonical_es"]):
        assert audio["path"] == by_sentence[sid]


def test_second_build_loads_the_cache_without_rendering(corpus, cache: Path, monkeypatch) -> None:
    path = Path(corpus["train"][0]["audio_en"]["path"])
    mtime = path.stat().st_mtime_ns

    def no_render(*args, **kwargs):
        raise AssertionError("the cache was not reused")

    monkeypatch.setattr(embedded, "_render_all", no_render)
    again = build_embedded_corpus(CONFIG, cache_dir=str(cache), progress=False)
    assert list(again["test"]["id"]) == list(corpus["test"]["id"])
    assert path.stat().st_mtime_ns == mtime


def test_interrupted_build_leaves_no_entry(cache: Path, monkeypatch) -> None:
    config = replace(CONFIG, seed=99)

    def interrupted(config, tasks, out_dir, progress):
        (out_dir / "audio").mkdir()
        raise KeyboardInterrupt

    monkeypatch.setattr(embedded, "_render_all", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_embedded_corpus(config, cache_dir=str(cache), progress=False)
    final = config.corpus_dir(str(cache))
    assert not final.exists()
    assert not list(final.parent.glob(f".{final.name}.tmp-*"))


def test_asr_view(corpus) -> None:
    view = asr_view(corpus, "es")["validation"]
    rows = corpus["validation"]
    assert view.column_names == ["id", "audio", "text", "duration", "speaker", "lang"]
    assert list(view["text"]) == list(rows["text_es"])
    assert list(view["duration"]) == list(rows["duration_es"])
    assert list(view["id"]) == [f"{i}-es" for i in rows["id"]]
    assert set(view["lang"]) == {"es"}
    with pytest.raises(ConfigError, match="no language 'fr'"):
        asr_view(rows, "fr")


def test_recipe_hash_follows_content_only() -> None:
    assert CONFIG.recipe_hash() == replace(CONFIG, cache_dir="/elsewhere", num_workers=1).recipe_hash()
    assert CONFIG.recipe_hash() != replace(CONFIG, seed=8).recipe_hash()
    with pytest.raises(ConfigError, match="unknown config key"):
        EmbeddedCorpusConfig.preset("tiny", voices=3)


def test_voice_pools_are_disjoint_in_variants_and_parameters() -> None:
    assert set(TRAIN_VARIANTS).isdisjoint(UNSEEN_VARIANTS)
    train, unseen = sample_voices(60, seed=3, pool="train"), sample_voices(60, seed=3, pool="unseen")
    assert [v.params() for v in train] == [v.params() for v in sample_voices(60, seed=3, pool="train")]
    assert all(TRAIN_REGION.contains(v) and not UNSEEN_REGION.contains(v) for v in train)
    assert all(UNSEEN_REGION.contains(v) for v in unseen)
    # No single parameter of an unseen voice lies in the training region.
    for v in unseen:
        for name in ("pitch", "pitch_range", "rate", "word_gap"):
            assert not any(lo <= getattr(v, name) <= hi for lo, hi in getattr(TRAIN_REGION, name))
    assert {v.variant for v in train[: len(TRAIN_VARIANTS)]} == set(TRAIN_VARIANTS)
    assert len({v.speaker for v in train}) == 60


def test_all_pool_deals_every_variant_of_both_pools_with_training_prosody() -> None:
    voices = sample_voices(80, seed=3, pool="all")
    variants = set(TRAIN_VARIANTS) | set(UNSEEN_VARIANTS)
    assert {v.variant for v in voices[: len(variants)]} == variants  # each vocal tract once before any repeats
    assert all(TRAIN_REGION.contains(v) for v in voices)
    assert [v.params() for v in voices] == [v.params() for v in sample_voices(80, seed=3, pool="all")]
    # Another stream than the training pool's: the training pool's voices of a seed are not its prefix.
    assert [v.variant for v in voices[:5]] != [v.variant for v in sample_voices(5, seed=3, pool="train")]


def test_train_variants_changes_the_cache_key_only_when_set() -> None:
    assert "train_variants" not in CONFIG.recipe()["config"]  # caches built before the field keep their key
    wide = replace(CONFIG, train_variants="all")
    assert wide.recipe()["config"]["train_variants"] == "all"
    assert wide.recipe_hash() != CONFIG.recipe_hash()
    assert {v.variant for v in wide.voices()["train"]} - set(TRAIN_VARIANTS)  # tiny: 6 of 72 variants
    assert [v.params() for v in wide.voices()["unseen"]] == [v.params() for v in CONFIG.voices()["unseen"]]
    with pytest.raises(ConfigError, match="train_variants='every'"):
        replace(CONFIG, train_variants="every")


def test_data_corpus_overrides_reach_the_corpus_config() -> None:
    from speechseq.config import load_task_config
    from speechseq.recipes.base import embedded_config

    cfg = load_task_config("las", ["data.size=tiny", "data.corpus_variants=all", "data.corpus_voices=9",
                                   "data.corpus_seed=7"])
    assert embedded_config(cfg.data) == replace(CONFIG, train_variants="all", train_voices=9)
    assert embedded_config(load_task_config("las", ["data.size=tiny"]).data) == EmbeddedCorpusConfig.preset("tiny")
    with pytest.raises(ConfigError, match="data.corpus_variants"):
        load_task_config("las", ["data.corpus_variants=every"])


def test_unseen_dev_set_has_unseen_voices_no_test_voice_and_only_validation_sentences(corpus, cache, tmp_path) -> None:
    import importlib.util
    import sys

    from speechseq.data.readers import load_manifest

    path = Path(__file__).resolve().parents[1] / "tasks" / "las" / "embedded_unseen_dev.py"
    spec = importlib.util.spec_from_file_location("embedded_unseen_dev", path)
    script = importlib.util.module_from_spec(spec)
    sys.modules["embedded_unseen_dev"] = script  # its renderer runs in a child process, found there by name
    spec.loader.exec_module(script)

    test_voices = CONFIG.voices()["unseen"]
    dev = script.dev_voices(CONFIG, 4)
    assert not {v.variant for v in dev} & {v.variant for v in test_voices}
    assert all(v.variant in UNSEEN_VARIANTS and UNSEEN_REGION.contains(v) for v in dev)
    with pytest.raises(ValueError, match="variants the test voices do not use"):
        script.dev_voices(CONFIG, len(UNSEEN_VARIANTS))  # more than the pool has left: variants would repeat

    rows = script.write_dev_set(tmp_path / "dev", CONFIG, voices=4, per_sentence=2, cache_dir=str(cache))
    manifest = load_manifest(tmp_path / "dev" / "manifest.csv")
    validation = asr_view(corpus["validation"], "en")
    assert len(manifest) == len(rows) == 2 * len(set(validation["text"]))
    assert set(manifest["text"]) == set(validation["text"])
    assert not set(manifest["text"]) & set(asr_view(corpus["test_unseen"], "en")["text"])
    assert set(manifest["speaker"]) <= {v.speaker for v in dev}
    # Every sentence is spoken by two different voices, each file at the corpus's rate.
    by_text: dict[str, set[str]] = {}
    for text, speaker in zip(manifest["text"], manifest["speaker"]):
        by_text.setdefault(text, set()).add(speaker)
    assert all(len(speakers) == 2 for speakers in by_text.values())
    first = manifest[0]["audio"]["path"]
    assert audio_info(first).sample_rate == CONFIG.sample_rate and 0.3 < audio_info(first).duration < 10
