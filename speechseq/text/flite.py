"""English speech from CMU Flite's voices, through its command-line program (``apt install flite``).

Flite's voices are built from recordings of real people: ``kal16`` (an American man; diphones), ``awb`` (a
Scottish man), ``rms`` (an American man) and ``slt`` (an American woman; the last three statistical
parametric voices trained on CMU ARCTIC). Their vocal tracts are human ones, where espeak-ng's are formant
settings; the embedded corpus can add them to its training voices (``EmbeddedCorpusConfig.flite_voices``).
Flite speaks English only. It is an optional system program: nothing else in speechseq needs it.

>>> wave = synthesize("one two three", "awb", pitch=1.1, stretch=0.9)   # doctest: +SKIP
>>> wave.dtype.name, 0.5 < len(wave) / SAMPLE_RATE < 3.0                 # doctest: +SKIP
('float32', True)
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf

from speechseq.audio import resample
from speechseq.errors import SpeechSeqError

SAMPLE_RATE = 22050  # what synthesize returns (espeak's rate, so that corpus code treats both alike)
# Each voice's own mean F0 in Hz, rounded from librosa.pyin's median on a digit sentence (86, 129, -, 169 Hz).
# ``None``: the voice ignores Flite's F0 target (rms), so its pitch cannot be moved at synthesis.
VOICE_F0: dict[str, float | None] = {"kal16": 90.0, "awb": 125.0, "rms": None, "slt": 170.0}
VOICES: tuple[str, ...] = tuple(VOICE_F0)


class FliteError(SpeechSeqError, RuntimeError):
    """Flite is missing, does not know the voice, or produced no audio."""


def available() -> bool:
    """Whether the ``flite`` program is on PATH."""
    return shutil.which("flite") is not None


@lru_cache(maxsize=1)  # the cache key asks for it on every recipe_hash(): one subprocess per process
def version() -> str:
    """Flite's version line ("flite-2.2-current Sep 2018"), part of a corpus's cache key; "" if not installed."""
    if not available():
        return ""
    out = subprocess.run(["flite", "--version"], capture_output=True, text=True).stdout
    return next((line.split("version:", 1)[1].split("(")[0].strip() for line in out.splitlines()
                 if "version:" in line), out.strip())


def synthesize(text: str, voice: str, *, pitch: float = 1.0, stretch: float = 1.0) -> np.ndarray:
    """Speak English ``text`` with Flite voice ``voice`` (one of :data:`VOICES`).

    Args:
        text: normalised English text.
        voice: a Flite voice name.
        pitch: factor on the voice's mean F0 (ignored by voices whose ``VOICE_F0`` is None).
        stretch: factor on every duration (above 1 is slower).

    Returns:
        float32 waveform, shape (num_samples,), at :data:`SAMPLE_RATE`.
    """
    if voice not in VOICE_F0:
        raise FliteError(f"unknown Flite voice {voice!r}; known: {list(VOICES)}")
    if not text.strip():
        raise FliteError(f"cannot synthesize empty text {text!r}")
    if not available():
        raise FliteError("the flite program is not installed (apt install flite)")
    args = ["flite", "-voice", voice, "--setf", f"duration_stretch={stretch:.4f}"]
    f0 = VOICE_F0[voice]
    if f0 is not None:
        args += ["--setf", f"int_f0_target_mean={f0 * pitch:.2f}"]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        done = subprocess.run(args + ["-t", text, "-o", str(out)], capture_output=True, text=True)
        if done.returncode != 0 or not out.exists():
            raise FliteError(f"flite failed on {text!r} (voice {voice!r}): {done.stderr.strip()[:300]}")
        wave, sr = sf.read(out, dtype="float32")
    if wave.size == 0:
        raise FliteError(f"flite produced no audio for {text!r} (voice {voice!r})")
    return resample(wave, sr, SAMPLE_RATE).astype(np.float32)
