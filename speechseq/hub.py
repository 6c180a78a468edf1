"""Saving, loading and publishing models: one thin base class on ``huggingface_hub`` + ``safetensors``.

A saved model is a folder (local, or a Hub repo) holding::

    config.json          {"family", "speechseq_version", "config", "feature_config", "has_tokenizer"}
    model.safetensors    the state dict (shared tensors de-duplicated by safetensors)
    tokenizer.json       (+ any file the tokenizer writes) when the model has a tokenizer
    README.md            a model card: training data, configs, measured metrics, usage

Loading is strict: a missing or unexpected weight, or a shape mismatch, raises :class:`CheckpointError`
naming the keys. :func:`speechseq.models.from_pretrained` reads ``family`` and returns the right class.
Why not ``PyTorchModelHubMixin``: see docs/training.md ("Hub").
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from torch import nn

from speechseq.config import from_dict, to_dict, to_yaml
from speechseq.errors import SpeechSeqError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
TOKENIZER_NAME = "tokenizer.json"
CARD_NAME = "README.md"

M = TypeVar("M", bound="PretrainedModel")


class CheckpointError(SpeechSeqError):
    """A saved model that cannot be loaded: missing files, wrong family, or weights that do not match."""


class HubError(SpeechSeqError):
    """A model name that is neither a local folder nor a reachable Hub repository."""


class SavableTokenizer(Protocol):
    """What the hub needs of a tokenizer (every tokenizer in :mod:`speechseq.text` has it)."""

    def save(self, directory: str | Path) -> None: ...


@dataclasses.dataclass
class ModelCardInfo:
    """What the generated model card says beyond the model's own configs.

    Attributes:
        training_data: a sentence or two on the data (corpus, size, language, splits).
        metrics: measured results as ``{split: {metric: value}}`` (the run's ``metrics.json``).
        train_config: the merged run config (shown folded in the card).
        description: free text put under the title.
        tags: extra Hub tags.
    """

    training_data: str = ""
    metrics: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    train_config: dict[str, Any] = dataclasses.field(default_factory=dict)
    description: str = ""
    tags: list[str] = dataclasses.field(default_factory=list)


class PretrainedModel(nn.Module):
    """Base of every model family: built from one config dataclass (+ feature config + tokenizer).

    A family sets ``family`` (its registry name) and ``config_class``, and its constructor takes
    ``(config, feature_config=None, tokenizer=None)`` and calls ``super().__init__`` with them first.

    >>> import dataclasses, tempfile
    >>> @dataclasses.dataclass
    ... class TinyConfig:
    ...     size: int = 3
    >>> class Tiny(PretrainedModel):
    ...     family, config_class = "tiny-doc", TinyConfig
    ...     def __init__(self, config, feature_config=None, tokenizer=None):
    ...         super().__init__(config, feature_config, tokenizer)
    ...         self.proj = nn.Linear(config.size, 1)
    >>> folder = Tiny(TinyConfig()).save_pretrained(tempfile.mkdtemp())
    >>> Tiny.from_pretrained(folder).config
    TinyConfig(size=3)
    """

    family: ClassVar[str] = ""
    config_class: ClassVar[type] = object

    def fresh_prefixes(self) -> tuple[str, ...]:
        """Modules that fine-tuning (``train.init_from``) may start from fresh weights when the pretrained
        file lacks them: training-only heads such as a speaker adversary. None by default."""
        return ()

    def __init__(self, config: Any, feature_config: Any = None, tokenizer: SavableTokenizer | None = None):
        super().__init__()
        self.config = config
        self.feature_config = feature_config
        self.tokenizer = tokenizer

    # ------------------------------------------------------------------------------------------ saving
    def saved_config(self) -> dict[str, Any]:
        """The ``config.json`` content: family, model config, feature config, tokenizer flag."""
        from speechseq import __version__

        return {
            "family": self.family,
            "speechseq_version": __version__,
            "config": to_dict(self.config),
            "feature_config": to_dict(self.feature_config) if self.feature_config is not None else None,
            "has_tokenizer": self.tokenizer is not None,
        }

    def save_pretrained(self, directory: str | Path, card: ModelCardInfo | None = None) -> Path:
        """Write config, safetensors weights, tokenizer and model card into ``directory``; returns it."""
        from safetensors.torch import save_model

        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        saved = self.saved_config()
        (folder / CONFIG_NAME).write_text(json.dumps(saved, indent=2) + "\n")
        save_model(self, str(folder / WEIGHTS_NAME), metadata={"format": "pt", "family": self.family})
        if self.tokenizer is not None:
            self.tokenizer.save(folder)
        (folder / CARD_NAME).write_text(render_model_card(saved, card or ModelCardInfo()))
        return folder

    def push_to_hub(
        self,
        repo_id: str,
        card: ModelCardInfo | None = None,
        private: bool | None = None,
        token: str | None = None,
        commit_message: str = "Upload speechseq model",
    ) -> str:
        """Save into a temporary folder and upload it to the Hub repo ``repo_id`` (created if needed).

        Returns:
            The commit URL reported by the Hub.
        """
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp, card=card)
            return push_folder(tmp, repo_id, private=private, token=token, commit_message=commit_message)

    # ------------------------------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls: type[M], path_or_repo: str | Path, revision: str | None = None, token: str | None = None
    ) -> M:
        """Load a saved model of this family strictly, in eval mode, on CPU.

        Raises:
            CheckpointError: wrong family, missing file, missing/unexpected weight or shape mismatch.
            HubError: ``path_or_repo`` is no local folder and cannot be fetched (e.g. ``HF_HUB_OFFLINE=1``).
        """
        folder = resolve_model_folder(path_or_repo, revision=revision, token=token)
        saved = read_saved_config(folder)
        if saved["family"] != cls.family:
            raise CheckpointError(f"{folder}: holds a {saved['family']!r} model, not {cls.family!r} ({cls.__name__})")
        config = from_dict(cls.config_class, saved["config"], path="config")
        feature_config = _load_feature_config(saved.get("feature_config"))
        tokenizer = _load_tokenizer(folder) if saved.get("has_tokenizer") else None
        model = cls(config, feature_config, tokenizer)
        load_weights_strict(model, folder / WEIGHTS_NAME)
        return model.eval()


def push_folder(
    folder: str | Path,
    repo_id: str,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str = "Upload speechseq model",
) -> str:
    """Upload a saved model folder (e.g. a run's ``final/``, model card included) to the Hub repo ``repo_id``.

    Returns:
        The commit URL reported by the Hub.
    """
    from huggingface_hub import HfApi

    read_saved_config(Path(folder))  # refuse to publish something that would not load
    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message=commit_message)
    return str(getattr(info, "commit_url", info))


def _load_feature_config(values: dict[str, Any] | None) -> Any:
    if values is None:
        return None
    from speechseq.features import FeatureConfig

    return from_dict(FeatureConfig, values, path="feature_config")


def _load_tokenizer(folder: Path) -> Any:
    if not (folder / TOKENIZER_NAME).is_file():
        raise CheckpointError(f"{folder}: config.json says the model has a tokenizer but {TOKENIZER_NAME} is missing")
    from speechseq.text import load_tokenizer

    return load_tokenizer(folder)


def load_weights_strict(model: nn.Module, path: Path, fresh: tuple[str, ...] = ()) -> None:
    """Load a safetensors file into ``model``; any missing/unexpected key or shape mismatch is an error,
    except keys missing under the modules named in ``fresh`` (those keep their initial weights)."""
    from safetensors.torch import load_model

    if not path.is_file():
        raise CheckpointError(f"{path}: weights file not found")
    try:
        missing, unexpected = load_model(model, str(path), strict=False)
    except RuntimeError as err:  # size mismatches are raised even when strict=False
        raise CheckpointError(f"{path}: weights do not fit the model: {err}") from err
    missing = [key for key in missing if not any(key.startswith(prefix + ".") for prefix in fresh)]
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: weights do not match {type(model).__name__}: missing {sorted(missing)}, "
            f"unexpected {sorted(unexpected)}"
        )


def read_saved_config(folder: Path) -> dict[str, Any]:
    """Read and check ``config.json`` of a saved model folder."""
    path = folder / CONFIG_NAME
    try:
        saved = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: not a speechseq model folder ({err})") from err
    for key in ("family", "config"):
        if key not in saved:
            raise CheckpointError(f"{path}: key {key!r} is missing; is this a speechseq model?")
    return saved


def _offline() -> bool:
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
    return flag or bool(constants.HF_HUB_OFFLINE)


def _looks_local(name: str) -> bool:
    # A Hub id is "name" or "owner/name"; anything path-like that does not exist is a local mistake.
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name or os.path.exists(name)


def resolve_model_folder(path_or_repo: str | Path, revision: str | None = None, token: str | None = None) -> Path:
    """A local model folder as is, or a Hub repo downloaded into the cache (cache only when offline)."""
    name = str(path_or_repo)
    local = Path(name).expanduser()
    if local.is_dir():
        return local
    if isinstance(path_or_repo, Path) or _looks_local(name):
        raise HubError(f"{name}: no such model folder")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError

    offline = _offline()
    try:
        return Path(snapshot_download(name, revision=revision, token=token, local_files_only=offline))
    except LocalEntryNotFoundError as err:
        why = "HF_HUB_OFFLINE=1 is set and it is not in the local Hugging Face cache" if offline else str(err)
        raise HubError(f"{name!r} is not a local folder and cannot be fetched from the Hub: {why}") from err
    except (HfHubHTTPError, HFValidationError, OSError) as err:
        raise HubError(f"{name!r} is not a local folder and cannot be fetched from the Hub: {err}") from err


# ---------------------------------------------------------------------------------------------- model card


def _metrics_table(metrics: dict[str, dict[str, float]]) -> str:
    names = sorted({m for values in metrics.values() for m in values})
    if not names:
        return "No evaluation was recorded.\n"
    lines = ["| split | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for split, values in metrics.items():
        cells = [f"{values[m]:.4g}" if m in values else "" for m in names]
        lines.append(f"| {split} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render_model_card(saved: dict[str, Any], card: ModelCardInfo) -> str:
    """Markdown model card with Hub metadata: title, data, metrics table, usage, configs."""
    from huggingface_hub import ModelCardData

    family = saved["family"]
    data = ModelCardData(library_name="speechseq", tags=["speechseq", family, *card.tags])
    sections = [
        f"---\n{data.to_yaml()}\n---\n",
        f"# speechseq `{family}` model\n",
        card.description + "\n" if card.description else "",
        "## Training data\n\n" + (card.training_data or "Not recorded.") + "\n",
        "## Results\n\n" + _metrics_table(card.metrics),
        "## Usage\n\n```python\nimport speechseq\n\nmodel = speechseq.from_pretrained(\"PATH_OR_REPO\")\n```\n",
        "## Model config\n\n```yaml\n" + to_yaml(saved["config"]) + "```\n",
    ]
    if saved.get("feature_config"):
        sections.append("## Feature config\n\n```yaml\n" + to_yaml(saved["feature_config"]) + "```\n")
    if card.train_config:
        sections.append(
            "## Training config\n\n<details><summary>merged run config</summary>\n\n```yaml\n"
            + to_yaml(card.train_config)
            + "```\n\n</details>\n"
        )
    return "\n".join(s for s in sections if s)

