"""Model families and the family registry behind ``speechseq.from_pretrained``.

Each family lives in one module of this package and derives from :class:`speechseq.hub.PretrainedModel`.
The registry maps the ``family`` name written in a saved ``config.json`` to ``"module:Class"`` and imports the
module only when that family is asked for, so loading a CTC model never imports the TTS code.
Adding a family is one line below (or :func:`register_family` from outside the package).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from speechseq.errors import SpeechSeqError

_FAMILIES: dict[str, str] = {
    "ctc": "speechseq.models.ctc:CTCModel",
    "las": "speechseq.models.las:LASModel",
    "lm": "speechseq.models.lm:RNNLM",
}


def register_family(name: str, target: str | type) -> None:
    """Register a model family: ``target`` is a class or ``"package.module:ClassName"``."""
    _FAMILIES[name] = target if isinstance(target, str) else f"{target.__module__}:{target.__qualname__}"


def available_families() -> list[str]:
    """Names of the registered model families."""
    return sorted(_FAMILIES)


def get_family(name: str) -> type:
    """The model class registered as ``name``.

    >>> get_family("ctc").__name__
    'CTCModel'
    """
    if name not in _FAMILIES:
        raise SpeechSeqError(f"unknown model family {name!r}; registered: {', '.join(available_families())}")
    module_name, _, class_name = _FAMILIES[name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def from_pretrained(path_or_repo: str | Path, revision: str | None = None, token: str | None = None):
    """Load any saved speechseq model (local folder or Hub repo) as its own family, strictly, in eval mode.

    >>> model = from_pretrained("runs/ctc/final")  # doctest: +SKIP
    >>> model.transcribe([wave])  # doctest: +SKIP
    """
    from speechseq.hub import read_saved_config, resolve_model_folder

    folder = resolve_model_folder(path_or_repo, revision=revision, token=token)
    family = get_family(read_saved_config(folder)["family"])
    return family.from_pretrained(folder)
