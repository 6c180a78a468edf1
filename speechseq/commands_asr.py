"""The ``speechseq transcribe``, ``evaluate`` and ``adapt`` commands (added to the CLI by ``add_asr_commands``).

::

    speechseq transcribe --model runs/las/final a.wav b.flac                       # "file<TAB>text" lines
    speechseq transcribe --model me/las-digits a.wav --beam 10 --ctc-weight 0.3 --lm runs/lm/final \\
        --lm-weight 0.5 --nbest 3 --json                                          # JSON lines, N-best
    speechseq transcribe --model runs/las_mocha/final a.wav --stream --chunk-seconds 0.4
    speechseq transcribe --model runs/ctc/final *.wav --int8 --batch-size 16
    speechseq evaluate --model runs/las/final --data fsdd:test --data-root ../shared/data/fsdd/recordings
    speechseq evaluate --model runs/las/final --data embedded:test_unseen --beam 10 --ctc-weight 0.3
    speechseq evaluate --model runs/ctc/final --data test.csv                      # a manifest
    speechseq evaluate --model runs/las_fsdd_eq/all/final --data fsdd:test --data-root ../shared/data/fsdd/recordings \\
        --ctc-weight 0.3 --vocabulary zero,one,two,three,four,five,six,seven,eight,nine   # closed set
    speechseq evaluate --model runs/ctc/final --data openslr/librispeech_asr --split test.clean

    speechseq adapt --model runs/las_fsdd_eq/all/final --vocabulary zero,one,two,three,four,five,six,seven,eight,nine \\
        --ctc-weight 0.3 --out runs/adapted_to_me my_recordings/*.wav           # self-training, no transcripts

``evaluate`` prints ``{"wer": .., "cer": .., "n": ..}``. Without the lead's CLI, run
``python -m speechseq.commands_asr transcribe ...``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from speechseq.errors import ConfigError, SpeechSeqError

MANIFEST_SUFFIXES = (".csv", ".tsv", ".json", ".jsonl")
CORPORA = ("embedded", "fsdd", "ljspeech")


# ----------------------------------------------------------------------------------------- shared flags


def add_decoding_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags shared by ``transcribe`` and ``evaluate``: model, search, LM, int8, batching."""
    parser.add_argument("--model", required=True, help="saved model folder or Hub repo id (CTC or LAS)")
    group = parser.add_argument_group("decoding")
    group.add_argument("--beam", type=int, default=1, help="beam size (1: greedy) [1]")
    group.add_argument("--ctc-weight", type=float, default=0.0, help="λ of joint CTC/attention decoding [0]")
    group.add_argument("--lm", default=None, help="saved language model (folder or repo) for shallow fusion")
    group.add_argument("--lm-weight", type=float, default=0.5, help="β, weight of the LM (with --lm) [0.5]")
    group.add_argument("--length-bonus", type=float, default=0.0, help="score added per output token [0]")
    group.add_argument("--max-len-ratio", type=float, default=None,
                       help="output tokens per encoder frame at most [the model's max_decode_ratio, else 1]")
    group.add_argument("--score-beam", type=float, default=None,
                       help="prune hypotheses this far below their utterance's best (faster search) [off]")
    group.add_argument("--nbest", type=int, default=1, help="hypotheses reported per input (<= --beam) [1]")
    group.add_argument("--vocabulary", default=None,
                       help="closed-set decoding: the allowed transcripts, comma-separated or a text file with one "
                            "per line; each is scored with the weights above and the best one is the output")
    group.add_argument("--int8", action="store_true", help="dynamic int8 quantisation of LSTM/Linear layers (CPU)")
    group.add_argument("--bf16", action="store_true",
                       help="bfloat16 autocast: faster on CPUs with bf16 units and GPUs; words may differ slightly")
    group.add_argument("--batch-size", type=int, default=8, help="utterances decoded together [8]")
    group.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def decoding_options(args: argparse.Namespace, model: Any, lm: Any = None) -> Any:
    """The :class:`DecodingOptions` the flags ask for."""
    from speechseq.decoding import DecodingOptions
    from speechseq.inference import default_options

    ratio = args.max_len_ratio or default_options(model).max_len_ratio
    # Closed-set decoding scores every allowed transcript: --nbest alone sets how many come back.
    beam = max(args.beam, args.nbest) if args.vocabulary else args.beam
    return DecodingOptions(
        beam_size=beam, ctc_weight=args.ctc_weight, lm_weight=args.lm_weight if lm is not None else 0.0,
        length_bonus=args.length_bonus, max_len_ratio=ratio, nbest=args.nbest, score_beam=args.score_beam,
    )


def read_vocabulary(spec: str | None) -> list[str] | None:
    """The phrases of ``--vocabulary``: the lines of an existing file, else the comma-separated list."""
    if spec is None:
        return None
    path = Path(spec)
    if path.is_file():
        phrases = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        phrases = [p for p in phrases if p]
        if not phrases:
            raise ConfigError(f"--vocabulary {spec}: the file has no phrase")
        return phrases
    return [p.strip() for p in spec.split(",")]


def asr_model(name: str) -> Any:
    """The saved model at ``name`` (folder or Hub repo), if it transcribes audio; else a clear error."""
    from speechseq.models import from_pretrained

    model = from_pretrained(name)
    if not hasattr(model, "transcribe") or getattr(model, "tokenizer", None) is None:
        raise ConfigError(f"{name}: a {model.family!r} model does not transcribe audio")
    return model


def load_models(args: argparse.Namespace) -> tuple[Any, Any]:
    """The ASR model and the optional LM named by ``--model`` / ``--lm``, quantised with ``--int8``."""
    from speechseq.inference import load_lm

    model = asr_model(args.model)
    lm = load_lm(args.lm, model) if args.lm else None
    if args.int8:
        from speechseq.quantize import quantize_dynamic

        model = quantize_dynamic(model)
        lm = quantize_dynamic(lm) if lm is not None else None
    return model, lm


def _progress(args: argparse.Namespace) -> bool:
    return not args.no_progress and sys.stderr.isatty()


# ------------------------------------------------------------------------------------------- transcribe


def _result_json(result: Any) -> dict[str, Any]:
    return {
        "source": result.source, "text": result.text, "score": result.score, "duration": result.duration,
        "nbest": [{"text": n.text, "score": n.score, "scores": n.scores} for n in result.nbest],
    }


def _print_result(result: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(_result_json(result), ensure_ascii=False))
        return
    print(f"{result.source}\t{result.text}")
    if len(result.nbest) > 1:
        for rank, entry in enumerate(result.nbest, 1):
            parts = " ".join(f"{name}={value:.3f}" for name, value in entry.scores.items())
            print(f"  {rank}. {entry.score:9.3f}  {entry.text}  ({parts})")


def _attention_path(base: Path, index: int, source: str, count: int) -> Path:
    """``base`` for a single input; ``{stem}_{i}_{source stem}{suffix}`` beside it for several."""
    if count == 1:
        return base
    return base.with_name(f"{base.stem}_{index}_{Path(source).stem}{base.suffix or '.png'}")


def _transcribe(args: argparse.Namespace) -> int:
    from speechseq.inference import plot_attention, transcribe

    model, lm = load_models(args)
    if args.ensemble:
        return _transcribe_ensemble(args, model, lm)
    if args.stream:
        return _stream(args, model, lm)
    options = decoding_options(args, model, lm)
    vocabulary = read_vocabulary(args.vocabulary)
    inputs = _vtln_inputs(model, args.audio, vocabulary, args.batch_size) if args.vtln else args.audio
    results = transcribe(model, inputs, options, lm=lm, batch_size=args.batch_size, progress=_progress(args),
                         precision="bfloat16" if args.bf16 else "float32", vocabulary=vocabulary)
    if args.vtln:  # the warped arrays' results name the files and their own durations
        from speechseq.audio import audio_info

        for result, path in zip(results, args.audio):
            result.source, result.duration = str(path), audio_info(path).duration
    for i, result in enumerate(results):
        _print_result(result, args.json)
        if args.plot_attention and result.attention is not None:
            path = _attention_path(Path(args.plot_attention), i, result.source, len(results))
            plot_attention(result, path, tokenizer=model.tokenizer)
            print(f"attention map of {result.source}: {path}", file=sys.stderr)
        elif args.plot_attention:
            print(f"{result.source}: a CTC model has no attention map to plot", file=sys.stderr)
    return 0


def _transcribe_ensemble(args: argparse.Namespace, model: Any, lm: Any) -> int:
    """``--ensemble``: closed-set scores of ``--model`` and every ``--ensemble`` model summed per phrase
    (:mod:`speechseq.ensemble`); with ``--vtln`` each model first warps the files by its own factor."""
    from speechseq.audio import audio_info, load_audio
    from speechseq.ensemble import ensemble_closed_set
    from speechseq.warp import DEFAULT_FACTORS

    vocabulary = read_vocabulary(args.vocabulary)
    if vocabulary is None:
        raise ConfigError("--ensemble sums the models' closed-set scores: add --vocabulary")
    if args.stream or lm is not None or args.beam != 1 or args.nbest != 1 or args.plot_attention or args.int8 \
            or args.bf16:
        raise ConfigError("--ensemble sums closed-set scores in float32: drop --stream, --lm, --beam, --nbest, "
                          "--plot-attention, --int8 and --bf16")
    models = [model, *(asr_model(name) for name in args.ensemble)]
    rate = model.feature_config.sample_rate
    waves = [load_audio(path, rate) for path in args.audio]
    result = ensemble_closed_set(models, waves, rate, vocabulary, args.ctc_weight,
                                 DEFAULT_FACTORS if args.vtln else None, args.batch_size)
    if args.vtln:
        print(f"vtln: speed factors {result.factors} (one per model, in the order given)", file=sys.stderr)
    for path, text, row in zip(args.audio, result.texts, result.scores):
        if not args.json:
            print(f"{path}\t{text}")
            continue
        print(json.dumps({"source": str(path), "text": text, "score": float(row.max()),
                          "duration": audio_info(path).duration, "factors": result.factors,
                          "scores": {p: float(v) for p, v in zip(vocabulary, row)}}, ensure_ascii=False))
    return 0


def _vtln_inputs(model: Any, paths: Sequence[str], vocabulary: list[str] | None, batch_size: int) -> list[Any]:
    """``--vtln``: the files as one speaker's recordings, all warped by the speed factor the model is surest of
    (:mod:`speechseq.warp`); the factor goes to stderr."""
    from speechseq.audio import load_audio
    from speechseq.augment import speed_perturb
    from speechseq.warp import DEFAULT_FACTORS, choose_warp, closed_set_confidence

    if vocabulary is None:
        raise ConfigError("--vtln chooses the warp on closed-set confidence (the only setting measured): "
                          "add --vocabulary")
    rate = model.feature_config.sample_rate
    waves = [load_audio(path, rate) for path in paths]
    choice = choose_warp(waves, rate, DEFAULT_FACTORS, closed_set_confidence(model, vocabulary, batch_size))
    scores = ", ".join(f"{f}: {s:.3f}" for f, s in choice.scores.items())
    print(f"vtln: speed factor {choice.factor} for all {len(waves)} inputs (mean confidence {scores})",
          file=sys.stderr)
    return [(speed_perturb(wave, rate, choice.factor), rate) for wave in waves]


def _stream(args: argparse.Namespace, model: Any, lm: Any) -> int:
    """Simulated streaming of each file: partial results on stderr (or in the JSON), final text on stdout."""
    from speechseq.audio import load_audio
    from speechseq.streaming import StreamingRecognizer

    if args.beam != 1 or args.nbest != 1 or lm is not None or args.ctc_weight or args.vocabulary or args.vtln:
        raise ConfigError("--stream decodes greedily: drop --beam, --nbest, --ctc-weight, --lm, --vocabulary "
                          "and --vtln")
    rate = model.feature_config.sample_rate
    recognizer = StreamingRecognizer(model, chunk_seconds=args.chunk_seconds, lookahead_seconds=args.lookahead_seconds)
    for path in args.audio:
        trace = recognizer.run(load_audio(path, rate))
        updates = [p for p in trace.partials if p.updated]
        if args.json:
            partials = [{"audio_seconds": p.audio_seconds, "text": p.text, "stable_text": p.stable_text,
                         "latency_ms": p.latency_ms} for p in updates]
            print(json.dumps({"source": str(path), "text": trace.final_text, "partials": partials,
                              "final_latency_ms": trace.final_latency_ms}, ensure_ascii=False))
            continue
        for p in updates:
            tentative = p.text[len(p.stable_text):]
            line = f"{path}\t{p.audio_seconds:6.2f} s\t{p.latency_ms:6.1f} ms\t{p.stable_text}|{tentative}"
            print(line, file=sys.stderr)
        print(f"{path}\t{trace.final_text}")
    return 0


# --------------------------------------------------------------------------------------------- evaluate


def _spread(dataset: Any, limit: int | None) -> Any:
    """At most ``limit`` rows spread over the dataset (readers sort by speaker: a prefix is one voice)."""
    if limit is None or limit >= len(dataset):
        return dataset
    return dataset.select(np.linspace(0, len(dataset) - 1, limit).round().astype(int).tolist())


def _corpus_split(kind: str, split: str, root: str | None, lang: str, size: str) -> Any:
    from speechseq.recipes.base import AsrDataConfig, load_asr_splits

    if kind in ("fsdd", "ljspeech") and not root:
        raise ConfigError(f"--data {kind}:{split} needs --data-root, the folder of the {kind} corpus")
    config = AsrDataConfig(corpus=kind, size=size, lang=lang, root=root or "", normalize_text=False)
    splits = load_asr_splits(config)
    if split not in splits:
        raise ConfigError(f"--data {kind}:{split}: no split {split!r}; {kind} has {sorted(splits)}")
    return splits[split]


def load_eval_dataset(
    spec: str, split: str = "test", root: str | None = None, lang: str = "en", size: str = "default",
    max_utterances: int | None = None,
) -> Any:
    """The ASR-view dataset named by ``--data``.

    Args:
        spec: ``embedded:SPLIT`` / ``fsdd:SPLIT`` / ``ljspeech:SPLIT`` (the recipes' splits), a manifest
            file (``.csv``, ``.tsv``, ``.json``, ``.jsonl``), or a Hub dataset / local dataset folder.
        split: split of a Hub dataset or folder (and of a corpus spec without ``:SPLIT``).
        root: folder of the ``fsdd`` / ``ljspeech`` corpus.
        lang, size: language and size preset of the embedded corpus (lang also of manifests).
        max_utterances: keep at most this many rows, spread over the split.
    """
    kind, _, corpus_split = spec.partition(":")
    if kind in CORPORA and not Path(spec).exists():
        dataset = _corpus_split(kind, corpus_split or split, root, lang, size)
    elif Path(spec).is_file() and Path(spec).suffix.lower() in MANIFEST_SUFFIXES:
        from speechseq.data.readers import load_manifest

        dataset = load_manifest(spec, lang=lang)
    else:
        from speechseq.data.readers import load_hub

        dataset = load_hub(spec, split)
    return _spread(dataset, max_utterances)


def _evaluate(args: argparse.Namespace) -> int:
    from speechseq.inference import evaluate

    model, lm = load_models(args)
    dataset = load_eval_dataset(
        args.data, args.split, args.data_root, args.lang, args.embedded_size, args.max_utterances
    )
    metrics = evaluate(
        model, dataset, decoding_options(args, model, lm), lm=lm, batch_size=args.batch_size,
        progress=_progress(args), normalize_references=not args.no_normalize,
        precision="bfloat16" if args.bf16 else "float32", vocabulary=read_vocabulary(args.vocabulary),
        by_speaker=args.by_speaker,
    )
    print(json.dumps(metrics))
    return 0


# ------------------------------------------------------------------------------------------------ adapt


def _adapt(args: argparse.Namespace) -> int:
    """Self-train a copy of the model on its own confident transcripts of the files; save it and a report."""
    from speechseq.adaptation import SelfTrainingConfig, self_train
    from speechseq.audio import load_audio

    if args.int8:
        raise ConfigError("--int8: an int8-quantised model cannot be trained; adapt the float model")
    model, lm = load_models(args)
    vocabulary = read_vocabulary(args.vocabulary)
    options = decoding_options(args, model, lm)
    if vocabulary is not None:  # the confidence is the posterior over every allowed phrase
        options = dataclasses.replace(options, beam_size=len(vocabulary), nbest=len(vocabulary))
    rate = model.feature_config.sample_rate
    waves = [load_audio(path, rate) for path in args.audio]
    config = SelfTrainingConfig(steps=args.steps, lr=args.lr, min_confidence=args.min_confidence, seed=args.seed)
    adapted, report = self_train(model, waves, config, options, vocabulary, progress=_progress(args), lm=lm)
    out = Path(args.out)
    adapted.save_pretrained(out)
    record = {
        "model": str(args.model), "settings": dataclasses.asdict(config), "vocabulary": vocabulary,
        "ctc_weight": options.ctc_weight, "nbest": options.nbest, "lm": args.lm, "lm_weight": options.lm_weight,
        "files": [{"path": str(p), "text": lab.text, "confidence": round(lab.confidence, 4), "kept": i in report.kept}
                  for i, (p, lab) in enumerate(zip(args.audio, report.labels))],
        "losses": [round(x, 4) for x in report.losses],
    }
    (out / "adaptation.json").write_text(json.dumps(record, indent=1, ensure_ascii=False), encoding="utf-8")
    print(f"kept {len(report.kept)} of {len(waves)} recordings (confidence >= {config.min_confidence}); "
          f"loss {report.losses[0]:.3f} -> {report.losses[-1]:.3f}; adapted model in {out}")
    return 0


# ------------------------------------------------------------------------------------------ the parsers


def add_asr_commands(subparsers: Any) -> None:
    """Add ``transcribe``, ``evaluate`` and ``adapt`` to the ``speechseq`` sub-command parsers."""
    tr = subparsers.add_parser("transcribe", help="transcribe audio files with a saved ASR model",
                               description="Transcribe audio files (any rate, WAV/FLAC/...) with a CTC or LAS model.")
    add_decoding_arguments(tr)
    tr.add_argument("audio", nargs="+", help="audio files")
    tr.add_argument("--json", action="store_true", help="one JSON object per file (N-best, scores, duration)")
    tr.add_argument("--plot-attention", metavar="PNG", default=None,
                    help="save the attention map (several files: PNG_{i}_{name}.png)")
    tr.add_argument("--vtln", action="store_true",
                    help="the files are one speaker: warp them all by the speed factor (0.85-1.15) the model is "
                         "surest of, chosen on closed-set confidence (needs --vocabulary)")
    tr.add_argument("--ensemble", metavar="MODEL", action="append", default=[],
                    help="another saved model (repeatable): each file's closed-set scores of --model and these "
                         "are summed, (1-λ)·decoder + λ·CTC per model with λ = --ctc-weight (needs --vocabulary; "
                         "with --vtln each model warps the files by its own factor)")
    tr.add_argument("--stream", action="store_true", help="simulate streaming (MoChA LAS or CTC): partial results")
    tr.add_argument("--chunk-seconds", type=float, default=0.4, help="--stream: audio per update [0.4]")
    tr.add_argument("--lookahead-seconds", type=float, default=0.2,
                    help="--stream: newest audio not decoded before more arrives [0.2]")
    tr.set_defaults(func=_transcribe)

    ev = subparsers.add_parser("evaluate", help="WER/CER of a saved ASR model on a corpus",
                               description="Print {\"wer\", \"cer\", \"n\"} of a model on a corpus split.")
    add_decoding_arguments(ev)
    ev.add_argument("--data", required=True,
                    help="embedded:SPLIT | fsdd:SPLIT | ljspeech:SPLIT | manifest.csv/.jsonl | Hub dataset or folder")
    ev.add_argument("--split", default="test", help="split of a Hub dataset or folder [test]")
    ev.add_argument("--data-root", default=None, help="folder of the fsdd/ljspeech corpus")
    ev.add_argument("--lang", default="en", help="language of the transcripts [en]")
    ev.add_argument("--embedded-size", default="default", help="size preset of the embedded corpus [default]")
    ev.add_argument("--max-utterances", type=int, default=None, help="evaluate on at most this many utterances")
    ev.add_argument("--no-normalize", action="store_true", help="score references as they are (no normalize())")
    ev.add_argument("--by-speaker", action="store_true",
                    help="also print WER/CER per value of the speaker column (\"speakers\": {...})")
    ev.set_defaults(func=_evaluate)

    ad = subparsers.add_parser(
        "adapt", help="adapt a saved ASR model to new recordings without transcripts (self-training)",
        description="Transcribe the files, keep the confident transcripts, fine-tune a copy of the model on them "
                    "and save it (speechseq.adaptation). The decoding flags choose how the files are transcribed: "
                    "with --vocabulary (closed set) the confidence is the posterior over every phrase; otherwise "
                    "give --beam N --nbest N (with --nbest 1 every transcript counts as sure).")
    add_decoding_arguments(ad)
    ad.add_argument("audio", nargs="+", help="recordings of the new speaker or domain")
    ad.add_argument("--out", required=True, help="folder for the adapted model (and adaptation.json)")
    ad.add_argument("--steps", type=int, default=150, help="updates [150]")
    ad.add_argument("--lr", type=float, default=3e-4, help="AdamW learning rate [3e-4]")
    ad.add_argument("--min-confidence", type=float, default=0.8, help="keep transcripts at least this sure [0.8]")
    ad.add_argument("--seed", type=int, default=0)
    ad.set_defaults(func=_adapt)


def build_parser() -> argparse.ArgumentParser:
    """A parser with only the ASR commands (the ``speechseq`` CLI adds them to its own)."""
    parser = argparse.ArgumentParser(prog="speechseq", description="speech recognition with saved models")
    add_asr_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ASR command; returns the exit code (1 with a message on bad input)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SpeechSeqError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
