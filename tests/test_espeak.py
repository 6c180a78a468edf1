"""espeak-ng wrapper: synthesis parameters act on the audio, G2P gives known IPA, calls are thread- and fork-safe.

espeak's pitch-flutter oscillator keeps its phase between calls (a C static no API resets), so two syntheses
of the same text differ by a few samples; audio is compared by duration and log-mel correlation, which
separates "same utterance" (≥ 0.998 measured) from "different utterance" (≤ 0.5 measured).
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor

import librosa
import numpy as np
import pytest

from speechseq.errors import SpeechSeqError
from speechseq.text import espeak, g2p
from speechseq.text.espeak import SAMPLE_RATE, EmptyTextError, EspeakError, UnknownVoiceError

SENTENCE = "the quick brown fox jumps over the lazy dog"


def _median_f0(wave: np.ndarray) -> float:
    """Median F0 (Hz) of the voiced, loud frames (YIN)."""
    f0 = librosa.yin(wave, fmin=60, fmax=500, sr=SAMPLE_RATE, frame_length=1024, hop_length=256)
    rms = librosa.feature.rms(y=wave, frame_length=1024, hop_length=256)[0][: len(f0)]
    return float(np.median(f0[rms > 0.02]))


def _log_mel(wave: np.ndarray) -> np.ndarray:
    mel = librosa.feature.melspectrogram(y=wave, sr=SAMPLE_RATE, n_fft=1024, hop_length=256, n_mels=40)
    return np.log(mel + 1e-5)


def _same_utterance(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to espeak's flutter: durations within 1 %, log-mels correlated above 0.99."""
    if abs(len(a) - len(b)) > 0.01 * max(len(a), len(b)):
        return False
    mel_a, mel_b = _log_mel(a), _log_mel(b)
    frames = min(mel_a.shape[1], mel_b.shape[1])
    return float(np.corrcoef(mel_a[:, :frames].ravel(), mel_b[:, :frames].ravel())[0, 1]) > 0.99


def _seconds(wave: np.ndarray) -> float:
    return len(wave) / SAMPLE_RATE


def test_audio_format_and_duration_grow_with_text() -> None:
    short = espeak.synthesize("hello")
    long = espeak.synthesize("hello world, how are you today")
    assert SAMPLE_RATE == 22050
    assert short.dtype == np.float32 and short.ndim == 1
    assert 0.05 < np.abs(long).max() <= 1.0
    assert 0.2 < _seconds(short) < 1.0
    assert _seconds(long) > 2.5 * _seconds(short)


def test_rate_shrinks_duration() -> None:
    slow, normal, fast = (_seconds(espeak.synthesize(SENTENCE, rate=r)) for r in (100, 175, 300))
    assert slow > 1.4 * normal and normal > 1.4 * fast


def test_pitch_and_variants_change_f0() -> None:
    low, mid, high = (_median_f0(espeak.synthesize(SENTENCE, pitch=p)) for p in (20, 50, 80))
    assert low < 0.9 * mid and high > 1.2 * mid
    male, female = (_median_f0(espeak.synthesize(SENTENCE, v)) for v in ("en+m3", "en+f2"))
    assert female > 1.6 * male
    assert _median_f0(espeak.synthesize("el perro come en la casa", "es+f2")) > 1.6 * male


def test_volume_word_gap_and_parameters_do_not_leak() -> None:
    quiet = espeak.synthesize(SENTENCE, volume=40)
    loud = espeak.synthesize(SENTENCE, volume=160)
    assert np.sqrt(np.mean(loud**2)) > 2 * np.sqrt(np.mean(quiet**2))
    gapped = espeak.synthesize(SENTENCE, word_gap=20)  # 200 ms after each of 8 word gaps
    default = espeak.synthesize(SENTENCE)
    assert _seconds(gapped) > _seconds(default) + 1.0
    # A call with other settings must not change the defaults of the next call.
    espeak.synthesize("fast and high", "en+f2", rate=400, pitch=90, word_gap=50)
    assert _same_utterance(espeak.synthesize(SENTENCE), default)


def test_phonemize_known_ipa() -> None:
    assert espeak.phonemize("hello world", "en") == "həlˈəʊ wˈɜːld"
    assert espeak.phonemize("hello world", "en-us") == "həlˈoʊ wˈɜːld"
    # Clauses are joined and punctuation dropped; words stay single-space separated.
    assert espeak.phonemize("  Hello,   world!  How are you? ", "en") == "həlˈəʊ wˈɜːld hˈaʊ ɑː juː"
    spanish = espeak.phonemize("El niño come manzanas y bebe agua.", "es")
    assert spanish == "el nˈiɲo kˈome manθˈanas i βˈeβe ˈaɣwa"
    assert espeak.phonemize("church judge", "en") == "tʃˈɜːtʃ dʒˈʌdʒ"


def test_g2p_normalises_first() -> None:
    # espeak alone would read "$100" as "dollar one hundred".
    assert g2p("$100", "en") == espeak.phonemize("one hundred dollars", "en")
    assert g2p("21 casas", "es") == espeak.phonemize("veintiuna casas", "es")


@pytest.mark.parametrize("call, error, words", [
    (lambda: espeak.synthesize(""), EmptyTextError, "empty text"),
    (lambda: espeak.phonemize("   "), EmptyTextError, "empty text"),
    (lambda: espeak.synthesize("hola", "xx"), UnknownVoiceError, "'xx'"),
    (lambda: espeak.synthesize("hola", "es+nobody"), UnknownVoiceError, "'nobody'"),
    (lambda: espeak.phonemize("hola", "zz-zz"), UnknownVoiceError, "'zz-zz'"),
    (lambda: espeak.synthesize("hola", rate=20), EspeakError, "rate=20"),
    (lambda: espeak.synthesize("hola", pitch=101), EspeakError, "pitch=101"),
])
def test_bad_input_raises_named_error(call, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words) as raised:
        call()
    assert isinstance(raised.value, SpeechSeqError)


def test_list_variants_are_accepted() -> None:
    variants = espeak.list_variants()
    assert {"m3", "f2", "klatt"} <= set(variants) and len(variants) > 50
    for variant in ("m1", "f4", "klatt"):
        assert espeak.synthesize("yes", f"en+{variant}").size > 0


_JOBS = [
    ("the quick brown fox", "en", 175, 50),
    ("jumps over the lazy dog", "en+m3", 220, 30),
    ("el perro come en la casa", "es", 150, 60),
    ("la niña bebe agua fresca", "es+f2", 190, 70),
]


def _run_job(job: tuple[str, str, int, int]) -> tuple[np.ndarray, str]:
    text, voice, rate, pitch = job
    return espeak.synthesize(text, voice, rate=rate, pitch=pitch), espeak.phonemize(text, voice)


def test_parallel_threads_match_sequential() -> None:
    sequential = [_run_job(job) for job in _JOBS]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(_run_job, _JOBS * 3))
    for i, (wave, phonemes) in enumerate(parallel):
        ref_wave, ref_phonemes = sequential[i % len(_JOBS)]
        assert phonemes == ref_phonemes
        assert _same_utterance(wave, ref_wave), _JOBS[i % len(_JOBS)]
    assert not _same_utterance(sequential[0][0], sequential[1][0])  # the check can tell utterances apart


def test_works_in_a_forked_child() -> None:
    parent = _run_job(_JOBS[2])  # initialise in the parent first: the child must not reuse its lock state
    with multiprocessing.get_context("fork").Pool(1) as pool:
        child = pool.apply(_run_job, (_JOBS[2],))
    assert child[1] == parent[1]
    assert _same_utterance(child[0], parent[0])
