"""The embedded bilingual English–Spanish spoken corpus: grammar sentences spoken by espeak-ng voices.

``build_embedded_corpus`` draws sentence pairs from the grammar (``grammar_split``: held-out sentences
and held-out word combinations), speaks each with synthetic speakers (``voices``) in both languages and
with the fixed canonical voice, trims the silence around every render, and returns a
``datasets.DatasetDict`` with splits train, validation, test (training voices) and test_unseen (the
test sentences again, spoken by voices never heard in training). One row per (sentence, voice).

The result is cached under ``$SPEECHSEQ_CACHE`` (default ``~/.cache/speechseq``) in
``embedded/<size>-<hash of the recipe>/``: audio files (FLAC) in ``audio/``, the dataset in
``dataset/`` (``DatasetDict.save_to_disk``) and ``recipe.json``. A build writes into a temporary
folder and renames it when complete, so an interrupted build is never taken for a finished one.

>>> import tempfile
>>> corpus = build_embedded_corpus("tiny", cache_dir=tempfile.mkdtemp(), progress=False)
>>> sorted(corpus)
['test', 'test_unseen', 'train', 'validation']
>>> asr = asr_view(corpus["train"], "es")
>>> sorted(asr.column_names)
['audio', 'duration', 'id', 'lang', 'speaker', 'text']

Command line: ``python -m speechseq.data.embedded --size default`` builds (or loads) and prints a summary.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field, fields, replace
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Iterator, Literal

import datasets
import librosa
import numpy as np
from tqdm.auto import tqdm

from speechseq.audio import resample, save_audio
from speechseq.data.grammar import GRAMMAR_VERSION, Sentence
from speechseq.data.grammar_split import make_sentence_splits
from speechseq.data.voices import CANONICAL_VOICES, LANGUAGE_VOICES, Voice, sample_voices
from speechseq.errors import ConfigError
from speechseq.text import espeak, flite

CORPUS_VERSION = "1"  # bump when rendering, trimming or the columns change (it keys the cache)
SPLITS = ("train", "validation", "test", "test_unseen")
AUDIO_KINDS = ("audio", "canonical")

PRESETS: dict[str, dict[str, int]] = {
    # ~80 utterances per language; builds in seconds (tests, smoke runs).
    "tiny": dict(train_sentences=60, validation_sentences=10, test_sentences=12, voices_per_sentence=1,
                 train_voices=6, unseen_voices=3),
    # 8000 training utterances per language: a small CTC/LAS model reaches a low WER on CPU.
    "default": dict(train_sentences=4000, validation_sentences=300, test_sentences=400,
                    voices_per_sentence=2, train_voices=40, unseen_voices=12),
    # 80000 training utterances per language (GPU training).
    "large": dict(train_sentences=40000, validation_sentences=1000, test_sentences=2000,
                  voices_per_sentence=2, train_voices=120, unseen_voices=30),
}


@dataclass(frozen=True)
class EmbeddedCorpusConfig:
    """How to build the corpus. ``size`` names the preset the counts came from.

    Sentence counts are per split (test_unseen reuses the test sentences); each sentence is spoken by
    ``voices_per_sentence`` different voices. ``train_variants`` is the pool the training voices come from:
    ``"train"`` (the training variants) or ``"all"`` (the unseen pool's variants too, with training-region
    prosody: 72 vocal tracts instead of 34 for a pre-training; test_unseen's variants are then heard in
    training, so it tests unseen prosody only). ``flite_voices`` adds that many training voices of Flite's
    real-person voices (``speechseq.text.flite``; English only, so ``languages`` must be ``("en",)``).
    Fields after ``trim_db`` do not change the content and are not part of the cache key.

    >>> EmbeddedCorpusConfig.preset("tiny", seed=3).train_sentences
    60
    """

    size: str = "default"
    train_sentences: int = 4000
    validation_sentences: int = 300
    test_sentences: int = 400
    voices_per_sentence: int = 2
    train_voices: int = 40
    unseen_voices: int = 12
    train_variants: Literal["train", "all"] = "train"
    flite_voices: int = 0
    seed: int = 0
    languages: tuple[str, ...] = ("en", "es")
    sample_rate: int = 22050
    heldout_fraction: float = 0.05
    heldout_share: float = 0.5
    trim_db: float = 40.0
    cache_dir: str | None = field(default=None, compare=False)
    num_workers: int = field(default=2, compare=False)

    def __post_init__(self) -> None:
        unknown = set(self.languages) - set(LANGUAGE_VOICES)
        if unknown or not self.languages:
            raise ConfigError(f"languages={self.languages}: expected a subset of {sorted(LANGUAGE_VOICES)}")
        counts = {f.name: getattr(self, f.name) for f in fields(self)
                  if f.name.endswith(("_sentences", "_voices")) and f.name != "flite_voices"
                  or f.name in ("voices_per_sentence", "num_workers")}
        bad = {name: value for name, value in counts.items() if value < 1}
        if bad:
            raise ConfigError(f"these config values must be at least 1: {bad}")
        if self.train_variants not in ("train", "all"):
            raise ConfigError(f"train_variants={self.train_variants!r}: expected 'train' or 'all'")
        if self.flite_voices < 0:
            raise ConfigError(f"flite_voices={self.flite_voices}: expected 0 or more")
        if self.flite_voices and tuple(self.languages) != ("en",):
            raise ConfigError(f"flite_voices={self.flite_voices} needs languages=('en',): Flite speaks "
                              f"English only, and the languages are {self.languages}")

    @classmethod
    def preset(cls, size: str, **overrides: object) -> "EmbeddedCorpusConfig":
        """The config of preset ``size`` (tiny, default, large) with ``overrides`` applied."""
        if size not in PRESETS:
            raise ConfigError(f"unknown corpus size {size!r}; expected one of {sorted(PRESETS)}")
        valid = {f.name for f in fields(cls)}
        unknown = set(overrides) - valid
        if unknown:
            raise ConfigError(f"unknown config key(s) {sorted(unknown)}; valid keys: {sorted(valid)}")
        return cls(size=size, **{**PRESETS[size], **overrides})

    def recipe(self) -> dict[str, object]:
        """Everything that decides the content: config fields, code versions and the voices."""
        content = {f.name: getattr(self, f.name) for f in fields(self)
                   if f.name not in ("size", "cache_dir", "num_workers")}
        # Fields newer than the caches are left out at their defaults, so that those caches keep their keys.
        if self.train_variants == "train":
            del content["train_variants"]
        voices = {name: [v.params() for v in vs] for name, vs in self.voices().items()}
        recipe = {"config": content, "grammar_version": GRAMMAR_VERSION, "corpus_version": CORPUS_VERSION,
                  "espeakng_loader": metadata.version("espeakng-loader"), "voices": voices}
        if self.flite_voices == 0:
            del content["flite_voices"]
        else:
            recipe["flite"] = flite.version()
        return recipe

    def recipe_hash(self) -> str:
        import hashlib

        blob = json.dumps(self.recipe(), sort_keys=True, default=list).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def voices(self) -> dict[str, list[Voice]]:
        """The training and unseen speakers (deterministic for ``seed``)."""
        flite_voices = sample_voices(self.flite_voices, self.seed, "flite") if self.flite_voices else []
        return {"train": sample_voices(self.train_voices, self.seed, self.train_variants) + flite_voices,
                "unseen": sample_voices(self.unseen_voices, self.seed, "unseen")}

    def corpus_dir(self, cache_dir: str | os.PathLike | None = None) -> Path:
        """Folder of this recipe's cache entry."""
        root = cache_dir or self.cache_dir or os.environ.get("SPEECHSEQ_CACHE") or "~/.cache/speechseq"
        return Path(root).expanduser() / "embedded" / f"{self.size}-{self.recipe_hash()}"


@dataclass(frozen=True)
class RenderJob:
    """One file to render: ``text`` in ``lang`` by ``voice``, written to ``rel_path`` in the corpus folder."""

    rel_path: str
    text: str
    lang: str
    voice: Voice


@dataclass(frozen=True)
class SentenceTask:
    """All renders of one sentence (canonical + every voice of every split) and its texts to phonemize."""

    sentence_id: str
    texts: dict[str, str]
    jobs: tuple[RenderJob, ...]


@dataclass(frozen=True)
class SentenceResult:
    sentence_id: str
    phonemes: dict[str, str]
    durations: dict[str, float]  # rel_path -> seconds after trimming


@dataclass
class CorpusPlan:
    """What to render and the rows to write, before any audio exists."""

    rows: dict[str, list[dict[str, object]]]
    tasks: list[SentenceTask]
    held_out: list[str]


def trim_silence(wave: np.ndarray, top_db: float) -> np.ndarray:
    """Cut leading/trailing parts more than ``top_db`` below the peak (23 ms → 12 ms frames at 22 kHz)."""
    trimmed, _ = librosa.effects.trim(wave, top_db=top_db, frame_length=1024, hop_length=256)
    return trimmed if trimmed.size else wave


def render_sentence(task: SentenceTask, out_dir: str, sample_rate: int, trim_db: float) -> SentenceResult:
    """Worker: render, trim, resample and save every job of ``task``; phonemize its texts."""
    durations = {}
    for job in task.jobs:
        wave = trim_silence(job.voice.render(job.text, job.lang), trim_db)
        wave = resample(wave, espeak.SAMPLE_RATE, sample_rate)
        save_audio(Path(out_dir) / job.rel_path, wave, sample_rate)
        durations[job.rel_path] = len(wave) / sample_rate
    phonemes = {lang: espeak.phonemize(text, LANGUAGE_VOICES[lang]) for lang, text in task.texts.items()}
    return SentenceResult(task.sentence_id, phonemes, durations)


def _pair_key(pair: tuple[str, str]) -> str:
    return "+".join(pair)


def _row(sentence: Sentence, voice: Voice, langs: tuple[str, ...], held: set[str]) -> dict[str, object]:
    """A row without audio durations and phonemes (filled in after rendering)."""
    sid = sentence.sentence_id
    row: dict[str, object] = {"id": f"{sid}_{voice.speaker}", "sentence_id": sid, "speaker": voice.speaker,
                              "variant": voice.variant, "pitch": voice.pitch,
                              "pitch_range": voice.pitch_range, "rate": voice.rate,
                              "word_gap": voice.word_gap}
    texts = {"en": sentence.en, "es": sentence.es}
    for lang in langs:
        row[f"text_{lang}"] = texts[lang]
        row[f"audio_{lang}"] = f"audio/{lang}/{voice.speaker}/{sid}.flac"
        row[f"canonical_{lang}"] = f"audio/{lang}/canonical/{sid}.flac"
    pairs = [_pair_key(p) for p in sentence.pairs]
    row.update(lemmas=list(sentence.lemmas), pairs=pairs, heldout_pairs=[p for p in pairs if p in held],
               kind=sentence.features["kind"], tense=sentence.features["tense"])
    return row


def plan_corpus(config: EmbeddedCorpusConfig) -> CorpusPlan:
    """Sentences, voice assignment, rows and render tasks (deterministic for ``config.seed``)."""
    counts = {"train": config.train_sentences, "validation": config.validation_sentences,
              "test": config.test_sentences}
    sentences = make_sentence_splits(counts, config.seed, heldout_fraction=config.heldout_fraction,
                                     heldout_share=config.heldout_share)
    held = {_pair_key(p) for p in sentences.held_out}
    voices = config.voices()
    k = config.voices_per_sentence
    if k > min(len(v) for v in voices.values()):
        raise ConfigError(f"voices_per_sentence={k} exceeds the number of train or unseen voices")
    sources = {"train": ("train", "train"), "validation": ("validation", "train"),
               "test": ("test", "train"), "test_unseen": ("test", "unseen")}
    rows: dict[str, list[dict[str, object]]] = {}
    jobs: dict[str, dict[str, RenderJob]] = {}  # sentence id -> rel path -> job (dedups shared files)
    texts: dict[str, dict[str, str]] = {}
    for index, split in enumerate(SPLITS):
        source, pool = sources[split]
        rng = np.random.default_rng([config.seed, 20 + index])
        rows[split] = []
        for sentence in sentences.splits[source]:
            sid = sentence.sentence_id
            texts[sid] = {lang: {"en": sentence.en, "es": sentence.es}[lang] for lang in config.languages}
            for i in rng.choice(len(voices[pool]), size=k, replace=False):
                voice = voices[pool][int(i)]
                row = _row(sentence, voice, config.languages, held)
                rows[split].append(row)
                for lang in config.languages:
                    for path, speaker in ((row[f"audio_{lang}"], voice),
                                          (row[f"canonical_{lang}"], CANONICAL_VOICES[lang])):
                        jobs.setdefault(sid, {})[path] = RenderJob(path, texts[sid][lang], lang, speaker)
    tasks = [SentenceTask(sid, texts[sid], tuple(by_path.values())) for sid, by_path in jobs.items()]
    return CorpusPlan(rows, tasks, sorted(held))


def _render_all(config: EmbeddedCorpusConfig, tasks: list[SentenceTask], out_dir: Path,
                progress: bool) -> dict[str, SentenceResult]:
    """Render every task with ``config.num_workers`` processes (espeak is process-global)."""
    work = partial(render_sentence, out_dir=str(out_dir), sample_rate=config.sample_rate,
                   trim_db=config.trim_db)
    results: dict[str, SentenceResult] = {}
    total = sum(len(t.jobs) for t in tasks)
    # librosa's trim JIT-compiles (numba) on first use, ~3 s: compile once here, workers inherit it.
    trim_silence(np.random.default_rng(0).standard_normal(4096).astype(np.float32), config.trim_db)
    with contextlib.ExitStack() as stack:
        if config.num_workers > 1:
            # fork: workers start at once and inherit the imports and the initialised espeak engine (fresh lock).
            pool = stack.enter_context(multiprocessing.get_context("fork").Pool(config.num_workers))
            stream: Iterator[SentenceResult] = pool.imap_unordered(work, tasks, chunksize=4)
        else:
            stream = map(work, tasks)
        bar = stack.enter_context(tqdm(total=total, unit="render", disable=not progress,
                                       desc=f"embedded corpus ({config.size})"))
        for result in stream:
            results[result.sentence_id] = result
            bar.update(len(result.durations))
    return results


def _assemble(config: EmbeddedCorpusConfig, plan: CorpusPlan,
              results: dict[str, SentenceResult]) -> datasets.DatasetDict:
    """Fill durations and phonemes into the rows; audio columns hold paths relative to the corpus folder."""
    splits = {}
    for split, rows in plan.rows.items():
        for row in rows:
            result = results[str(row["sentence_id"])]
            for lang in config.languages:
                row[f"phonemes_{lang}"] = result.phonemes[lang]
                row[f"duration_{lang}"] = result.durations[str(row[f"audio_{lang}"])]
                row[f"canonical_duration_{lang}"] = result.durations[str(row[f"canonical_{lang}"])]
        columns = {key: [row[key] for row in rows] for key in (rows[0] if rows else {})}
        splits[split] = datasets.Dataset.from_dict(columns, features=_features(config.languages))
    return datasets.DatasetDict(splits)


def _features(langs: tuple[str, ...]) -> datasets.Features:
    """Column types as saved (audio columns are relative paths; ``load`` casts them to Audio)."""
    string, strings = datasets.Value("string"), datasets.List(datasets.Value("string"))
    spec: dict[str, object] = {"id": string, "sentence_id": string, "speaker": string, "variant": string,
                               "pitch": datasets.Value("int32"), "pitch_range": datasets.Value("int32"),
                               "rate": datasets.Value("int32"), "word_gap": datasets.Value("int32")}
    for lang in langs:
        spec.update({f"text_{lang}": string, f"audio_{lang}": string, f"canonical_{lang}": string})
    spec.update(lemmas=strings, pairs=strings, heldout_pairs=strings, kind=string, tense=string)
    for lang in langs:
        spec.update({f"phonemes_{lang}": string, f"duration_{lang}": datasets.Value("float32"),
                     f"canonical_duration_{lang}": datasets.Value("float32")})
    return datasets.Features(spec)


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    """Silence datasets' own progress bars (save/map) without changing the caller's setting for good."""
    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def load_corpus(corpus_dir: str | os.PathLike) -> datasets.DatasetDict:
    """Load a finished cache entry; audio columns become ``Audio(decode=False)`` with absolute paths.

    Paths are stored relative to the entry, so a moved cache folder still loads.
    """
    root = Path(corpus_dir).resolve()
    with _quiet_datasets():
        dsd = datasets.load_from_disk(str(root / "dataset"))
        audio_cols = [c for c in dsd["train"].column_names if c.startswith(("audio_", "canonical_"))
                      and not c.startswith("canonical_duration")]
        prefix = str(root) + os.sep
        dsd = dsd.map(lambda b: {c: [prefix + p for p in b[c]] for c in audio_cols}, batched=True,
                      batch_size=10000, keep_in_memory=True)
        for col in audio_cols:
            dsd = dsd.cast_column(col, datasets.Audio(decode=False))
    return dsd


def build_embedded_corpus(config: EmbeddedCorpusConfig | str = "default", cache_dir: str | None = None,
                          progress: bool = True, *, seed: int | None = None) -> datasets.DatasetDict:
    """Build the corpus for ``config`` (or a preset name), or load it from the cache when it exists.

    Args:
        config: an :class:`EmbeddedCorpusConfig` or a preset name (tiny, default, large).
        cache_dir: cache root; default ``config.cache_dir``, ``$SPEECHSEQ_CACHE`` or ``~/.cache/speechseq``.
        progress: show a tqdm bar while rendering.
        seed: overrides ``config.seed``.

    Returns:
        DatasetDict with splits train, validation, test, test_unseen (see docs/data.md for columns).
    """
    if isinstance(config, str):
        config = EmbeddedCorpusConfig.preset(config)
    if seed is not None:
        config = replace(config, seed=seed)
    final = config.corpus_dir(cache_dir)
    if (final / "recipe.json").is_file():
        return load_corpus(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_builds(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        start = time.perf_counter()
        plan = plan_corpus(config)
        results = _render_all(config, plan.tasks, tmp, progress)
        with _quiet_datasets():
            _assemble(config, plan, results).save_to_disk(str(tmp / "dataset"))
        info = {"recipe": config.recipe(), "size": config.size, "held_out_pairs": plan.held_out,
                "build_seconds": round(time.perf_counter() - start, 1), "num_workers": config.num_workers}
        (tmp / "recipe.json").write_text(json.dumps(info, indent=1, default=list))
        try:
            os.rename(tmp, final)  # atomic: the entry appears complete or not at all
        except OSError:
            if not (final / "recipe.json").is_file():  # not a concurrent build that won the race
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_corpus(final)


def _remove_stale_builds(final: Path, max_age_s: float = 86400.0) -> None:
    """Delete temporary folders of this entry left by killed builds (untouched for ``max_age_s``)."""
    for tmp in final.parent.glob(f".{final.name}.tmp-*"):
        if time.time() - tmp.stat().st_mtime > max_age_s:
            shutil.rmtree(tmp, ignore_errors=True)


def corpus_info(config: EmbeddedCorpusConfig | str = "default", cache_dir: str | None = None) -> dict:
    """The ``recipe.json`` of a built corpus (recipe, held-out pairs, build time)."""
    if isinstance(config, str):
        config = EmbeddedCorpusConfig.preset(config)
    return json.loads((config.corpus_dir(cache_dir) / "recipe.json").read_text())


def asr_view(data: datasets.Dataset | datasets.DatasetDict, lang: str = "en"
             ) -> datasets.Dataset | datasets.DatasetDict:
    """The ASR view (columns id, audio, text, duration, speaker, lang) of the corpus in ``lang``.

    Ids become ``<row id>-<lang>`` so the English and Spanish views can be concatenated.
    """
    if isinstance(data, datasets.DatasetDict):
        return datasets.DatasetDict({k: asr_view(v, lang) for k, v in data.items()})
    if f"audio_{lang}" not in data.column_names:
        raise ConfigError(f"the corpus has no language {lang!r} (columns: {data.column_names})")
    view = data.select_columns(["id", f"audio_{lang}", f"text_{lang}", f"duration_{lang}", "speaker"])
    view = view.rename_columns({f"audio_{lang}": "audio", f"text_{lang}": "text",
                                f"duration_{lang}": "duration"})
    ids = [f"{i}-{lang}" for i in view["id"]]
    view = view.remove_columns("id").add_column("id", ids).add_column("lang", [lang] * len(ids))
    return view.select_columns(["id", "audio", "text", "duration", "speaker", "lang"])


def summarize(corpus: datasets.DatasetDict) -> dict[str, object]:
    """Figures for docs and the CLI: per split rows, sentences, speakers, hours; vocabulary; lengths."""
    langs = [c.removeprefix("text_") for c in corpus["train"].column_names if c.startswith("text_")]
    out: dict[str, object] = {"splits": {}}
    vocab: dict[str, set[str]] = {lang: set() for lang in langs}
    for split, ds in corpus.items():
        entry: dict[str, object] = {"rows": len(ds), "sentences": len(set(ds["sentence_id"])),
                                    "speakers": len(set(ds["speaker"])),
                                    "with_heldout_pair": sum(bool(p) for p in ds["heldout_pairs"])}
        for lang in langs:
            durations = np.asarray(ds[f"duration_{lang}"], dtype=float)
            entry[f"hours_{lang}"] = round(float(durations.sum()) / 3600, 2)
            entry[f"mean_seconds_{lang}"] = round(float(durations.mean()), 2) if len(ds) else 0.0
            for text in ds[f"text_{lang}"]:
                vocab[lang].update(text.split())
        out["splits"][split] = entry
    out["vocabulary"] = {lang: len(words) for lang, words in vocab.items()}
    out["sentence_words"] = {}
    for lang in langs:
        lengths = np.array([len(t.split()) for t in corpus["train"][f"text_{lang}"]])
        out["sentence_words"][lang] = {"mean": round(float(lengths.mean()), 1), "min": int(lengths.min()),
                                       "p50": int(np.median(lengths)), "p90": int(np.percentile(lengths, 90)),
                                       "max": int(lengths.max())}
    return out


def main(argv: list[str] | None = None) -> None:
    """``python -m speechseq.data.embedded --size default``: build (or load) and print a summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="default", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    config = EmbeddedCorpusConfig.preset(args.size, seed=args.seed, num_workers=args.workers)
    start = time.perf_counter()
    corpus = build_embedded_corpus(config, cache_dir=args.cache_dir)
    elapsed = time.perf_counter() - start
    info = corpus_info(config, args.cache_dir)
    summary = summarize(corpus)
    print(f"corpus: {config.corpus_dir(args.cache_dir)}")
    print(f"this call: {elapsed:.1f} s; original build: {info['build_seconds']} s "
          f"with {info['num_workers']} workers")
    voices = info["recipe"]["voices"]
    print(f"voices: {len(voices['train'])} seen, {len(voices['unseen'])} unseen; "
          f"held-out combinations: {len(info['held_out_pairs'])}")
    for split, entry in summary["splits"].items():
        print(f"  {split:12s} " + "  ".join(f"{k}={v}" for k, v in entry.items()))
    print(f"vocabulary (word types): {summary['vocabulary']}")
    print(f"train sentence length (words): {summary['sentence_words']}")


if __name__ == "__main__":
    main()
