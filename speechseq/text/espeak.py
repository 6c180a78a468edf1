"""Speech synthesis and grapheme-to-phoneme conversion with espeak-ng, through ctypes.

The shared library and its voice data come from the pip package ``espeakng-loader``, so nothing has to be
installed with apt. espeak-ng keeps its state (current voice, parameters, translator, wave generator) in
process-global variables, so every call into it goes through one lock, and the library is initialised lazily
once per process. A child made by ``fork`` gets a fresh lock but keeps the inherited, initialised engine:
initialising espeak a second time in one address space corrupts its phoneme tables. Fork only while no
other thread is inside an espeak call (the corpus builder forks from its main thread before any work).

Reproducibility: phonemes are deterministic. Audio is reproducible up to espeak's pitch "flutter": the
flutter oscillator's phase is a C function-static that no API resets, so the same text synthesised twice in
one process differs by a small pitch jitter and a few samples of length (well under 1 %), while the words,
duration and F0 contour stay the same.

>>> wave = synthesize("hello world", "en+m3", rate=160)
>>> wave.dtype, wave.ndim
(dtype('float32'), 1)
>>> phonemize("hello world", "en")
'həlˈəʊ wˈɜːld'
"""

from __future__ import annotations

import ctypes
import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, TypeVar

import numpy as np

from speechseq.errors import SpeechSeqError

T = TypeVar("T")

SAMPLE_RATE = 22050

# Values from espeak-ng's speak_lib.h (checked against the header text).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_CHARS_UTF8 = 1
_PHONEMES_IPA = 0x02  # TextToPhonemes phonememode bit 1: IPA as UTF-8 instead of espeak's ASCII names
_POS_CHARACTER = 1
_EE_OK = 0
_RATE, _VOLUME, _PITCH, _RANGE, _WORDGAP = 1, 2, 3, 4, 7

# Documented ranges of espeak_SetParameter (rate in words per minute, word gap in units of 10 ms).
_PARAM_RANGES = {
    "rate": (80, 450),
    "pitch": (0, 100),
    "pitch_range": (0, 100),
    "volume": (0, 200),
    "word_gap": (0, 1000),
}

_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class EspeakError(SpeechSeqError, ValueError):
    """espeak-ng was given input it cannot use (empty text, unknown voice, parameter out of range)."""


class UnknownVoiceError(EspeakError):
    """A voice whose language or variant is not shipped with espeak-ng's data."""


class EmptyTextError(EspeakError):
    """Text with nothing to speak or phonemize."""


@dataclass
class _Engine:
    """The loaded library of one process, the lock that serialises calls, and the audio being collected."""

    lib: ctypes.CDLL
    callback: object  # the ctypes callback object; kept referenced so it is never garbage-collected
    chunks: list[np.ndarray]


_lock = threading.Lock()
_engine: _Engine | None = None


def _reset_after_fork() -> None:
    # The parent's lock may have been held by another thread at fork time; it would never be released here.
    # The engine itself is kept: the child inherits the initialised library, and calling espeak_Initialize a
    # second time in one address space corrupts espeak's phoneme tables (garbage IPA, then crashes).
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_reset_after_fork)


def data_path() -> Path:
    """Folder of espeak-ng's voice and dictionary data (inside the espeakng-loader package)."""
    import espeakng_loader

    return Path(espeakng_loader.get_data_path())


def _declare(lib: ctypes.CDLL) -> None:
    """Give ctypes the C signatures, so that arguments are converted and checked."""
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
        ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
    ]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
    lib.espeak_TextToPhonemes.restype = ctypes.c_char_p


def _get_engine() -> _Engine:
    """Load and initialise the library once per process. Call with ``_lock`` held."""
    global _engine
    if _engine is not None:
        return _engine
    import espeakng_loader

    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    _declare(lib)
    rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, str(data_path()).encode(), 0)
    if rate != SAMPLE_RATE:
        raise RuntimeError(f"espeak_Initialize returned {rate}, expected sample rate {SAMPLE_RATE}")
    chunks: list[np.ndarray] = []

    def on_audio(wav: Any, num_samples: int, _events: int) -> int:  # wav: POINTER(c_short), maybe NULL
        # Called synchronously from espeak_Synth, under our lock; a NULL/empty block marks the end.
        if num_samples > 0 and wav:
            chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        return 0  # 0 = continue synthesis

    callback = _SynthCallback(on_audio)
    lib.espeak_SetSynthCallback(callback)
    _engine = _Engine(lib=lib, callback=callback, chunks=chunks)
    return _engine


@lru_cache(maxsize=1)
def _variant_set() -> frozenset[str]:
    return frozenset(list_variants())


def list_variants() -> list[str]:
    """Names of the voice variants shipped in espeak-ng's ``voices/!v`` folder (e.g. "m3", "f2", "klatt").

    A variant is appended to a language with "+": ``synthesize("hola", "es+f2")``.
    """
    folder = data_path() / "voices" / "!v"
    return sorted(p.name for p in folder.iterdir() if p.is_file())


def _check_voice(voice: str) -> None:
    """Reject an unknown variant before espeak silently falls back to the default one."""
    language, _, variant = voice.partition("+")
    if not language:
        raise UnknownVoiceError(f"voice {voice!r}: no language given (expected e.g. 'en' or 'es+f2')")
    if variant and variant not in _variant_set():
        raise UnknownVoiceError(
            f"voice {voice!r}: unknown variant {variant!r}; see espeak.list_variants() "
            f"(e.g. {', '.join(sorted(_variant_set())[:6])}, ...)"
        )


def _set_voice(engine: _Engine, voice: str) -> None:
    """Select ``voice``. Call with ``_lock`` held."""
    _check_voice(voice)
    status = engine.lib.espeak_SetVoiceByName(voice.encode("utf-8"))
    if status != _EE_OK:
        raise UnknownVoiceError(f"voice {voice!r}: espeak-ng does not know this language (status {status})")


def _check_params(params: dict[str, int]) -> None:
    for name, value in params.items():
        low, high = _PARAM_RANGES[name]
        if not low <= int(value) <= high:
            raise EspeakError(f"espeak parameter {name}={value} outside [{low}, {high}]")


def _check_text(text: str, what: str) -> bytes:
    if not isinstance(text, str) or not text.strip():
        raise EmptyTextError(f"cannot {what} empty text {text!r}")
    return text.encode("utf-8")


def synthesize(
    text: str,
    voice: str = "en",
    *,
    rate: int = 175,
    pitch: int = 50,
    pitch_range: int = 50,
    volume: int = 100,
    word_gap: int = 0,
) -> np.ndarray:
    """Speak ``text`` with an espeak-ng voice.

    Args:
        text: what to say. espeak reads digits and symbols its own way ("$100" as "dollar one hundred"),
            so pass normalised text (``speechseq.text.normalize``) for transcripts that must match.
        voice: language, optionally with a variant from ``list_variants()``: "en", "en-us", "en+m3", "es+f2".
        rate: speaking rate in words per minute, 80–450.
        pitch: base pitch, 0–100 (50 is the voice's normal pitch).
        pitch_range: intonation range, 0–100 (0 is a monotone).
        volume: 0–200 (100 is normal).
        word_gap: extra pause between words, in units of 10 ms.

    Returns:
        float32 waveform of shape (num_samples,) in [-1, 1] at ``SAMPLE_RATE`` (22050 Hz).

    Raises:
        EmptyTextError, UnknownVoiceError, EspeakError (parameter out of range, or nothing was spoken).

    >>> wave = synthesize("one two three", "en+f2", pitch=70)
    >>> 0.5 < len(wave) / SAMPLE_RATE < 3.0
    True
    """
    encoded = _check_text(text, "synthesize")
    params = {"rate": rate, "pitch": pitch, "pitch_range": pitch_range, "volume": volume, "word_gap": word_gap}
    _check_params(params)
    with _lock:
        engine = _get_engine()
        _set_voice(engine, voice)
        # Set every parameter on every call: espeak keeps them between calls, so a previous caller's
        # settings would otherwise leak into this one.
        for code, value in ((_RATE, rate), (_PITCH, pitch), (_RANGE, pitch_range),
                            (_VOLUME, volume), (_WORDGAP, word_gap)):
            engine.lib.espeak_SetParameter(code, int(value), 0)
        engine.chunks.clear()
        buffer = ctypes.create_string_buffer(encoded)  # NUL-terminated; size passed includes the NUL
        status = engine.lib.espeak_Synth(buffer, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        samples = np.concatenate(engine.chunks) if engine.chunks else np.zeros(0, dtype=np.int16)
        engine.chunks.clear()
    if status != _EE_OK:
        raise EspeakError(f"espeak_Synth failed with status {status} on text {text!r} (voice {voice!r})")
    if samples.size == 0:
        raise EmptyTextError(f"espeak produced no audio for text {text!r} (voice {voice!r})")
    return samples.astype(np.float32) / 32768.0


def run_isolated(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a forked child process, for work that switches between many voices.

    espeak-ng keeps some of a voice variant's state after the next ``espeak_SetVoiceByName`` (measured: after
    a run of variants such as ``Alicia``, ``f5`` or ``gustave`` the default voice's next sentence is no longer
    the same, depending on what came before), so rendering many variants in this process would change what
    later calls here produce. The child has its own copy of the engine; ``fn`` and its result must pickle
    (a module-level function). Checked by ``tests/test_espeak.py`` running after ``tests/test_embedded.py``,
    which renders four variants through this.
    """
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(1) as pool:
        return pool.apply(fn, args)


def phonemize(text: str, lang: str = "en") -> str:
    """IPA transcription of ``text`` as espeak-ng reads it in language ``lang``.

    espeak returns one clause at a time and drops punctuation; clauses are joined with a space and words are
    separated by exactly one space. Stress marks (ˈ ˌ) and length marks (ː) are kept as espeak writes them.

    Args:
        text: any text; as with ``synthesize``, normalise numbers and symbols first.
        lang: espeak language ("en", "en-us", "es", ...); a "+variant" suffix is accepted and has no effect.

    Returns:
        the IPA string, e.g. ``phonemize("hello world", "en") == "həlˈəʊ wˈɜːld"``.

    >>> phonemize("el perro come", "es")
    'el pˈero kˈome'
    """
    encoded = _check_text(text, "phonemize")
    clauses: list[str] = []
    with _lock:
        engine = _get_engine()
        _set_voice(engine, lang)
        buffer = ctypes.create_string_buffer(encoded)
        # espeak advances this pointer past each clause it converts, and sets it to NULL at the end.
        cursor = ctypes.c_char_p(ctypes.addressof(buffer))
        while cursor.value:
            out = engine.lib.espeak_TextToPhonemes(ctypes.byref(cursor), _CHARS_UTF8, _PHONEMES_IPA)
            if out:
                clauses.append(out.decode("utf-8"))
    return " ".join(" ".join(clauses).split())
