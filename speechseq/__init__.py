"""speechseq: one encoder-decoder core for speech recognition, synthesis and translation.

>>> import speechseq
>>> model = speechseq.from_pretrained("runs/ctc/final")  # doctest: +SKIP
>>> speechseq.transcribe(model, ["utt.wav"])[0].text  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def from_pretrained(path_or_repo: Any, revision: str | None = None, token: str | None = None) -> Any:
    """Load any saved speechseq model (local folder or Hub repo id) as its own family; see ``speechseq.models``."""
    # Imported here so that ``import speechseq`` stays light (no torch until a model is asked for).
    from speechseq.models import from_pretrained as _from_pretrained

    return _from_pretrained(path_or_repo, revision=revision, token=token)


def transcribe(model: Any, inputs: Any, **kwargs: Any) -> Any:
    """Batched transcription of paths or arrays with a CTC or LAS model; see ``speechseq.inference.transcribe``."""
    from speechseq.inference import transcribe as _transcribe

    return _transcribe(model, inputs, **kwargs)
