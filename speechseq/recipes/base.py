"""The recipe interface the training loop drives, and the ASR data every speech-recognition recipe shares.

A recipe owns everything task-specific: its config dataclass, how to build the model and data, what one
training step computes, and how an evaluation scores. The loop (``speechseq.train``) owns everything else:
devices, precision, batching, the optimiser, checkpoints, logging. Evaluation is split in two so that it
works across processes: ``eval_records`` turns one batch into picklable per-utterance records on each rank,
the loop gathers them, and ``summarize`` turns all records into metrics.

Example of a minimal recipe (see ``speechseq/recipes/ctc.py`` for a real one)::

    class MyRecipe(Recipe):
        name, config_class = "mine", MyConfig
        def build(self): return TaskParts(model, {"train": ds, "validation": dv}, collate, collate)
        def train_step(self, model, batch): return {"loss": model(**batch).loss}
        def eval_records(self, model, batch): return [{"id": i, "loss": ...} for i in batch["ids"]]
        def summarize(self, records, split): return EvalResult({"loss": mean(r["loss"] for r in records)})
"""

from __future__ import annotations

import dataclasses
import logging
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterable, Literal, Mapping

import numpy as np
import torch
from torch import nn

from speechseq.config import RunConfig, to_dict
from speechseq.errors import ConfigError, SpeechSeqError

if TYPE_CHECKING:  # the corpus module imports datasets: only where the embedded corpus is used
    from speechseq.data.embedded import EmbeddedCorpusConfig

logger = logging.getLogger(__name__)

FSDD_TEST_TAKES = 5  # takes 0-4 of each FSDD speaker are its test (FSDD's own test set)
FSDD_EVAL_TAKES = 10  # takes 5-9 its validation; 10-49 train by default (data.fsdd_train_from_take)

Batch = dict[str, Any]


@dataclasses.dataclass
class EvalResult:
    """What an evaluation returns.

    Attributes:
        metrics: scalar results, e.g. ``{"loss": 0.4, "wer": 0.05, "cer": 0.02}``.
        images: name -> (H, W) array shown as a heatmap (attention weights, spectrograms, posteriors).
        audio: name -> (wave (S,) float32 in [-1, 1], sample_rate).
        texts: name -> markdown text (e.g. reference vs hypothesis samples).
    """

    metrics: dict[str, float]
    images: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    audio: dict[str, tuple[np.ndarray, int]] = dataclasses.field(default_factory=dict)
    texts: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class TaskParts:
    """What :meth:`Recipe.build` gives the loop.

    Attributes:
        model: the model (a ``PretrainedModel`` family, so that it can be exported).
        datasets: split name -> dataset of rows the collators understand; must hold ``"train"``.
        train_collator: rows -> batch dict for training (augmentation on); may have ``set_epoch(epoch)``.
        eval_collator: rows -> batch dict for evaluation.
        durations: split name -> seconds per row, for the length-bucketed sampler.
        eval_splits: splits evaluated at the end (default: every split but ``train``).
    """

    model: nn.Module
    datasets: dict[str, Any]
    train_collator: Callable[[list[Mapping[str, Any]]], Batch]
    eval_collator: Callable[[list[Mapping[str, Any]]], Batch]
    durations: dict[str, list[float]]
    eval_splits: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        if "train" not in self.datasets:
            raise ConfigError(f"a recipe must build a 'train' split; got {sorted(self.datasets)}")
        if not self.eval_splits:
            self.eval_splits = [s for s in self.datasets if s != "train"]


class Recipe(ABC):
    """One training task. Subclasses set ``name`` and ``config_class`` and implement the four methods.

    The model passed to ``train_step`` may be wrapped for data parallelism (call it, do not reach into
    it); ``eval_records`` gets the unwrapped model in eval mode under ``torch.no_grad``.
    """

    name: ClassVar[str]
    config_class: ClassVar[type[RunConfig]]

    def __init__(self, config: RunConfig) -> None:
        self.config = config

    @abstractmethod
    def build(self) -> TaskParts:
        """Build model, datasets and collators from ``self.config`` (runs on every process)."""

    @abstractmethod
    def train_step(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor | float]:
        """Forward one batch; return ``{"loss": scalar tensor, ...other scalars to log}``."""

    @abstractmethod
    def eval_records(self, model: nn.Module, batch: Batch) -> list[dict[str, Any]]:
        """Per-utterance picklable records (each with its ``"id"``) of one evaluation batch."""

    @abstractmethod
    def summarize(self, records: list[dict[str, Any]], split: str) -> EvalResult:
        """Metrics (and optional artifacts) of a split from all its records."""

    def evaluate(self, model: nn.Module, batches: Iterable[Batch], split: str) -> EvalResult:
        """Single-process evaluation: records of every batch, then :meth:`summarize`."""
        records: list[dict[str, Any]] = []
        with torch.no_grad():
            for batch in batches:
                records.extend(self.eval_records(model, batch))
        return self.summarize(records, split)

    def final_metrics(self, model: nn.Module, split: str, dataset: Any) -> dict[str, float]:
        """Extra metrics of ``split`` computed once at the end of training (main process only), e.g. a beam
        search too slow to run at every evaluation. The default adds none."""
        del model, split, dataset
        return {}

    def describe_data(self) -> str:
        """One or two sentences on the training data, for the model card."""
        data = getattr(self.config, "data", None)
        return f"`data` config: {to_dict(data)}" if data is not None else ""

    def save_final(self, model: nn.Module, directory: Path, metrics: dict[str, dict[str, float]]) -> Path:
        """Export the trained model (``save_pretrained`` with a model card carrying ``metrics``)."""
        from speechseq.hub import ModelCardInfo

        card = ModelCardInfo(
            training_data=self.describe_data(),
            metrics=metrics,
            train_config=to_dict(self.config),
            tags=[self.name],
        )
        return model.save_pretrained(directory, card=card)


# ----------------------------------------------------------------------------------------------------------
# ASR data shared by the speech-recognition recipes (ctc, las, ...)
# ----------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class AsrDataConfig:
    """Which corpus an ASR recipe trains on, and how it is cleaned (``data.*`` in the task YAML).

    Attributes:
        corpus: ``embedded`` (synthetic en/es corpus with seen/unseen voices), ``fsdd`` (spoken digits),
            ``ljspeech`` (folder in LJSpeech layout) or ``manifest`` (CSV/JSONL files per split).
        size: preset of the embedded corpus (``tiny``, ``default``, ...).
        lang: language of the transcripts (embedded: ``en`` or ``es``).
        root: folder of ``fsdd`` recordings or of the ``ljspeech`` corpus.
        manifests: split -> manifest path (``corpus=manifest``); must hold ``train``.
        fsdd_unseen_speakers: FSDD speakers held out of training entirely; they form ``test_unseen``.
        fsdd_train_from_take: the training speakers' takes from this index up train (default 10: takes 0-4 are
            their test, 5-9 their validation). Below 10 the validation and test takes at or above it train too,
            so those splits stop being held out (only ``test_unseen`` still is); for runs that export their last
            weights and need no selection.
        ljspeech_eval_utterances: LJSpeech utterances (from the end) held out for validation and for test.
        max_utterances: cap per split (``null`` = all): tiny runs and tests.
        normalize_text: normalise transcripts (lower case, numbers spelled out) before tokenising.
        min_seconds / max_seconds: screening bounds on duration.
        screen_silence: decode every file during screening to drop silent ones.
        cache_dir: where the embedded corpus is cached (``null``: ``$SPEECHSEQ_CACHE`` or ``~/.cache/speechseq``).
        corpus_seed: seed of the embedded corpus (``null``: the preset's); kept apart from the run's ``seed`` so
            that changing the training seed never changes (and rebuilds) the data.
        corpus_voices: training voices of the embedded corpus (``null``: the preset's).
        corpus_variants: the pool those voices come from: ``train`` (the preset's) or ``all`` (the unseen
            voices' variants too, for a pre-training with more vocal tracts; see ``EmbeddedCorpusConfig``).
        corpus_flite_voices: training voices added from Flite's voices of real people (``0``: none; needs the
            ``flite`` program and ``lang=en``: the corpus is then rendered in English only).
        tokenizer: output units learnt from the training transcripts: ``char`` (characters) or ``bpe``
            (sentencepiece BPE pieces; fewer, longer units, so CTC needs fewer encoder frames per second).
        bpe_vocab_size: pieces of the BPE tokenizer, specials included (``tokenizer=bpe`` only).
    """

    corpus: Literal["embedded", "fsdd", "ljspeech", "manifest"] = "embedded"
    size: str = "default"
    lang: str = "en"
    root: str = ""
    manifests: dict[str, str] = dataclasses.field(default_factory=dict)
    fsdd_unseen_speakers: list[str] = dataclasses.field(default_factory=lambda: ["yweweler"])
    fsdd_train_from_take: int = FSDD_EVAL_TAKES
    ljspeech_eval_utterances: int = 4
    max_utterances: int | None = None
    normalize_text: bool = True
    min_seconds: float = 0.05
    max_seconds: float | None = 30.0
    screen_silence: bool = True
    cache_dir: str | None = None
    corpus_seed: int | None = None
    corpus_voices: int | None = None
    corpus_variants: Literal["train", "all"] = "train"
    corpus_flite_voices: int = 0
    tokenizer: Literal["char", "bpe"] = "char"
    bpe_vocab_size: int = 256


@dataclasses.dataclass
class FinalDecodeConfig:
    """A beam search run on every evaluation split once training ends (``decode.*``), besides greedy.

    Its figures go to ``metrics.json`` as ``beam_wer`` and ``beam_cer`` next to the greedy ``wer``/``cer``
    (decoding as ``speechseq evaluate`` does it: see docs/decoding.md for the scores).

    Attributes:
        beam_size: hypotheses per utterance; 0 turns the final beam search off.
        ctc_weight: λ of joint CTC/attention decoding (attention models; CTC models are all CTC).
        lm: folder (or Hub repo) of a saved ``task=lm`` model with the ASR model's tokenizer; empty for none.
        lm_weight: β of the language model (shallow fusion).
        length_bonus: added per emitted token.
        score_beam: prune hypotheses this far below their utterance's best (``DecodingOptions.score_beam``);
            null keeps all ``beam_size``.
        batch_size: utterances decoded together.
    """

    beam_size: int = 0
    ctc_weight: float = 0.0
    lm: str = ""
    lm_weight: float = 0.0
    length_bonus: float = 0.0
    score_beam: float | None = None
    batch_size: int = 32


class FinalDecodeMixin:
    """``final_metrics`` of the ASR recipes: the beam search of ``config.decode`` on each evaluation split,
    decoded as ``speechseq evaluate`` does (``speechseq.inference.evaluate``)."""

    config: Any
    _final_lm: Any = None

    def load_final_lm(self, model: nn.Module) -> None:
        """Load ``decode.lm`` at build time, so that a wrong path or a language model with another tokenizer
        fails before training, not after it."""
        cfg: FinalDecodeConfig = self.config.decode
        if cfg.beam_size > 0 and cfg.lm:
            from speechseq.inference import load_lm

            try:
                self._final_lm = load_lm(cfg.lm, model)  # checked against the model's tokenizer
            except SpeechSeqError as err:
                raise ConfigError(f"decode.lm: {err}") from err

    def final_metrics(self, model: nn.Module, split: str, dataset: Any) -> dict[str, float]:
        """``{"beam_wer", "beam_cer"}`` of ``split`` (``{}`` when ``decode.beam_size`` is 0)."""
        cfg: FinalDecodeConfig = self.config.decode
        if cfg.beam_size <= 0:
            return {}
        from speechseq.inference import default_options, evaluate

        lm = self._final_lm
        options = dataclasses.replace(
            default_options(model), beam_size=cfg.beam_size, ctc_weight=cfg.ctc_weight,
            lm_weight=cfg.lm_weight if lm is not None else 0.0, length_bonus=cfg.length_bonus,
            score_beam=cfg.score_beam,
        )
        logger.info("beam search (beam %d%s) on %s", cfg.beam_size, f", LM {cfg.lm}" if lm else "", split)
        result = evaluate(model, dataset, options, lm=lm, batch_size=cfg.batch_size)
        return {"beam_wer": float(result["wer"]), "beam_cer": float(result["cer"])}


def _need_root(cfg: AsrDataConfig) -> Path:
    if not cfg.root:
        raise ConfigError(f"data.root: corpus={cfg.corpus!r} needs the folder of the corpus (data.root=PATH)")
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise ConfigError(f"data.root: {root} is not a folder")
    return root


def _fsdd_splits(cfg: AsrDataConfig) -> dict[str, Any]:
    """FSDD folds: index 0-4 test, 5-9 validation, ``fsdd_train_from_take``-49 train (default 10-49).

    Held-out speakers form ``test_unseen`` and never train.
    """
    from speechseq.data.readers import load_fsdd

    first = cfg.fsdd_train_from_take
    if not 0 <= first <= FSDD_EVAL_TAKES:
        raise ConfigError(f"data.fsdd_train_from_take: must be between 0 and {FSDD_EVAL_TAKES} (takes 0-"
                          f"{FSDD_EVAL_TAKES - 1} are test and validation), got {first}")
    full = load_fsdd(_need_root(cfg))
    index = [int(i.rsplit("_", 1)[1]) for i in full["id"]]
    unseen = set(cfg.fsdd_unseen_speakers)
    seen_rows: dict[str, list[int]] = {"train": [], "validation": [], "test": [], "test_unseen": []}
    for row, (speaker, idx) in enumerate(zip(full["speaker"], index)):
        if speaker in unseen:
            seen_rows["test_unseen"].append(row)
            continue
        if idx < FSDD_EVAL_TAKES:
            seen_rows["test" if idx < FSDD_TEST_TAKES else "validation"].append(row)
        if idx >= first:
            seen_rows["train"].append(row)
    if first < FSDD_EVAL_TAKES:
        logger.warning("data.fsdd_train_from_take=%d: the training speakers' takes %d-%d also train, so validation "
                       "and test are no longer held out (test_unseen still is)", first, first, FSDD_EVAL_TAKES - 1)
    return {split: full.select(rows) for split, rows in seen_rows.items() if rows}


def _ljspeech_splits(cfg: AsrDataConfig) -> dict[str, Any]:
    from speechseq.data.readers import load_ljspeech

    full = load_ljspeech(_need_root(cfg))
    n, k = len(full), cfg.ljspeech_eval_utterances
    if n <= 2 * k:
        raise ConfigError(f"data.ljspeech_eval_utterances={k} leaves no training data out of {n} utterances")
    return {
        "train": full.select(range(n - 2 * k)),
        "validation": full.select(range(n - 2 * k, n - k)),
        "test": full.select(range(n - k, n)),
    }


def embedded_config(cfg: AsrDataConfig) -> EmbeddedCorpusConfig:
    """The ``EmbeddedCorpusConfig`` of ``data.size`` with the ``data.corpus_*`` overrides that are set."""
    from speechseq.data.embedded import EmbeddedCorpusConfig

    overrides: dict[str, Any] = {"train_variants": cfg.corpus_variants}
    if cfg.corpus_seed is not None:
        overrides["seed"] = cfg.corpus_seed
    if cfg.corpus_voices is not None:
        overrides["train_voices"] = cfg.corpus_voices
    if cfg.corpus_flite_voices:
        if cfg.lang != "en":
            raise ConfigError(f"data.corpus_flite_voices={cfg.corpus_flite_voices} needs data.lang=en "
                              f"(Flite speaks English only), not {cfg.lang!r}")
        # Only the language the recipe reads is rendered: Flite's voices could not speak the other.
        overrides.update(flite_voices=cfg.corpus_flite_voices, languages=("en",))
    return EmbeddedCorpusConfig.preset(cfg.size, **overrides)


def _embedded_splits(cfg: AsrDataConfig) -> dict[str, Any]:
    from speechseq.data.embedded import asr_view, build_embedded_corpus

    # The corpus module resolves a null cache_dir itself ($SPEECHSEQ_CACHE, then ~/.cache/speechseq).
    corpus = build_embedded_corpus(embedded_config(cfg), cache_dir=cfg.cache_dir)
    return {split: asr_view(corpus[split], cfg.lang) for split in corpus}


def load_asr_splits(cfg: AsrDataConfig, seed: int | None = None) -> dict[str, Any]:
    """ASR-view datasets by split (``train``, ``validation``, ``test``, maybe ``test_unseen``), uncleaned.

    ``seed`` is ignored (the corpus seed is ``data.corpus_seed``); it stays so that existing callers work.
    """
    del seed
    if cfg.corpus == "embedded":
        splits = _embedded_splits(cfg)
    elif cfg.corpus == "fsdd":
        splits = _fsdd_splits(cfg)
    elif cfg.corpus == "ljspeech":
        splits = _ljspeech_splits(cfg)
    else:
        from speechseq.data.readers import load_manifest

        if "train" not in cfg.manifests:
            raise ConfigError("data.manifests: corpus=manifest needs at least data.manifests.train=PATH")
        splits = {split: load_manifest(path, lang=cfg.lang) for split, path in cfg.manifests.items()}
    if cfg.max_utterances is not None:
        # A spread of rows, not the first ones: readers sort by speaker, and a prefix would hold one voice.
        splits = {
            s: d.select(np.linspace(0, len(d) - 1, min(len(d), cfg.max_utterances)).round().astype(int).tolist())
            for s, d in splits.items()
        }
    if cfg.normalize_text:
        from speechseq.text import normalize

        splits = {s: d.map(lambda row: {"text": normalize(row["text"], cfg.lang)}) for s, d in splits.items()}
    return splits


def wave_augmenter(config: Any, sample_rate: int) -> Any:
    """A ``WaveAugment`` for ``config`` (an ``AugmentConfig``), or ``None`` when every effect is off."""
    from speechseq.augment import WaveAugment

    return WaveAugment(config, sample_rate) if config.enabled else None


def samples_table(records: list[dict[str, Any]], shown: int = 8) -> str:
    """Markdown table of the first ``shown`` records' id, reference and hypothesis (for TensorBoard)."""
    rows = ["| id | reference | hypothesis |", "|---|---|---|"]
    rows += [f"| {r['id']} | {r['ref']} | {r['hyp']} |" for r in records[:shown]]
    return "\n".join(rows)


def build_asr_parts(config: Any, make_model: Callable[[Any, list[str]], nn.Module]) -> TaskParts:
    """The data side of an ASR recipe: load and screen ``config.data``, build the tokenizer from the training
    transcripts (``data.tokenizer``: characters or BPE pieces; fine-tuning keeps the one of
    ``config.train.init_from``), and the collators (waveform augmentation from ``config.augment`` in training).

    Args:
        config: a task config with ``data`` (:class:`AsrDataConfig`), ``features``, ``augment`` and ``seed``.
        make_model: (tokenizer, the training split's speakers, sorted) -> model (the recipe sets vocabulary
            size and input features there).
    """
    from speechseq.data.collate import SpeechCollator
    from speechseq.hub import resolve_model_folder
    from speechseq.text import CharTokenizer, load_tokenizer
    from speechseq.text.bpe import BPETokenizer

    rate = config.features.sample_rate
    splits = load_asr_splits(config.data)
    if config.train.init_from:  # fine-tuning keeps the pretrained model's token ids
        tokenizer = load_tokenizer(resolve_model_folder(config.train.init_from))
    elif config.data.tokenizer == "bpe":
        tokenizer = BPETokenizer.train(splits["train"]["text"], vocab_size=config.data.bpe_vocab_size)
    else:
        tokenizer = CharTokenizer.from_texts(splits["train"]["text"])
    splits = screen_splits(splits, config.data, tokenizer, rate)
    return TaskParts(
        model=make_model(tokenizer, sorted(set(splits["train"]["speaker"]))),
        datasets=splits,
        train_collator=SpeechCollator(
            tokenizer, rate, augment=wave_augmenter(config.augment, rate), seed=config.seed
        ),
        eval_collator=SpeechCollator(tokenizer, rate),
        durations={split: list(data["duration"]) for split, data in splits.items()},
    )


def screen_splits(splits: dict[str, Any], cfg: AsrDataConfig, tokenizer: Any, sample_rate: int) -> dict[str, Any]:
    """Drop unusable rows of every split (``screen_dataset``) and log the counts per reason."""
    from speechseq.data.screening import screen_dataset

    clean = {}
    for split, dataset in splits.items():
        result = screen_dataset(
            dataset,
            tokenizer=tokenizer,
            sample_rate=sample_rate,
            max_seconds=cfg.max_seconds,
            min_seconds=cfg.min_seconds,
            check_silence=cfg.screen_silence,
        )
        dropped = sum(result.counts.values())
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(result.counts.items())) or "none"
        logger.info("data %s: %d utterances kept, %d dropped (%s)", split, len(result.dataset), dropped, detail)
        if len(result.dataset) == 0:
            raise ConfigError(f"data: every utterance of split {split!r} was dropped by screening ({detail})")
        clean[split] = result.dataset
    return clean
