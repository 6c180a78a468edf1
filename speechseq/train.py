"""The task-agnostic training loop: ``python -m speechseq.train task=NAME key=value ...``.

Also runs under ``accelerate launch -m speechseq.train ...`` and
``ACCELERATE_USE_CPU=1 torchrun --nproc_per_node 2 -m speechseq.train ...``. The loop knows no task: the
recipe (``speechseq.recipes``) builds model and data, computes a step's loss and scores an evaluation.

What one optimiser update does (``Trainer._update``): ``train.grad_accum`` batches, each forwarded and
checked before its backward pass. All processes agree on each batch's fate with one tiny all-reduce, so a
batch skipped on one rank is skipped on all (a one-sided skip would leave the others waiting in the gradient
all-reduce): an empty batch is skipped; a NaN/inf loss is skipped, counted and its utterance ids logged;
an out-of-memory error is retried as two halves, and a half that still does not fit is skipped. Then the
gradient norm is clipped (a non-finite norm skips the update), the optimiser and the LR schedule step.

Data order, augmentation, dropout and SpecAugment draw only from seeded, checkpointed sources, so a run
resumed from a checkpoint (``resume=true``) replays exactly the updates an uninterrupted run makes.
"""

from __future__ import annotations

import enum
import logging
import math
import sys
from pathlib import Path
from typing import Any, Iterator

import torch

from speechseq.checkpoint import CheckpointManager, ResumeError, TrainerState
from speechseq.config import RunConfig, TrainConfig, load_task_config, to_yaml
from speechseq.environment import record_start
from speechseq.errors import ConfigError, SpeechSeqError
from speechseq.recipes import get_recipe
from speechseq.recipes.base import Batch, EvalResult, Recipe, TaskParts
from speechseq.train_logging import RunLogger, setup_console_logging

logger = logging.getLogger("speechseq.train")

USAGE = """usage: python -m speechseq.train task=NAME [key=value ...]
       accelerate launch -m speechseq.train task=NAME [key=value ...]

Keys are dotted paths into the task config (e.g. train.lr=3e-4 model.encoder.num_layers=2);
config=PATH loads a YAML file instead of the packaged speechseq/configs/NAME.yaml;
print_config=true prints the merged config and exits; resume=true continues from the latest checkpoint.
"""


class TrainingDiverged(SpeechSeqError):
    """Too many consecutive batches with a non-finite loss or gradient."""


class BatchStatus(enum.IntEnum):
    """Fate of a batch, agreed over processes by taking the maximum."""

    OK = 0
    EMPTY = 1
    NONFINITE = 2
    OUT_OF_MEMORY = 3


def _is_oom(err: BaseException) -> bool:
    text = str(err).lower()
    return isinstance(err, torch.OutOfMemoryError) or "out of memory" in text or "can't allocate memory" in text


def to_device(batch: Batch, device: torch.device) -> Batch:
    """Move the tensors of a batch dict to ``device`` (other values unchanged)."""
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def split_batch(batch: Batch) -> list[Batch]:
    """Two halves of a batch: tensors and lists with one entry per utterance are cut along dim 0."""
    size = len(batch["ids"])
    half = size // 2

    def cut(value: Any, part: slice) -> Any:
        if torch.is_tensor(value) and value.dim() > 0 and value.size(0) == size:
            return value[part]
        if isinstance(value, list) and len(value) == size:
            return value[part]
        return value

    return [{k: cut(v, slice(0, half)) for k, v in batch.items()}, {k: cut(v, slice(half, size)) for k, v in batch.items()}]


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Multiplier of ``train.lr`` at update ``step`` (0-based): linear warm-up, then the chosen decay.

    >>> cfg = TrainConfig(max_steps=101, warmup_steps=10, schedule="cosine")
    >>> [round(lr_factor(s, cfg), 3) for s in (0, 9, 10, 55, 100)]
    [0.1, 1.0, 1.0, 0.5, 0.0]
    """
    warm = max(cfg.warmup_steps, 0)
    if step < warm:
        return (step + 1) / warm
    if cfg.schedule == "noam":  # inverse square root of the step, 1 at the end of warm-up
        return math.sqrt(max(warm, 1) / max(step, warm, 1))
    if cfg.schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warm) / max(1, cfg.max_steps - 1 - warm))
    decay = 0.5 * (1.0 + math.cos(math.pi * progress)) if cfg.schedule == "cosine" else 1.0 - progress
    return cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * decay


def build_accelerator(cfg: TrainConfig) -> Any:
    """An Accelerator with the configured precision; the loop does accumulation and scheduling itself."""
    from accelerate import Accelerator

    precision = {"none": "no", "bf16": "bf16", "fp16": "fp16"}[cfg.mixed_precision]
    if precision == "fp16" and not torch.cuda.is_available():
        raise ConfigError("train.mixed_precision: fp16 needs a GPU; use bf16 on CPU")
    # step_scheduler_with_optimizer=False: the schedule is defined per optimiser update, whatever the
    # number of processes (Accelerate would otherwise step it once per process).
    return Accelerator(mixed_precision=precision, step_scheduler_with_optimizer=False)


class Trainer:
    """One training run: owns the accelerator, model, optimiser, schedule, sampler, checkpoints and logs.

    >>> Trainer(load_task_config("ctc", ["output_dir=runs/x"])).fit()  # doctest: +SKIP
    {'validation': {'loss': ..., 'wer': ..., 'cer': ...}, 'test': {...}}
    """

    def __init__(self, config: RunConfig) -> None:
        from accelerate.utils import set_seed

        self.config = cfg = config
        self.tc = config.train
        if self.tc.num_threads:
            torch.set_num_threads(self.tc.num_threads)
        self.acc = build_accelerator(cfg.train)
        setup_console_logging(self.acc.is_main_process)
        self.output_dir = Path(cfg.output_dir)
        set_seed(cfg.seed)  # same initial weights on every process
        self.recipe: Recipe = get_recipe(cfg.task)(cfg)
        with self.acc.main_process_first():  # the main process fills the data caches first
            self.parts: TaskParts = self.recipe.build()
        if self.tc.init_from:
            initialise_from(self.parts.model, self.tc.init_from)
        # Different dropout/SpecAugment draws per process from here on (the weights are already equal).
        set_seed(cfg.seed + self.acc.process_index)
        trainable = freeze_parameters(self.parts.model, self.tc.freeze)
        optimizer = torch.optim.AdamW(trainable, lr=self.tc.lr, betas=self.tc.betas, weight_decay=self.tc.weight_decay)
        self.model, self.optimizer = self.acc.prepare(self.parts.model, optimizer)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, self.tc))
        self.acc.register_for_checkpointing(self.scheduler)
        self.sampler = self._sampler("train", shuffle=True)
        self.checkpoints = CheckpointManager(self.output_dir / "checkpoints", self.acc, self.tc.keep_last)
        self.state = TrainerState()
        self._synced = False  # whether the current update's synchronising backward has run

    # ------------------------------------------------------------------------------------------- data
    def _sampler(self, split: str, shuffle: bool) -> Any:
        from speechseq.data.sampler import BucketBatchSampler

        seconds = self.tc.batch_seconds if shuffle else self.tc.eval_batch_seconds
        return BucketBatchSampler(
            self.parts.durations[split], seconds, max_batch_size=self.tc.max_batch_size, shuffle=shuffle,
            seed=self.config.seed, num_replicas=self.acc.num_processes, rank=self.acc.process_index,
        )

    def _loader(self, split: str, sampler: Any, collator: Any, epoch: int) -> Iterator[Batch]:
        """Batches of ``split`` on the device. Sharding is done by the sampler, not by ``accelerator.prepare``."""
        from torch.utils.data import DataLoader

        # An explicit generator: otherwise creating the iterator draws a worker seed from the global torch
        # RNG, and a resumed run (which creates it at another moment) would shift its dropout stream.
        generator = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
        loader = DataLoader(
            self.parts.datasets[split], batch_sampler=sampler, collate_fn=collator,
            num_workers=self.tc.num_workers, generator=generator,
        )
        for batch in loader:
            yield to_device(batch, self.acc.device)

    # ----------------------------------------------------------------------------------- one update
    def _agree(self, status: BatchStatus) -> BatchStatus:
        if self.acc.num_processes == 1:
            return status
        flag = torch.tensor([int(status)], device=self.acc.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return BatchStatus(int(flag.item()))

    def _forward(self, batch: Batch) -> tuple[BatchStatus, dict[str, Any] | None]:
        """Run the recipe's step; report empty, non-finite or out-of-memory instead of raising."""
        if "ids" in batch and len(batch["ids"]) == 0:
            return BatchStatus.EMPTY, None
        try:
            with self.acc.autocast():
                out = self.recipe.train_step(self.model, batch)
        except (RuntimeError, torch.OutOfMemoryError) as err:
            if not _is_oom(err):
                raise
            return BatchStatus.OUT_OF_MEMORY, None
        finite = bool(torch.isfinite(out["loss"].detach()).all())
        return (BatchStatus.OK if finite else BatchStatus.NONFINITE), out

    def _backward(self, loss: torch.Tensor, sync: bool) -> None:
        if sync:
            self.acc.backward(loss)
            self._synced = True
        else:  # accumulate locally; the last backward of the update all-reduces the sum
            with self.acc.no_sync(self.model):
                self.acc.backward(loss)

    def _note_nonfinite(self, batch: Batch) -> None:
        from accelerate.utils import gather_object

        ids = gather_object(list(batch.get("ids", [])))
        self.state.nan_in_a_row += 1
        self.state.nan_total += 1
        logger.warning(
            "step %d: non-finite loss, batch skipped (%d in a row, %d in total); utterances: %s",
            self.state.step, self.state.nan_in_a_row, self.state.nan_total, ", ".join(map(str, ids)),
        )
        if self.state.nan_in_a_row > self.tc.max_nan_in_a_row:
            raise TrainingDiverged(
                f"training stopped at step {self.state.step}: {self.state.nan_in_a_row} batches in a row had a "
                f"non-finite loss or gradient (train.max_nan_in_a_row={self.tc.max_nan_in_a_row}); lower train.lr, "
                f"set train.clip_grad_norm, or check the utterances logged above"
            )

    def _run_batch(self, batch: Batch, weight: float, sync: bool, sums: dict[str, float], split: bool = False) -> int:
        """Forward + backward of one batch (or its halves after an OOM); returns the good pieces done."""
        status, out = self._forward(batch)
        status = self._agree(status)
        if status == BatchStatus.OUT_OF_MEMORY:
            out = None
            if self.acc.device.type == "cuda":
                torch.cuda.empty_cache()
            self.state.oom_total += 1
            if split or len(batch["ids"]) < 2:
                logger.warning("step %d: out of memory on a batch of %d, skipped", self.state.step, len(batch["ids"]))
                return 0
            logger.warning("step %d: out of memory on a batch of %d, retrying in halves", self.state.step, len(batch["ids"]))
            halves = split_batch(batch)
            done = self._run_batch(halves[0], weight / 2, False, sums, split=True)
            return done + self._run_batch(halves[1], weight / 2, sync, sums, split=True)
        if status == BatchStatus.EMPTY:
            return 0
        if status == BatchStatus.NONFINITE:
            self._note_nonfinite(batch)
            return 0
        self.state.nan_in_a_row = 0
        self._backward(out["loss"] * weight, sync)
        for key, value in out.items():
            sums[key] = sums.get(key, 0.0) + float(value.detach() if torch.is_tensor(value) else value)
        return 1

    def _sync_grads_manually(self) -> None:
        """All-reduce (mean) gradients when the update's last backward, the synchronising one, was skipped."""
        if self.acc.num_processes > 1:
            for param in self.model.parameters():
                if param.grad is not None:
                    torch.distributed.all_reduce(param.grad, op=torch.distributed.ReduceOp.SUM)
                    param.grad /= self.acc.num_processes

    def _update(self, group: list[Batch]) -> dict[str, float] | None:
        """One optimiser update from ``group`` (``grad_accum`` batches): its scalars (the recipe's, averaged over
        the good batches, plus lr and grad_norm), or ``None`` when nothing was applied."""
        self.model.train()
        sums: dict[str, float] = {}
        good, self._synced = 0, False
        for i, batch in enumerate(group):
            good += self._run_batch(batch, 1.0 / len(group), sync=i == len(group) - 1, sums=sums)
        if good and not self._synced:  # the synchronising backward (last batch or half) was skipped
            self._sync_grads_manually()
        if not good:
            self.optimizer.zero_grad(set_to_none=True)
            return None
        max_norm = self.tc.clip_grad_norm if self.tc.clip_grad_norm is not None else math.inf
        grad_norm = float(self.acc.clip_grad_norm_(self.model.parameters(), max_norm))
        if not math.isfinite(grad_norm) and self.tc.mixed_precision != "fp16":  # fp16: the scaler skips it
            self.optimizer.zero_grad(set_to_none=True)
            self._note_nonfinite({"ids": [i for b in group for i in b.get("ids", [])]})
            return None
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return {**{k: v / good for k, v in sums.items()}, "lr": lr, "grad_norm": grad_norm}

    # ------------------------------------------------------------------------------------ evaluation
    def evaluate(self, split: str) -> EvalResult:
        """Evaluate ``split`` over all processes: records per rank, gathered, de-duplicated, summarised."""
        from accelerate.utils import gather_object

        model = self.acc.unwrap_model(self.model)
        model.eval()
        records: list[dict[str, Any]] = []
        with torch.no_grad(), self.acc.autocast():
            for batch in self._loader(split, self._sampler(split, shuffle=False), self.parts.eval_collator, 0):
                if len(batch.get("ids", [None])) > 0:  # every row of a batch can fail to decode
                    records.extend(self.recipe.eval_records(model, batch))
        if self.acc.num_processes > 1:
            records = gather_object(records)
        unique = {r.get("id", i): r for i, r in enumerate(records)}  # ranks pad with repeated batches
        model.train()
        return self.recipe.summarize(list(unique.values()), split)

    def _is_better(self, value: float) -> bool:
        best = self.state.best_metric
        if best is None:
            return True
        return value < best if self.tc.metric_mode == "min" else value > best

    def _evaluate_and_track(self, log: RunLogger) -> bool:
        """Evaluate ``train.eval_split``, update best/patience; returns whether the metric improved."""
        result = self.evaluate(self.tc.eval_split)
        if self.tc.metric not in result.metrics:
            raise ConfigError(
                f"train.metric: {self.tc.metric!r} is not reported by task {self.config.task!r}; "
                f"available: {', '.join(result.metrics)}"
            )
        value = float(result.metrics[self.tc.metric])
        improved = self._is_better(value)
        if improved:
            self.state.best_metric, self.state.best_step = value, self.state.step
            self.state.evals_without_improvement = 0
        else:
            self.state.evals_without_improvement += 1
        log.evaluation(self.state.step, self.tc.eval_split, result, best=improved)
        return improved

    # ------------------------------------------------------------------------------------- the loop
    def _resume(self) -> None:
        latest = self.checkpoints.latest()
        if latest is None:
            logger.warning("resume=true but %s holds no complete checkpoint: starting from scratch",
                           self.checkpoints.root)
            return
        self.state = self.checkpoints.load(latest)
        try:
            self.sampler.load_state_dict(self.state.sampler)
        except ConfigError as err:
            raise ResumeError(f"{latest}: the data or batching changed since this checkpoint: {err}") from err
        logger.info("resumed from %s (step %d, epoch %d, batch %d of the epoch)", latest, self.state.step,
                    self.state.epoch, self.state.batches_in_epoch)

    def _save_checkpoint(self) -> None:
        self.state.sampler = self.sampler.state_dict(consumed=self.state.batches_in_epoch)
        path = self.checkpoints.save(self.state)
        logger.info("step %d: checkpoint %s", self.state.step, path)

    def _groups(self) -> Iterator[list[Batch]]:
        """Groups of ``grad_accum`` batches, epoch after epoch, starting at the saved position."""
        tc, state = self.tc, self.state
        while tc.max_epochs is None or state.epoch < tc.max_epochs:
            self.sampler.set_epoch(state.epoch)
            if hasattr(self.parts.train_collator, "set_epoch"):
                self.parts.train_collator.set_epoch(state.epoch)
            group: list[Batch] = []
            for batch in self._loader("train", self.sampler, self.parts.train_collator, state.epoch):
                group.append(batch)
                if len(group) == tc.grad_accum:
                    yield group
                    group = []
            if group:
                yield group
            state.epoch += 1
            state.batches_in_epoch = 0

    def _after_update(self, scalars: dict[str, float], log: RunLogger) -> bool:
        """Log, evaluate and checkpoint as configured after update ``state.step``; True to stop early."""
        step, tc = self.state.step, self.tc
        log.step(step, scalars, to_tensorboard=step % max(tc.log_every, 1) == 0)
        improved = evaluated = False
        if tc.eval_every > 0 and step % tc.eval_every == 0:
            evaluated = True
            improved = self._evaluate_and_track(log)
        periodic = tc.checkpoint_every > 0 and step % tc.checkpoint_every == 0
        # The best model must have a checkpoint to return to; with checkpoint_every=0, every evaluation saves.
        if periodic or (evaluated and (improved or tc.checkpoint_every == 0)):
            self._save_checkpoint()
        if tc.patience > 0 and self.state.evals_without_improvement >= tc.patience:
            logger.info("early stop at step %d: %s has not improved for %d evaluations (best %.4g at step %s)",
                        step, tc.metric, tc.patience, self.state.best_metric, self.state.best_step)
            return True
        return False

    def _train(self, log: RunLogger) -> None:
        if self.state.step >= self.tc.max_steps:  # resumed from the end of a finished run
            return
        for group in self._groups():
            scalars = self._update(group)
            # Position counts consumed batches, applied or skipped, so a resume never repeats them.
            self.state.batches_in_epoch += len(group)
            if scalars is None:
                continue
            self.state.step += 1
            if self._after_update(scalars, log) or self.state.step >= self.tc.max_steps:
                return

    def _finish(self, log: RunLogger) -> dict[str, dict[str, float]]:
        """Final checkpoint, reload of the best one, evaluation of every split, metrics.json and export."""
        tc = self.tc
        if tc.load_best_at_end and tc.eval_every > 0 and self.state.step % tc.eval_every and self.state.step > 0:
            # The last updates were never evaluated: let the final weights compete with the best evaluated
            # ones, or a run whose max_steps is no multiple of eval_every throws its last updates away.
            self._evaluate_and_track(log)
        latest = self.checkpoints.latest()
        if latest is None or latest.name != f"step_{self.state.step}":
            self._save_checkpoint()
        best = self.checkpoints.root / f"step_{self.state.best_step}"
        if self.tc.load_best_at_end and self.state.best_step is not None and best.is_dir():
            logger.info("loading the best checkpoint (step %d, %s %.4g)", self.state.best_step, self.tc.metric,
                        self.state.best_metric)
            self.checkpoints.load(best)
        metrics = {}
        for split in self.parts.eval_splits:
            result = self.evaluate(split)
            if self.acc.is_main_process:  # metrics.json and the model card are written there only
                unwrapped = self.acc.unwrap_model(self.model)
                result.metrics.update(self.recipe.final_metrics(unwrapped, split, self.parts.datasets[split]))
            log.evaluation(self.state.step, split, result)
            metrics[split] = result.metrics
        log.write_metrics(metrics)
        if self.acc.is_main_process:
            final = self.recipe.save_final(self.acc.unwrap_model(self.model), self.output_dir / "final", metrics)
            logger.info("final model: %s (load with speechseq.from_pretrained)", final)
        self.acc.wait_for_everyone()
        return metrics

    def fit(self) -> dict[str, dict[str, float]]:
        """Train (resuming if asked), then evaluate every evaluation split; returns ``{split: metrics}``."""
        if self.config.resume:
            self._resume()
        log = RunLogger(self.output_dir, self.acc.is_main_process, self.tc.max_steps, self.state.step,
                        progress=self.tc.progress, tensorboard=self.tc.tensorboard)
        log.write_config(to_yaml(self.config))
        if self.acc.is_main_process:
            resumed = self.config.resume and self.state.step > 0
            differences = record_start(self.output_dir, self.state.step, resumed)
            if differences:  # the continuation will not be the uninterrupted run's, bit for bit
                logger.warning("resumed on another environment than the last start (%s): from here the run "
                               "is not bit-identical to an uninterrupted one", "; ".join(differences))
        try:
            self._train(log)
            return self._finish(log)
        finally:
            log.close()


def train(config: RunConfig) -> dict[str, dict[str, float]]:
    """Run a whole training from a validated config; returns the final ``{split: {metric: value}}``."""
    return Trainer(config).fit()


def initialise_from(model: torch.nn.Module, path_or_repo: str) -> None:
    """Start ``model`` from the weights of a saved model (fine-tuning); every tensor must match (strict),
    but the model's training-only heads (``fresh_prefixes``) start fresh when the saved model has none."""
    from speechseq.hub import WEIGHTS_NAME, load_weights_strict, resolve_model_folder

    folder = resolve_model_folder(path_or_repo)
    fresh = model.fresh_prefixes() if hasattr(model, "fresh_prefixes") else ()
    load_weights_strict(model, folder / WEIGHTS_NAME, fresh=fresh)
    logger.info("initialised the model from %s", folder)


def _under(name: str, prefix: str) -> bool:
    """Whether parameter ``name`` lies in module ``prefix``, by whole name parts ("encoder.layer" is not
    "encoder.layers")."""
    return name == prefix or name.startswith(prefix.rstrip(".") + ".")


def freeze_parameters(model: torch.nn.Module, prefixes: list[str]) -> list[torch.nn.Parameter]:
    """Keep the parameters under the modules named by ``prefixes`` fixed; returns the trainable ones.

    Raises:
        ConfigError: a prefix names no parameter (a typo would otherwise freeze nothing, silently), or every
            parameter is frozen.
    """
    named = list(model.named_parameters())
    for prefix in prefixes:
        if not any(_under(name, prefix) for name, _ in named):
            roots = sorted({name.split(".")[0] for name, _ in named})
            raise ConfigError(f"train.freeze: {prefix!r} names no parameter of the model (its modules: {roots})")
    trainable = []
    for name, param in named:
        frozen = any(_under(name, prefix) for prefix in prefixes)
        param.requires_grad_(not frozen)
        if not frozen:
            trainable.append(param)
    if not trainable:
        raise ConfigError(f"train.freeze: {prefixes} freezes every parameter; nothing would train")
    if prefixes:
        logger.info("frozen: %s (%d of %d tensors still train)", ", ".join(prefixes), len(trainable), len(named))
    return trainable


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see ``USAGE``); returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        from speechseq.recipes import available_recipes

        print(USAGE + "\ntasks: " + ", ".join(available_recipes()))
        rest = [a for a in args if a not in ("-h", "--help")]
        if any(a.startswith(("task=", "config=")) for a in rest):
            print("\nmerged config:\n\n" + to_yaml(load_task_config(None, rest)))
        return 0
    try:
        config = load_task_config(None, args)
        if config.print_config:
            print(to_yaml(config), end="")
            return 0
        train(config)
    except SpeechSeqError as err:
        logging.getLogger("speechseq").error("%s: %s", type(err).__name__, err)
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
