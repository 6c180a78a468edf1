"""The ``speechseq`` command: train, show configs, list tasks, transcribe with a saved model, publish it.

::

    speechseq train task=ctc output_dir=runs/ctc train.max_steps=500
    speechseq config task=ctc model.encoder.num_layers=3      # the merged config, nothing run
    speechseq tasks                                           # registered tasks and model families
    speechseq transcribe --model runs/ctc/final a.wav b.flac  # --beam, --ctc-weight, --lm, --nbest, --stream ...
    speechseq evaluate --model runs/ctc/final --data embedded:test   # WER/CER as JSON
    speechseq average --out runs/soup runs/a/final runs/b/final   # weight average (checkpoints, model soups)
    speechseq push runs/ctc/final me/ctc-digits --private     # upload a saved folder to the Hub

Multi-process training goes through ``accelerate launch -m speechseq.train ...`` (see docs/training.md).
"""

from __future__ import annotations

import argparse
import sys

from speechseq.commands_asr import add_asr_commands
from speechseq.errors import SpeechSeqError


def _train(args: argparse.Namespace) -> int:
    from speechseq.train import main as train_main

    return train_main(args.overrides)


def _config(args: argparse.Namespace) -> int:
    from speechseq.train import main as train_main

    return train_main([*args.overrides, "print_config=true"])


def _tasks(args: argparse.Namespace) -> int:
    from speechseq.models import available_families
    from speechseq.recipes import available_recipes

    print("tasks (task=NAME):", ", ".join(available_recipes()))
    print("model families (speechseq.from_pretrained):", ", ".join(available_families()))
    return 0


def _push(args: argparse.Namespace) -> int:
    from speechseq.hub import push_folder

    url = push_folder(args.folder, args.repo_id, private=args.private or None)
    print(url)
    return 0


def _average(args: argparse.Namespace) -> int:
    from speechseq.averaging import average_models

    out = average_models(args.models, args.out, weights=args.weights, template=args.template)
    print(f"averaged {len(args.models)} models into {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Argument parser with one sub-command per action."""
    parser = argparse.ArgumentParser(prog="speechseq", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, help_text in (
        ("train", _train, "train a task: task=NAME key=value ..."),
        ("config", _config, "print the merged config of task=NAME key=value ..."),
    ):
        command = sub.add_parser(name, help=help_text)
        command.add_argument("overrides", nargs="*", help="task=NAME, config=PATH and key=value overrides")
        command.set_defaults(func=func)
    sub.add_parser("tasks", help="list tasks and model families").set_defaults(func=_tasks)
    add_asr_commands(sub)  # transcribe, evaluate, adapt
    average = sub.add_parser(
        "average", help="average the weights of saved models or checkpoints into a new model",
        description="Checkpoint averaging (several checkpoints of one run) or a uniform model soup (models "
                    "fine-tuned from one start with different seeds): the element-wise mean of every weight.")
    average.add_argument("models", nargs="+",
                         help="saved model folders (the first gives config and tokenizer) or checkpoints/step_N")
    average.add_argument("--template", default=None,
                         help="saved model folder whose config and tokenizer the result takes [the first model]")
    average.add_argument("--out", required=True, help="folder for the averaged model")
    average.add_argument("--weights", type=float, nargs="+", default=None, help="one weight per model [uniform]")
    average.set_defaults(func=_average)
    push = sub.add_parser("push", help="upload a saved model folder to the Hugging Face Hub")
    push.add_argument("folder", help="saved model folder (e.g. runs/ctc/final)")
    push.add_argument("repo_id", help="Hub repository, e.g. me/ctc-digits")
    push.add_argument("--private", action="store_true", help="create the repository as private")
    push.set_defaults(func=_push)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``speechseq`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SpeechSeqError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
