"""``task=las``: attention encoder-decoder ASR (LAS, Transformer or Conformer backbone) with a CTC head.

Data and tokenizer as in ``task=ctc`` (screened ASR view, characters from the training transcripts).
Training minimises ``a·L_CTC + (1−a)·L_att`` with scheduled sampling ramped by ``model.sampling``.
Evaluation reports per split ``loss``, ``ctc_loss``, ``att_loss``, ``wer``/``cer`` of greedy attention
decoding, and how usable the teacher-forced attention is (``att_focus``, ``att_diagonality``); the
attention map of one utterance is returned for TensorBoard and saved as a PNG in ``{output_dir}/attention/``.

>>> cfg = load_task_config("las", ["data.corpus=fsdd", "data.root=../shared/data/fsdd/recordings"])  # doctest: +SKIP
>>> parts = LASRecipe(cfg).build()  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from speechseq.augment import AugmentConfig
from speechseq.config import RunConfig
from speechseq.features import FeatureConfig
from speechseq.errors import ConfigError
from speechseq.metrics import error_rates
from speechseq.models.las import LASConfig, LASModel
from speechseq.nn.adversary import SpeakerAdversaryConfig
from speechseq.nn.alignment import alignment_scores
from speechseq.recipes.base import (
    AsrDataConfig, Batch, EvalResult, FinalDecodeConfig, FinalDecodeMixin, Recipe, TaskParts, build_asr_parts,
    samples_table,
)

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class LASTaskConfig(RunConfig):
    """The whole ``configs/las.yaml``: run and loop settings plus data, features, augmentation and model."""

    data: AsrDataConfig = dataclasses.field(default_factory=AsrDataConfig)
    features: FeatureConfig = dataclasses.field(default_factory=FeatureConfig.asr_16k)
    augment: AugmentConfig = dataclasses.field(default_factory=AugmentConfig)
    model: LASConfig = dataclasses.field(default_factory=LASConfig)
    decode: FinalDecodeConfig = dataclasses.field(default_factory=FinalDecodeConfig)


def _with_input_dim(model: LASConfig, n_mels: int) -> LASConfig:
    """``model`` with every encoder's ``input_dim`` set to the number of mel bins."""
    return dataclasses.replace(
        model,
        listener=dataclasses.replace(model.listener, input_dim=n_mels),
        transformer_encoder=dataclasses.replace(model.transformer_encoder, input_dim=n_mels),
        conformer_encoder=dataclasses.replace(model.conformer_encoder, input_dim=n_mels),
    )


def _with_speakers(adversary: SpeakerAdversaryConfig, speakers: list[str]) -> SpeakerAdversaryConfig:
    """The adversary's classes: as configured, else (when it is on) the training split's speakers."""
    if adversary.weight <= 0 or adversary.speakers:
        return adversary
    if "" in speakers:
        raise ConfigError("model.adversary.weight > 0, but some training utterances have no speaker label")
    return dataclasses.replace(adversary, speakers=list(speakers))


def save_attention_png(matrix: np.ndarray, path: Path, title: str) -> Path:
    """Save an attention map (steps, frames) as a heatmap PNG; returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axis = plt.subplots(figsize=(6, 4))
    image = axis.imshow(matrix, aspect="auto", origin="lower", interpolation="none", vmin=0.0)
    axis.set_xlabel("encoder frame")
    axis.set_ylabel("output step")
    axis.set_title(title)
    fig.colorbar(image, ax=axis)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _is_main_process() -> bool:
    return not torch.distributed.is_available() or not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0


class LASRecipe(FinalDecodeMixin, Recipe):
    """Attention encoder-decoder ASR trained jointly with CTC (see :mod:`speechseq.models.las`)."""

    name = "las"
    config_class = LASTaskConfig
    config: LASTaskConfig

    def __init__(self, config: LASTaskConfig) -> None:
        super().__init__(config)
        self.evaluations: dict[str, int] = {}

    def build(self) -> TaskParts:
        """Load and screen the data, build the character tokenizer from the training texts, then the model."""
        cfg = self.config

        def make_model(tokenizer: Any, speakers: list[str]) -> LASModel:
            model_config = dataclasses.replace(
                _with_input_dim(cfg.model, cfg.features.n_mels), vocab_size=tokenizer.vocab_size,
                adversary=_with_speakers(cfg.model.adversary, speakers),
            )
            return LASModel(model_config, cfg.features, tokenizer)

        parts = build_asr_parts(cfg, make_model)
        self.load_final_lm(parts.model)
        self.split_sizes = {split: len(data) for split, data in parts.datasets.items()}
        return parts

    def train_step(self, model: nn.Module, batch: Batch) -> dict[str, Any]:
        """Joint CTC/attention loss of one batch, with its parts and the scheduled-sampling probability (and
        the speaker adversary's loss and accuracy when it is on)."""
        out = model(batch["wave"], batch["wave_lengths"], batch["tokens"], batch["token_lengths"],
                    speakers=batch.get("speakers"))
        logged = {"loss": out.loss, "ctc_loss": out.ctc_loss, "att_loss": out.att_loss, "sampling_prob": out.sampling_prob}
        if out.adversary_loss is not None:
            logged.update(adversary_loss=out.adversary_loss, adversary_accuracy=out.adversary_accuracy)
        return logged

    def eval_records(self, model: nn.Module, batch: Batch) -> list[dict[str, Any]]:
        """Per utterance: reference, greedy hypothesis, losses and attention scores; the first carries its map."""
        out = model(batch["wave"], batch["wave_lengths"], batch["tokens"], batch["token_lengths"])
        greedy = model.greedy_decode(out.encoder.memory, out.encoder.lengths)
        target_lengths = batch["token_lengths"] + 1
        scores = alignment_scores(out.attention, target_lengths, out.encoder.lengths)
        tokenizer = model.tokenizer
        records = []
        for i, utt in enumerate(batch["ids"]):
            ref_ids = batch["tokens"][i, : int(batch["token_lengths"][i])].tolist()
            records.append({
                "id": utt, "ref": tokenizer.decode(ref_ids), "hyp": tokenizer.decode(greedy.tokens[i]),
                "loss": float(out.utterance_loss[i]), "focus": float(scores.focus[i]),
                "diagonality": float(scores.diagonality[i]),
            })
        if records:
            steps, frames = int(target_lengths[0]), int(out.encoder.lengths[0])
            records[0]["attention"] = out.attention[0, :steps, :frames].float().cpu().numpy()
        return records

    def summarize(self, records: list[dict[str, Any]], split: str) -> EvalResult:
        """Corpus WER/CER, mean loss and attention scores, samples, and one attention map (also as PNG)."""
        records = sorted(records, key=lambda r: r["id"])
        rates = error_rates([r["ref"] for r in records], [r["hyp"] for r in records])
        metrics = {
            "loss": float(np.mean([r["loss"] for r in records])), "wer": rates.wer, "cer": rates.cer,
            "att_focus": float(np.mean([r["focus"] for r in records])),
            "att_diagonality": float(np.mean([r["diagonality"] for r in records])),
        }
        images = {}
        with_map = [r for r in records if "attention" in r]
        if with_map:
            name = f"attention/{with_map[0]['id']}"
            images[name] = with_map[0]["attention"]
            self._save_png(with_map[0], split)
        return EvalResult(metrics=metrics, images=images, texts={"samples": samples_table(records)})

    def _save_png(self, record: dict[str, Any], split: str) -> None:
        """Write ``{output_dir}/attention/{split}_{n:03d}_{id}.png`` (main process only)."""
        count = self.evaluations.get(split, 0)
        self.evaluations[split] = count + 1
        if not _is_main_process():
            return
        path = Path(self.config.output_dir) / "attention" / f"{split}_{count:03d}_{record['id']}.png"
        save_attention_png(record["attention"], path, f"{split} {record['id']}: {record['ref']}")

    def describe_data(self) -> str:
        """Corpus, language and utterances per split (after screening), for the model card."""
        data = self.config.data
        sizes = ", ".join(f"{k}: {v}" for k, v in getattr(self, "split_sizes", {}).items())
        what = f"the embedded synthetic corpus (size `{data.size}`)" if data.corpus == "embedded" else data.corpus
        return f"Trained on {what}, language `{data.lang}`, utterances per split after screening: {sizes}."
