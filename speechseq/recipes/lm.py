"""``task=lm``: an LSTM language model over ASR tokens, for shallow fusion in beam search.

Data: the transcripts of an ASR corpus (``data.source=asr``, the same ``data.asr.*`` keys as the ASR
recipes) or UTF-8 text files with one sentence per line (``data.source=text``, ``data.text_files``). For
fusion the LM must use the ASR model's token ids: point ``data.tokenizer_dir`` at the ASR model's folder
(its ``tokenizer.json``); without it a character tokenizer is built from the training text. Sentences the
tokenizer cannot encode are dropped and counted in the log.

Batching: the loop's length-bucketed sampler sees each sentence's *token count + 1* as its "duration", so
``train.batch_seconds`` / ``train.eval_batch_seconds`` are token budgets for this task.

Evaluation reports ``loss`` (NLL per token, ``<eos>`` included), ``perplexity = exp(loss)`` and, for scale,
``unigram_perplexity`` of add-one smoothed unigram counts of the training text on the same sentences.

>>> cfg = load_task_config("lm", ["data.source=text", "data.text_files.train=train.txt"])  # doctest: +SKIP
>>> metrics = train(cfg)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from speechseq.config import RunConfig
from speechseq.errors import ConfigError, UnknownTokenError
from speechseq.models.lm import SOS_EOS_ID, LMConfig, RNNLM
from speechseq.recipes.base import AsrDataConfig, Batch, EvalResult, Recipe, TaskParts

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class LMDataConfig:
    """The text an LM learns from (``data.*`` of ``configs/lm.yaml``).

    Attributes:
        source: ``asr`` (transcripts of the corpus in ``asr``) or ``text`` (the files in ``text_files``).
        asr: the ASR corpus whose transcripts are used (``source=asr``); audio is never decoded.
        text_files: split -> UTF-8 file, one sentence per line (``source=text``); must hold ``train``.
        normalize_text: normalise text-file lines like ASR transcripts (lower case, numbers spelled out).
        lang: language of the text files, for normalisation.
        tokenizer_dir: folder with the ASR model's ``tokenizer.json`` (empty: characters of the training text).
        max_sentences: cap per split (``null`` = all): tiny runs and tests.
    """

    source: Literal["asr", "text"] = "asr"
    asr: AsrDataConfig = dataclasses.field(default_factory=AsrDataConfig)
    text_files: dict[str, str] = dataclasses.field(default_factory=dict)
    normalize_text: bool = True
    lang: str = "en"
    tokenizer_dir: str = ""
    max_sentences: int | None = None


@dataclasses.dataclass
class LMTaskConfig(RunConfig):
    """The whole ``configs/lm.yaml``: run and loop settings plus data and model."""

    data: LMDataConfig = dataclasses.field(default_factory=LMDataConfig)
    model: LMConfig = dataclasses.field(default_factory=LMConfig)


class TextCollator:
    """Rows ``{"id", "tokens"}`` -> ``{"ids", "tokens" (B,L) long (pad 0), "token_lengths" (B,)}``.

    >>> TextCollator()([{"id": "a", "tokens": [5, 6]}, {"id": "b", "tokens": [7]}])["tokens"].tolist()
    [[5, 6], [7, 0]]
    """

    def __call__(self, rows: list[dict[str, Any]]) -> Batch:
        from speechseq.data.collate import pad_tokens

        tokens, lengths = pad_tokens([row["tokens"] for row in rows])
        return {"ids": [row["id"] for row in rows], "tokens": tokens, "token_lengths": lengths}


def read_text_file(path: str | Path, lang: str, normalize_text: bool) -> list[str]:
    """Non-empty lines of a UTF-8 file, optionally normalised; names the file when it cannot be read."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"data.text_files: cannot read {path}: {err}") from err
    if normalize_text:
        from speechseq.text import normalize

        lines = [normalize(line, lang) for line in lines]
    return [line.strip() for line in lines if line.strip()]


class LMRecipe(Recipe):
    """Train :class:`speechseq.models.lm.RNNLM` on sentences; metrics are per-token NLL and perplexity."""

    name = "lm"
    config_class = LMTaskConfig
    config: LMTaskConfig

    def build(self) -> TaskParts:
        """Read the text, choose the tokenizer, encode (dropping what it cannot encode), build the model."""
        texts = self._load_texts()
        tokenizer = self._tokenizer(texts["train"])
        rows = {split: self._encode(split, lines, tokenizer) for split, lines in texts.items()}
        if not rows["train"]:
            raise ConfigError("data: no training sentence could be encoded with the tokenizer")
        self.split_sizes = {split: len(r) for split, r in rows.items()}
        self.unigram_log_probs = self._unigram(rows["train"], tokenizer.vocab_size)
        model_config = dataclasses.replace(self.config.model, vocab_size=tokenizer.vocab_size)
        collator = TextCollator()
        return TaskParts(
            model=RNNLM(model_config, None, tokenizer),
            datasets=rows,
            train_collator=collator,
            eval_collator=collator,
            durations={split: [len(r["tokens"]) + 1.0 for r in split_rows] for split, split_rows in rows.items()},
        )

    def _load_texts(self) -> dict[str, list[str]]:
        data = self.config.data
        if data.source == "text":
            if "train" not in data.text_files:
                raise ConfigError("data.text_files: source=text needs at least data.text_files.train=PATH")
            texts = {s: read_text_file(p, data.lang, data.normalize_text) for s, p in data.text_files.items()}
        else:
            from speechseq.recipes.base import load_asr_splits

            texts = {split: list(ds["text"]) for split, ds in load_asr_splits(data.asr).items()}
        if data.max_sentences is not None:
            texts = {split: lines[: data.max_sentences] for split, lines in texts.items()}
        return texts

    def _tokenizer(self, train_texts: list[str]) -> Any:
        from speechseq.text import CharTokenizer, load_tokenizer

        if self.config.data.tokenizer_dir:
            return load_tokenizer(self.config.data.tokenizer_dir)
        return CharTokenizer.from_texts(train_texts)

    @staticmethod
    def _encode(split: str, lines: list[str], tokenizer: Any) -> list[dict[str, Any]]:
        rows, dropped = [], 0
        for i, line in enumerate(lines):
            try:
                tokens = tokenizer.encode(line)
            except UnknownTokenError:
                dropped += 1
                continue
            if tokens:
                rows.append({"id": f"{split}-{i:07d}", "tokens": tokens})
        if dropped:
            logger.warning("%s: dropped %d of %d sentences with symbols the tokenizer does not know",
                           split, dropped, len(lines))
        return rows

    @staticmethod
    def _unigram(rows: list[dict[str, Any]], vocab_size: int) -> torch.Tensor:
        """(V,) add-one smoothed unigram log-probs of the training tokens and ``<eos>``."""
        counts = Counter(t for row in rows for t in row["tokens"])
        counts[SOS_EOS_ID] += len(rows)
        values = torch.ones(vocab_size, dtype=torch.float64)
        for token, count in counts.items():
            values[token] += count
        return (values / values.sum()).log()

    def train_step(self, model: nn.Module, batch: Batch) -> dict[str, Any]:
        """Teacher-forced NLL per token of one batch."""
        return {"loss": model(batch["tokens"], batch["token_lengths"]).loss}

    def eval_records(self, model: nn.Module, batch: Batch) -> list[dict[str, Any]]:
        """Per sentence: LM and unigram NLL and the number of predicted tokens."""
        out = model(batch["tokens"], batch["token_lengths"])
        unigram = self.unigram_log_probs
        records = []
        for i, utt in enumerate(batch["ids"]):
            length = int(batch["token_lengths"][i])
            ids = batch["tokens"][i, :length].cpu()
            unigram_nll = -float(unigram[ids].sum() + unigram[SOS_EOS_ID])
            records.append({"id": utt, "nll": float(out.utterance_nll[i]), "unigram_nll": unigram_nll,
                            "count": length + 1})
        return records

    def summarize(self, records: list[dict[str, Any]], split: str) -> EvalResult:
        """Corpus NLL per token, perplexity, and the unigram perplexity of the same sentences."""
        count = max(sum(r["count"] for r in records), 1)
        loss = sum(r["nll"] for r in records) / count
        unigram = sum(r["unigram_nll"] for r in records) / count
        return EvalResult(metrics={"loss": loss, "perplexity": math.exp(loss), "unigram_perplexity": math.exp(unigram)})

    def describe_data(self) -> str:
        """Where the sentences came from and how many per split, for the model card."""
        data = self.config.data
        where = f"text files {data.text_files}" if data.source == "text" else f"transcripts of `{data.asr.corpus}`"
        sizes = ", ".join(f"{k}: {v}" for k, v in getattr(self, "split_sizes", {}).items())
        return f"Trained on {where}; sentences per split: {sizes}."
