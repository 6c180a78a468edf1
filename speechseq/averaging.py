"""Weight averaging of saved models: checkpoint averaging and "model soups".

Two uses, one operation (the element-wise mean of every weight):

* **checkpoint averaging** (ESPnet's ``average_nbest_models``): the last or best few checkpoints of one run;
* **a uniform model soup** (Wortsman et al. 2022): models fine-tuned from the same pre-trained weights with
  different seeds land in one basin of the loss, and the mean of their weights behaves like an ensemble of
  them at the cost of one model.

Averaging is only meaningful for models of one architecture that share an origin (one run, or one
pre-trained start); the mean of two independently trained networks is usually worse than either.

::

    speechseq average --out runs/soup runs/a/final runs/b/final runs/c/final
    speechseq average --out runs/las/avg runs/las/final runs/las/checkpoints/step_600   # + a checkpoint
    speechseq average --out runs/las/avg --template runs/las/final runs/las/checkpoints/step_*   # checkpoints only
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch

from speechseq.hub import CONFIG_NAME, TOKENIZER_NAME, WEIGHTS_NAME, CheckpointError, ModelCardInfo, read_saved_config


def average_state_dicts(
    state_dicts: Sequence[dict[str, torch.Tensor]], weights: Sequence[float] | None = None
) -> dict[str, torch.Tensor]:
    """The weighted mean of state dicts with the same keys and shapes.

    Floating tensors are summed in float64 and cast back to their dtype (averaging copies of one model gives
    it back bit for bit); integer tensors (counters such as batches seen) get the floor of their plain mean.

    Args:
        state_dicts: two or more ``{name: tensor}``.
        weights: one non-negative weight per state dict (normalised here); ``None`` is uniform.

    Raises:
        CheckpointError: different keys or shapes (naming them), or bad weights.
    """
    if not state_dicts:
        raise CheckpointError("nothing to average: no state dicts given")
    weights = [1.0] * len(state_dicts) if weights is None else [float(w) for w in weights]
    if len(weights) != len(state_dicts) or min(weights) < 0 or sum(weights) <= 0:
        raise CheckpointError(f"averaging weights must be {len(state_dicts)} non-negative numbers, got {weights}")
    total = sum(weights)
    first = state_dicts[0]
    for index, other in enumerate(state_dicts[1:], start=1):
        if set(other) != set(first):
            raise CheckpointError(
                f"state dict {index} has other keys than state dict 0: missing {sorted(set(first) - set(other))}, "
                f"extra {sorted(set(other) - set(first))}"
            )
        for name, tensor in other.items():
            if tensor.shape != first[name].shape:
                raise CheckpointError(
                    f"{name}: shape {tuple(tensor.shape)} in state dict {index}, {tuple(first[name].shape)} in 0"
                )
    averaged = {}
    for name, tensor in first.items():
        if tensor.is_floating_point():
            mean = sum(w * sd[name].double() for w, sd in zip(weights, state_dicts)) / total
            averaged[name] = mean.to(tensor.dtype)
        else:
            averaged[name] = sum(sd[name] for sd in state_dicts) // len(state_dicts)
    return averaged


def _weights_file(source: Path) -> Path:
    path = source / WEIGHTS_NAME
    if not path.is_file():
        raise CheckpointError(f"{source}: no {WEIGHTS_NAME}; give saved model folders or training checkpoints")
    return path


def _check_same_model(template: Path, source: Path) -> None:
    """A saved model folder must have the template's configs and tokenizer (checkpoints carry neither)."""
    if not (source / CONFIG_NAME).is_file():
        return
    mine, theirs = read_saved_config(template), read_saved_config(source)
    for key in ("family", "config", "feature_config"):
        if mine.get(key) != theirs.get(key):
            raise CheckpointError(f"{source}: its {key} differs from {template}'s; only one architecture averages")
    tokenizers = [(folder / TOKENIZER_NAME) for folder in (template, source)]
    texts = [json.loads(path.read_text()) if path.is_file() else None for path in tokenizers]
    if texts[0] != texts[1]:
        raise CheckpointError(f"{source}: its tokenizer differs from {template}'s")


def average_models(
    sources: Sequence[str | Path],
    out: str | Path,
    weights: Sequence[float] | None = None,
    template: str | Path | None = None,
) -> Path:
    """Average the weights of ``sources`` into a new saved model folder ``out``; returns it.

    Args:
        sources: saved model folders of the template's config and tokenizer, or training checkpoints
            (``OUTPUT_DIR/checkpoints/step_N``, weights only) of the same architecture.
        out: folder to write (the template's config and tokenizer, averaged weights, a model card).
        weights: one weight per source; ``None`` is uniform.
        template: the saved model folder whose config and tokenizer the result takes (its weights are not
            averaged unless it is also a source); ``None`` takes the first source, which must then be one.

    Raises:
        CheckpointError: fewer than two sources, a folder without weights, another config or tokenizer, or
            weights that do not fit the template's model (the file and keys are named).
    """
    from speechseq.hub import load_weights_strict
    from speechseq.models import from_pretrained

    paths = [Path(s) for s in sources]
    if len(paths) < 2:
        raise CheckpointError(f"averaging needs two or more models, got {[str(p) for p in paths]}")
    template = Path(template) if template is not None else paths[0]
    model = from_pretrained(template)
    state_dicts = []
    for path in paths:
        _check_same_model(template, path)
        # Through the model, not the raw file: safetensors stores tied tensors once, the state dict names each.
        load_weights_strict(model, _weights_file(path))  # names the file and keys of a misfit
        state_dicts.append({name: tensor.clone() for name, tensor in model.state_dict().items()})
    model.load_state_dict(average_state_dicts(state_dicts, weights))
    listed = ", ".join(str(p) for p in paths)
    card = ModelCardInfo(description=f"Weight average of {len(paths)} models (weights {weights or 'uniform'}): {listed}.")
    return model.save_pretrained(out, card=card)
