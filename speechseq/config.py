"""Configs: plain YAML mapped 1:1 onto dataclasses, strictly, plus the run/loop settings every task shares.

A task config is one dataclass tree (a subclass of :class:`RunConfig`); its YAML file holds the same keys.
``from_dict`` refuses unknown keys (naming the dotted path, the valid keys and the closest match) and values of
the wrong type, so a typo in ``train.lr`` never silently trains with the default. Command-line overrides
(``a.b.c=value``) are parsed by OmegaConf, which turns ``1e-3`` into a float and ``[2,2]`` into a list; note
that YAML 1.1 also reads ``yes``/``no``/``on``/``off`` as booleans.

>>> @dataclasses.dataclass
... class Opt:
...     lr: float = 1e-3
...     betas: tuple[float, float] = (0.9, 0.98)
>>> from_dict(Opt, {"lr": 2, "betas": [0.8, 0.9]})
Opt(lr=2.0, betas=(0.8, 0.9))
>>> from_dict(Opt, {"lrr": 1})
Traceback (most recent call last):
...
speechseq.errors.ConfigError: unknown key 'lrr' (did you mean 'lr'?); valid keys: betas, lr
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.resources
import types
import typing
from pathlib import Path
from typing import Any, Literal, Mapping, TypeVar

import yaml

from speechseq.errors import ConfigError

T = TypeVar("T")


# ----------------------------------------------------------------------------------------------------------
# Settings shared by every task
# ----------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class TrainConfig:
    """Settings of the task-agnostic training loop (``train.*`` in every task YAML).

    Attributes:
        max_steps: optimiser updates to run (one update = ``grad_accum`` batches).
        max_epochs: stop earlier after this many passes over the training data (``null`` = no limit).
        lr: peak learning rate (AdamW).
        weight_decay: AdamW decoupled weight decay.
        betas: AdamW betas.
        schedule: decay after warm-up: ``constant``, ``linear`` (to 0), ``cosine`` (to ``min_lr_ratio``) or
            ``noam`` (inverse square root of the step, as in the Transformer paper).
        warmup_steps: linear warm-up from 0 to ``lr``.
        min_lr_ratio: floor of the cosine decay, as a fraction of ``lr``.
        grad_accum: batches whose gradients are summed before one update.
        clip_grad_norm: clip the global gradient norm to this (``null`` = no clipping; the norm is logged anyway).
        mixed_precision: ``none``, ``bf16`` or ``fp16`` (fp16 needs a GPU; bf16 works on recent CPUs).
        batch_seconds: audio seconds per training batch (per process), for the length-bucketed sampler.
        max_batch_size: cap on utterances per batch.
        eval_batch_seconds: audio seconds per evaluation batch.
        num_workers: DataLoader worker processes (0 = load in the main process).
        num_threads: torch intra-op threads per process (``null`` = torch's default, one per core). On a CPU
            shared with other jobs, 1 avoids the thread oversubscription that can slow training tenfold.
        eval_every: evaluate every N updates (0 = only at the end).
        eval_split: split evaluated during training (checkpoint selection, early stopping).
        metric: metric of ``eval_split`` that selects the best checkpoint (e.g. ``wer`` or ``loss``).
        metric_mode: ``min`` or ``max``: which direction of ``metric`` is better.
        patience: stop after this many evaluations without improvement (0 = never stop early).
        checkpoint_every: save a checkpoint every N updates (0 = at every evaluation).
        keep_last: checkpoints kept besides the best one.
        load_best_at_end: reload the best checkpoint before the final evaluation and export.
        log_every: write scalars to TensorBoard every N updates.
        max_nan_in_a_row: stop when more consecutive batches than this have a NaN/inf loss or gradient.
        progress: show a tqdm progress bar (main process only).
        tensorboard: write TensorBoard event files under ``output_dir/tensorboard``.
        init_from: saved model folder (or Hub repo id) to fine-tune: the recipe keeps its tokenizer and the
            model starts from its weights, loaded strictly (``null`` = train from scratch).
        freeze: parameter-name prefixes kept fixed (e.g. ``[encoder.layers.0]`` keeps a pretrained first
            listener layer while the rest fine-tunes); a prefix that names no parameter is an error.
    """

    max_steps: int = 1000
    max_epochs: int | None = None
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.98)
    schedule: Literal["constant", "linear", "cosine", "noam"] = "cosine"
    warmup_steps: int = 100
    min_lr_ratio: float = 0.0
    grad_accum: int = 1
    clip_grad_norm: float | None = 5.0
    mixed_precision: Literal["none", "bf16", "fp16"] = "none"
    batch_seconds: float = 60.0
    max_batch_size: int = 64
    eval_batch_seconds: float = 120.0
    num_workers: int = 0
    num_threads: int | None = None
    eval_every: int = 200
    eval_split: str = "validation"
    metric: str = "loss"
    metric_mode: Literal["min", "max"] = "min"
    patience: int = 0
    checkpoint_every: int = 0
    keep_last: int = 2
    load_best_at_end: bool = True
    log_every: int = 10
    max_nan_in_a_row: int = 10
    progress: bool = True
    tensorboard: bool = True
    init_from: str | None = None
    freeze: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class RunConfig:
    """Top level of every task config; a recipe's config subclasses it and adds ``data``, ``model``, ...

    Attributes:
        task: recipe name in :mod:`speechseq.recipes` (``ctc``, ``las``, ``lm``, ...).
        output_dir: run folder: checkpoints, ``config.yaml``, ``metrics.json``, TensorBoard, ``final/``.
        seed: seed of everything (weights, data order, augmentation, dropout).
        resume: continue from the latest complete checkpoint in ``output_dir/checkpoints``.
        print_config: print the merged config and exit.
        train: the loop settings.
    """

    task: str = ""
    output_dir: str = "runs/default"
    seed: int = 0
    resume: bool = False
    print_config: bool = False
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)


# ----------------------------------------------------------------------------------------------------------
# dict <-> dataclass
# ----------------------------------------------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _join(path: str, key: str | int) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else str(key))


def _convert(tp: Any, value: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert containers (list -> tuple, dict -> dataclass)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping for {tp.__name__}, got {type(value).__name__}")
        return from_dict(tp, value, path)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        if len(options) == 1 and (dataclasses.is_dataclass(options[0]) or typing.get_origin(options[0])):
            return _convert(options[0], value, path)  # the inner error names the nested key at fault
        for option in options:
            try:
                return _convert(option, value, path)
            except ConfigError:
                continue
        raise ConfigError(f"{path}: expected {_type_name(tp)}, got {type(value).__name__} ({value!r})")
    if origin is Literal:
        if value not in args:
            # YAML 1.1 (and so OmegaConf) reads a bare no/off/yes/on as a boolean.
            hint = " (YAML reads no/off/yes/on as booleans)" if isinstance(value, bool) else ""
            raise ConfigError(f"{path}: expected one of {', '.join(map(repr, args))}, got {value!r}{hint}")
        return value
    if origin in (list, tuple):
        return _convert_sequence(tp, value, path)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__} ({value!r})")
        return {str(k): _convert(args[1] if args else Any, v, _join(path, str(k))) for k, v in value.items()}
    return _convert_scalar(tp, value, path)


def _convert_sequence(tp: Any, value: Any, path: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{path}: expected {_type_name(tp)} (a list), got {type(value).__name__} ({value!r})")
    if origin is list:
        return [_convert(args[0] if args else Any, v, _join(path, i)) for i, v in enumerate(value)]
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_convert(args[0], v, _join(path, i)) for i, v in enumerate(value))
    if args and len(args) != len(value):
        raise ConfigError(f"{path}: expected {len(args)} items ({_type_name(tp)}), got {len(value)}")
    return tuple(_convert(a, v, _join(path, i)) for i, (a, v) in enumerate(zip(args or [Any] * len(value), value)))


def _convert_scalar(tp: Any, value: Any, path: str) -> Any:
    # bool is a subclass of int: refuse it where a number is expected, and refuse 0/1 where a bool is.
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is Path and isinstance(value, (str, Path)):
        return Path(value)
    if isinstance(tp, type) and isinstance(value, tp) and not (isinstance(value, bool) and tp is not bool):
        return value
    raise ConfigError(f"{path or 'value'}: expected {_type_name(tp)}, got {type(value).__name__} ({value!r})")


def _unknown_key_error(cls: type, key: str, path: str, valid: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    hint = f" (did you mean '{_join(path, close[0])}'?)" if close else ""
    where = f" of {path}" if path else ""
    return ConfigError(f"unknown key '{_join(path, key)}'{hint}; valid keys{where}: {', '.join(sorted(valid))}")


def _field_default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def from_dict(cls: type[T], mapping: Mapping[str, Any], path: str = "") -> T:
    """Build the dataclass ``cls`` from a (nested) mapping, strictly.

    Args:
        cls: a dataclass type; nested dataclass fields take nested mappings.
        mapping: values by field name; missing fields keep their defaults.
        path: dotted prefix used in error messages (``train`` gives ``train.lr``).

    Raises:
        ConfigError: an unknown key (with the valid keys and the closest match) or a value of the wrong type.
    """
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in mapping.items():
        if key not in fields:
            raise _unknown_key_error(cls, str(key), path, list(fields))
        default = _field_default(fields[key])
        if dataclasses.is_dataclass(default) and isinstance(value, Mapping):
            # A partial mapping updates the field's own default (e.g. FeatureConfig.asr_16k()), not the
            # bare class defaults, so `features: {n_mels: 40}` keeps the 16 kHz preset.
            value = merge_dicts(to_dict(default), value)
        kwargs[key] = _convert(hints[key], value, _join(path, key))
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:  # a __post_init__ check, or a required field left out
        raise ConfigError(f"{path or cls.__name__}: {err}") from err


def to_dict(obj: Any) -> Any:
    """Dataclass (tree) -> plain dict of YAML/JSON-safe values (tuples become lists, Paths strings)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Mapping):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def to_yaml(obj: Any) -> str:
    """Dataclass (tree) -> YAML text in field order."""
    return yaml.safe_dump(to_dict(obj), sort_keys=False, default_flow_style=None)


# ----------------------------------------------------------------------------------------------------------
# Task configs: packaged YAML + overrides
# ----------------------------------------------------------------------------------------------------------


def packaged_config_path(task: str) -> Path:
    """Path of ``speechseq/configs/{task}.yaml`` inside the installed package."""
    path = Path(str(importlib.resources.files("speechseq") / "configs" / f"{task}.yaml"))
    if not path.is_file():
        available = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise ConfigError(f"no packaged config for task {task!r} ({path}); available: {', '.join(available)}")
    return path


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping (an empty file is an empty mapping)."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read config: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping, got {type(data).__name__}")
    return data


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=[2,2]"]`` -> nested dict with YAML-typed values (via OmegaConf)."""
    from omegaconf import OmegaConf  # only the command line needs it

    for item in overrides:
        if "=" not in item or item.startswith("="):
            raise ConfigError(f"override {item!r} is not of the form key=value (e.g. train.lr=3e-4)")
    return OmegaConf.to_container(OmegaConf.from_dotlist(list(overrides)), resolve=True)  # type: ignore[return-value]


def merge_dicts(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive merge of mappings; values of ``update`` win, mappings merge key by key."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_dicts(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def load_task_config(task: str | None = None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Load a task's config: packaged YAML (or ``config=path``), then ``key=value`` overrides, validated.

    Args:
        task: recipe name; may also come from ``task=NAME`` among the overrides or from the YAML file.
        overrides: ``a.b.c=value`` strings (``config=path.yaml`` picks a YAML file instead of the packaged one).

    Returns:
        An instance of the recipe's config dataclass (a :class:`RunConfig` subclass).

    >>> cfg = load_task_config("ctc", ["train.lr=3e-4", "train.max_steps=5"])
    >>> cfg.train.lr, cfg.train.max_steps, cfg.task
    (0.0003, 5, 'ctc')
    """
    from speechseq.recipes import get_recipe  # the registry imports recipe modules lazily

    values = parse_overrides(list(overrides))
    config_file = values.pop("config", None)
    base = load_yaml(config_file) if config_file is not None else {}
    task = values.get("task") or task or base.get("task")
    if not task:
        where = f"{config_file} names no task" if config_file else "no task given"
        raise ConfigError(f"{where}: pass task=NAME (e.g. task=ctc) or config=path/to/config.yaml")
    config_class = get_recipe(task).config_class  # first: an unknown task is named as such
    if config_file is None and ":" not in task:  # module:Class recipes start from their dataclass defaults
        base = load_yaml(packaged_config_path(task))
    merged = merge_dicts(base, values)
    merged["task"] = task
    return from_dict(config_class, merged)
