"""An unseen-voice development set for the embedded corpus, to tune decoding without touching test_unseen.

The embedded corpus has a validation split of *training* voices only, so the search's weights were chosen for
voices the model knows. ``test_unseen`` is spoken by 12 voices from the unseen pool; that pool has 38 espeak
variants. This script speaks the corpus's **validation sentences** with the *next* voices of the same
pool (variants none of the 12 test voices uses, prosody drawn from the same unseen region), so that weights
can be tuned on voices as unfamiliar as the test's, with no test sentence and no test voice.

It writes ``OUT/{speaker}/{row}.wav`` (the corpus's rate, trimmed as the corpus trims) and
``OUT/manifest.csv`` (columns id, path, text, speaker), which ``speechseq evaluate --data OUT/manifest.csv``
reads. ``OUT/voices.json`` records the voices.

Usage::

    python tasks/las/embedded_unseen_dev.py runs/embedded_unseen_dev      # 12 voices, 2 per sentence: 600 rows
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from speechseq.audio import resample, save_audio
from speechseq.data.embedded import EmbeddedCorpusConfig, asr_view, build_embedded_corpus, trim_silence
from speechseq.data.voices import UNSEEN_VARIANTS, Voice, sample_voices
from speechseq.text import espeak


def dev_voices(config: EmbeddedCorpusConfig, count: int) -> list[Voice]:
    """``count`` unseen-pool voices after the corpus's own test_unseen voices (other variants, same region).

    ``sample_voices`` deals the pool's variants from a seeded permutation and draws each voice's prosody in
    turn, so the first ``config.unseen_voices`` of a longer draw are exactly the test voices; the ones after
    them are the development voices.
    """
    left = len(UNSEEN_VARIANTS) - config.unseen_voices
    if not 1 <= count <= left:
        raise ValueError(f"{count} development voices: the unseen pool has {left} variants the test voices do not "
                         f"use (1 to {left})")
    test = config.voices()["unseen"]
    drawn = sample_voices(config.unseen_voices + count, config.seed, "unseen")
    dev = drawn[len(test):]
    if drawn[: len(test)] != test or {v.variant for v in dev} & {v.variant for v in test}:
        raise RuntimeError("the unseen pool no longer deals the test voices first; dev voices would overlap them")
    return dev


def write_dev_set(out: Path, config: EmbeddedCorpusConfig, voices: int = 12, per_sentence: int = 2,
                  seed: int = 0, cache_dir: str | None = None) -> list[dict[str, str]]:
    """Render ``config``'s validation sentences with the development voices; returns the manifest rows.

    Rendered in a child process (``espeak.run_isolated``): switching between variants would otherwise change
    what espeak produces later in this process."""
    dev = dev_voices(config, voices)
    sentences = asr_view(build_embedded_corpus(config, cache_dir=cache_dir, progress=False)["validation"], "en")
    texts = list(dict.fromkeys(sentences["text"]))  # each sentence once (the corpus has two voices per sentence)
    return espeak.run_isolated(_render_rows, out, config, dev, texts, per_sentence, seed)


def _render_rows(out: Path, config: EmbeddedCorpusConfig, dev: list[Voice], texts: list[str], per_sentence: int,
                 seed: int) -> list[dict[str, str]]:
    rng = np.random.default_rng(seed)
    rows = []
    for index, text in enumerate(texts):
        for v in rng.choice(len(dev), size=per_sentence, replace=False):
            voice = dev[int(v)]
            wave = trim_silence(voice.render(text, "en"), config.trim_db)
            path = out / voice.speaker / f"{index:04d}.wav"
            save_audio(path, resample(wave, espeak.SAMPLE_RATE, config.sample_rate), config.sample_rate)
            rows.append({"id": f"{voice.speaker}_{index:04d}", "path": str(path.relative_to(out)), "text": text,
                         "speaker": voice.speaker})
    with (out / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "path", "text", "speaker"])
        writer.writeheader()
        writer.writerows(rows)
    (out / "voices.json").write_text(json.dumps({"size": config.size, "seed": seed, "per_sentence": per_sentence,
                                                 "voices": [v.params() for v in dev]}, indent=1) + "\n")
    return rows


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--size", default="default", help="embedded corpus preset")
    parser.add_argument("--voices", type=int, default=12, help="development voices")
    parser.add_argument("--per-sentence", type=int, default=2, help="voices speaking each validation sentence")
    parser.add_argument("--seed", type=int, default=0, help="seed of the voice-to-sentence draw")
    args = parser.parse_args(argv)
    rows = write_dev_set(args.out, EmbeddedCorpusConfig.preset(args.size), args.voices, args.per_sentence, args.seed)
    print(f"{len(rows)} utterances in {args.out / 'manifest.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
