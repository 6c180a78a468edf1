"""``task=ctc``: the CTC baseline ASR recipe (character targets, greedy decoding, WER/CER).

Data: the ASR view of the configured corpus (``data.*``, see :class:`AsrDataConfig`), screened for bad
audio and text before training; the character vocabulary comes from the training transcripts and is saved
with the model. Evaluation reports ``loss`` (CTC per target token), ``wer`` and ``cer`` per split, a table of
sample transcripts and the posteriorgram of one utterance for TensorBoard.

>>> cfg = load_task_config("ctc", ["data.corpus=fsdd", "data.root=../shared/data/fsdd/recordings"])  # doctest: +SKIP
>>> parts = CTCRecipe(cfg).build()  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from torch import nn

from speechseq.augment import AugmentConfig
from speechseq.config import RunConfig
from speechseq.features import FeatureConfig
from speechseq.metrics import error_rates
from speechseq.models.ctc import CTCConfig, CTCModel, ctc_greedy
from speechseq.recipes.base import (
    AsrDataConfig, Batch, EvalResult, FinalDecodeConfig, FinalDecodeMixin, Recipe, TaskParts, build_asr_parts,
    samples_table,
)


@dataclasses.dataclass
class CTCTaskConfig(RunConfig):
    """The whole ``configs/ctc.yaml``: run and loop settings plus data, features, augmentation and model."""

    data: AsrDataConfig = dataclasses.field(default_factory=AsrDataConfig)
    features: FeatureConfig = dataclasses.field(default_factory=FeatureConfig.asr_16k)
    augment: AugmentConfig = dataclasses.field(default_factory=AugmentConfig)
    model: CTCConfig = dataclasses.field(default_factory=CTCConfig)
    decode: FinalDecodeConfig = dataclasses.field(default_factory=FinalDecodeConfig)


# Kept until recipes/las.py imports the public names from speechseq.recipes.base.


class CTCRecipe(FinalDecodeMixin, Recipe):
    """Conv + BiLSTM encoder with a CTC head, trained on characters (see :mod:`speechseq.models.ctc`)."""

    name = "ctc"
    config_class = CTCTaskConfig
    config: CTCTaskConfig

    def build(self) -> TaskParts:
        """Load and screen the data, build the character tokenizer from the training texts, then the model."""
        cfg = self.config

        def make_model(tokenizer: Any, _speakers: list[str]) -> CTCModel:
            model_config = dataclasses.replace(
                cfg.model,
                vocab_size=tokenizer.vocab_size,
                encoder=dataclasses.replace(cfg.model.encoder, input_dim=cfg.features.n_mels),
            )
            return CTCModel(model_config, cfg.features, tokenizer)

        parts = build_asr_parts(cfg, make_model)
        self.load_final_lm(parts.model)
        self.split_sizes = {split: len(data) for split, data in parts.datasets.items()}
        return parts

    def train_step(self, model: nn.Module, batch: Batch) -> dict[str, Any]:
        """CTC loss of one batch (per target token, averaged over utterances)."""
        out = model(batch["wave"], batch["wave_lengths"], batch["tokens"], batch["token_lengths"])
        return {"loss": out.loss}

    def eval_records(self, model: nn.Module, batch: Batch) -> list[dict[str, Any]]:
        """Reference, greedy hypothesis and loss per utterance; the first also carries its posteriorgram."""
        out = model(batch["wave"], batch["wave_lengths"], batch["tokens"], batch["token_lengths"])
        hyps = ctc_greedy(out.log_probs, out.lengths)
        tokenizer = model.tokenizer
        records = []
        for i, utt in enumerate(batch["ids"]):
            ref_ids = batch["tokens"][i, : int(batch["token_lengths"][i])].tolist()
            records.append(
                {"id": utt, "ref": tokenizer.decode(ref_ids), "hyp": tokenizer.decode(hyps[i]),
                 "loss": float(out.utterance_loss[i])}
            )
        if records:
            frames = int(out.lengths[0])
            records[0]["posteriors"] = out.log_probs[0, :frames].exp().T.float().cpu().numpy()  # (V, T')
        return records

    def summarize(self, records: list[dict[str, Any]], split: str) -> EvalResult:
        """Corpus WER/CER, mean loss, sample transcripts and one posteriorgram (records sorted by id)."""
        records = sorted(records, key=lambda r: r["id"])
        rates = error_rates([r["ref"] for r in records], [r["hyp"] for r in records])
        metrics = {"loss": float(np.mean([r["loss"] for r in records])), "wer": rates.wer, "cer": rates.cer}
        images = {}
        with_image = [r for r in records if "posteriors" in r]
        if with_image:
            images[f"posteriors/{with_image[0]['id']}"] = with_image[0]["posteriors"]
        return EvalResult(metrics=metrics, images=images, texts={"samples": samples_table(records)})

    def describe_data(self) -> str:
        """Corpus, language and utterances per split (after screening), for the model card."""
        data = self.config.data
        sizes = ", ".join(f"{k}: {v}" for k, v in getattr(self, "split_sizes", {}).items())
        what = f"the embedded synthetic corpus (size `{data.size}`)" if data.corpus == "embedded" else data.corpus
        return f"Trained on {what}, language `{data.lang}`, utterances per split after screening: {sizes}."
