"""Spoken digits from espeak-ng voices, named like FSDD, to widen the speaker variety of the FSDD recipe.

FSDD's folds train on four real speakers. This script renders the ten digit words with every espeak
variant of the embedded corpus (both of its pools: 72 variants), each ``--takes`` times with its own pitch,
pitch range and rate drawn from the union of the corpus's training and unseen regions, trims the silence,
and writes 8 kHz WAVs as ``{digit}_{speaker}_{take}.wav`` with takes from 10 up: in a fold they all fall in
the *training* split (takes 0-9 of every speaker are its validation and test takes), never in evaluation.
``fsdd_loso.py --extra-train DIR`` mixes them into every run. Speaker names are letters only ("synaa",
"synab", ...), as FSDD's; ``DIR/voices.json`` says which variant and prosody each file was spoken with.
The voices are seeded; the files are not byte-reproducible, as espeak's output varies by a few
milliseconds from call to call.

This is TTS-augmented training (Rosenberg et al. 2019, "Speech recognition with augmented synthesized
speech"): the held-out speaker stays a real person no training voice is.

Usage::

    python tasks/las/fsdd_synth_digits.py runs/fsdd_synth            # 72 variants x 10 digits x 2 takes
    python tasks/las/fsdd_synth_digits.py runs/fsdd_synth --takes 4 --seed 1
"""

from __future__ import annotations

import argparse
import json
import string
import sys
from pathlib import Path

import numpy as np

from speechseq.audio import resample, save_audio
from speechseq.data.embedded import trim_silence
from speechseq.data.readers import DIGIT_WORDS
from speechseq.data.voices import TRAIN_VARIANTS, UNSEEN_VARIANTS, Voice
from speechseq.text import espeak

FIRST_TAKE = 10  # takes 0-4 are a fold's seen-speaker test, 5-9 its validation: synthetic ones train only
SAMPLE_RATE = 8000  # FSDD's rate: the same band, and one rate per folder for the speaker equaliser
PEAK = 0.5  # peak level of every file (FSDD's recordings peak anywhere from 0.1 to 1; the model normalises)
# Prosody: the union of the embedded corpus's training and unseen regions (speechseq/data/voices.py).
PITCH, PITCH_RANGE, RATE = (20, 80), (15, 95), (130, 215)
VARIANTS = TRAIN_VARIANTS + UNSEEN_VARIANTS


def speaker_name(index: int) -> str:
    """``synaa``, ``synab``, ...: letters only, as FSDD's reader and the LOSO script expect."""
    letters = string.ascii_lowercase
    if not 0 <= index < len(letters) ** 2:
        raise ValueError(f"speaker index {index} out of range (at most {len(letters) ** 2} voices)")
    return f"syn{letters[index // len(letters)]}{letters[index % len(letters)]}"


def plan_voices(takes: int, seed: int, variants: tuple[str, ...] = VARIANTS) -> list[tuple[str, int, Voice]]:
    """(speaker name, take, voice) for every variant and take; deterministic for ``seed``."""
    if takes < 1:
        raise ValueError(f"--takes must be at least 1, got {takes}")
    rng = np.random.default_rng(seed)
    plan = []
    for index, variant in enumerate(variants):
        name = speaker_name(index)
        for take in range(FIRST_TAKE, FIRST_TAKE + takes):
            voice = Voice(name, variant, pitch=int(rng.integers(PITCH[0], PITCH[1] + 1)),
                          pitch_range=int(rng.integers(PITCH_RANGE[0], PITCH_RANGE[1] + 1)),
                          rate=int(rng.integers(RATE[0], RATE[1] + 1)))
            plan.append((name, take, voice))
    return plan


def render_digit(voice: Voice, digit: int, trim_db: float = 40.0) -> np.ndarray:
    """(S,) float32 waveform at 8 kHz of ``voice`` saying the digit word, trimmed, peak ``PEAK``."""
    wave = trim_silence(voice.render(DIGIT_WORDS[digit], "en"), trim_db)
    wave = resample(wave, espeak.SAMPLE_RATE, SAMPLE_RATE)
    return (wave * (PEAK / max(float(np.abs(wave).max()), 1e-6))).astype(np.float32)


def write_digits(out: Path, takes: int = 2, seed: int = 0, variants: tuple[str, ...] = VARIANTS) -> dict[str, object]:
    """Render every planned voice's ten digits into ``out``; returns (and writes) ``out/voices.json``.

    Rendered in a child process (``espeak.run_isolated``): switching between 72 variants would otherwise
    change what espeak produces later in this process."""
    return espeak.run_isolated(_write_digits, out, takes, seed, variants)


def _write_digits(out: Path, takes: int, seed: int, variants: tuple[str, ...]) -> dict[str, object]:
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for name, take, voice in plan_voices(takes, seed, variants):
        for digit in range(10):
            save_audio(out / f"{digit}_{name}_{take}.wav", render_digit(voice, digit), SAMPLE_RATE)
        records.append({"speaker": name, "take": take, **voice.params()})
    record = {"takes": takes, "seed": seed, "sample_rate": SAMPLE_RATE, "files": 10 * len(records),
              "voices": records}
    (out / "voices.json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write the WAVs and voices.json into")
    parser.add_argument("--takes", type=int, default=2, help="renditions of each digit per variant")
    parser.add_argument("--seed", type=int, default=0, help="seed of the prosody draws")
    args = parser.parse_args(argv)
    record = write_digits(args.out, args.takes, args.seed)
    print(f"{record['files']} files of {len(record['voices']) // args.takes} voices in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
