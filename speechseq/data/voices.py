"""Synthetic speakers for the embedded corpus: espeak-ng voice variants with sampled prosody.

A :class:`Voice` is one bilingual synthetic speaker: an espeak variant (formant or Klatt settings:
"m3", "f2", "klatt3", "Annie", ...) spoken with the language voice of each language (en-us, es), plus
a pitch, pitch range, rate and word gap. Training voices and *unseen* voices differ in both respects:

* **variants**: two disjoint pools (:data:`TRAIN_VARIANTS`, :data:`UNSEEN_VARIANTS`), each mixing male,
  female, formant and Klatt voices;
* **parameters**: disjoint regions (:data:`TRAIN_REGION`, :data:`UNSEEN_REGION`): unseen voices are
  lower or higher in pitch, narrower or wider in intonation, slower or faster, and pause more
  between words than any training voice.

Variants were screened on a rendered sentence (pitch tracked with ``librosa.pyin``, clipping counted):
left out are those that are unvoiced or nearly so (whisper, whisperf, croak, grandpa, caleb,
Demonic), robotic (robosoft*, UniRobot, anikaRobot), a child's pitch (zac), or that clip or drone
even at reduced volume (Jacky, antonio, iven, ed, paul, Marco, AnxiousAndy), plus klatt2 (breathy,
mostly unvoiced) and "fast"/"Mr serious" (duplicates of the default with another name). All voices
use volume :data:`VOLUME` (60), where none of the kept variants clips.

Another pool, ``"flite"``, holds CMU Flite's four voices of real people (``speechseq.text.flite``; English
only), which a corpus can add to its training voices (``EmbeddedCorpusConfig.flite_voices``).

>>> voices = sample_voices(3, seed=0, pool="train")
>>> [v.speaker for v in voices] == [v.speaker for v in sample_voices(3, seed=0, pool="train")]
True
>>> CANONICAL_VOICES["es"].espeak_name("es")
'es'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from speechseq.errors import ConfigError
from speechseq.text import espeak, flite

VOLUME = 60
LANGUAGE_VOICES = {"en": "en-us", "es": "es"}

TRAIN_VARIANTS: tuple[str, ...] = (
    "m1", "m2", "m3", "m4", "m5", "f1", "f2", "f3", "klatt3", "klatt4",
    "Alex", "Annie", "Gene", "Lee", "Mike", "Nguyen", "adam", "aunty", "belinda", "benjamin",
    "boris", "david", "edward", "grandma", "kaukovalta", "linda", "max", "michel", "norbert",
    "quincy", "rob", "robert", "steph", "travis",
)
UNSEEN_VARIANTS: tuple[str, ...] = (
    "m6", "m7", "m8", "f4", "f5", "klatt", "klatt5", "klatt6",
    "Alicia", "Andrea", "Andy", "Denis", "Diogo", "Henrique", "Hugo", "Mario", "Michael", "Reed",
    "RicishayMax", "Storm", "Tweaky", "anika", "announcer", "edward2", "gustave", "ian", "iven2",
    "iven3", "john", "marcelo", "miguel", "mike2", "pablo", "pedro", "sandro", "shelby", "steph2",
    "victor",
)


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker. ``variant`` "" is espeak's default voice of each language.

    >>> v = Voice("tr00_m3", "m3", pitch=40, pitch_range=60, rate=170)
    >>> v.espeak_name("en")
    'en-us+m3'
    >>> wave = v.render("the cat eats", "en")   # (S,) float32 at 22050 Hz
    >>> wave.dtype.name, 0.3 < len(wave) / 22050 < 3
    ('float32', True)
    """

    speaker: str
    variant: str
    pitch: int
    pitch_range: int
    rate: int
    word_gap: int = 0
    volume: int = VOLUME
    engine: Literal["espeak", "flite"] = "espeak"  # "flite": ``variant`` is a Flite voice, English only

    def espeak_name(self, lang: str) -> str:
        """The espeak voice name for ``lang``: "en-us+m3", or "es" for the default variant."""
        try:
            base = LANGUAGE_VOICES[lang]
        except KeyError:
            raise espeak.UnknownVoiceError(
                f"no espeak voice for language {lang!r}; known: {sorted(LANGUAGE_VOICES)}") from None
        return f"{base}+{self.variant}" if self.variant else base

    def render(self, text: str, lang: str) -> np.ndarray:
        """Speak ``text`` in ``lang``: (S,) float32 waveform at 22050 Hz, untrimmed."""
        if self.engine == "flite":
            if lang != "en":
                raise ConfigError(f"voice {self.speaker}: Flite voices speak English only, not {lang!r}")
            # espeak's scales mapped onto Flite's: pitch 50 is the voice's own F0 (35-65 -> x0.84-1.19),
            # rate 175 words/min its own tempo. Pitch range and word gap have no Flite counterpart here.
            return flite.synthesize(text, self.variant, pitch=2.0 ** ((self.pitch - 50) / 60),
                                    stretch=175.0 / self.rate)
        return espeak.synthesize(text, self.espeak_name(lang), rate=self.rate, pitch=self.pitch,
                                 pitch_range=self.pitch_range, volume=self.volume,
                                 word_gap=self.word_gap)

    def params(self) -> dict[str, int | str]:
        """Voice parameters as a flat dict (for dataset columns and cache keys).

        ``engine`` is left out for espeak voices: the field is newer than the caches, whose keys stay.
        """
        params = asdict(self)
        if self.engine == "espeak":
            del params["engine"]
        return params


@dataclass(frozen=True)
class VoiceRegion:
    """Parameter ranges a pool samples from: each entry is a list of inclusive (low, high) intervals."""

    pitch: tuple[tuple[int, int], ...]
    pitch_range: tuple[tuple[int, int], ...]
    rate: tuple[tuple[int, int], ...]
    word_gap: tuple[tuple[int, int], ...]

    def sample(self, rng: np.random.Generator) -> dict[str, int]:
        """One value per parameter: an interval is chosen by its width, then a value uniformly in it."""
        out = {}
        for name in ("pitch", "pitch_range", "rate", "word_gap"):
            intervals = getattr(self, name)
            widths = np.array([high - low + 1 for low, high in intervals], dtype=float)
            low, high = intervals[int(rng.choice(len(intervals), p=widths / widths.sum()))]
            out[name] = int(rng.integers(low, high + 1))
        return out

    def contains(self, voice: Voice) -> bool:
        return all(any(low <= getattr(voice, name) <= high for low, high in getattr(self, name))
                   for name in ("pitch", "pitch_range", "rate", "word_gap"))


TRAIN_REGION = VoiceRegion(pitch=((35, 65),), pitch_range=((35, 75),), rate=((150, 195),),
                           word_gap=((0, 1),))
UNSEEN_REGION = VoiceRegion(pitch=((20, 32), (68, 80)), pitch_range=((15, 32), (78, 95)),
                            rate=((130, 145), (200, 215)), word_gap=((2, 3),))
# Pool -> (variants, prosody region, speaker-id prefix, random stream, engine). The stream is the pool's own,
# fixed number, so that adding a pool never changes the voices (and the corpora) of the others.
POOLS = {"train": (TRAIN_VARIANTS, TRAIN_REGION, "tr", 0, "espeak"),
         "unseen": (UNSEEN_VARIANTS, UNSEEN_REGION, "un", 1, "espeak"),
         # Every vocal tract (variant) of both pools with the training region's prosody: more voices to
         # pre-train on where the corpus's own unseen-voice test does not matter (its variants are then heard).
         "all": (TRAIN_VARIANTS + UNSEEN_VARIANTS, TRAIN_REGION, "tr", 2, "espeak"),
         # Flite's voices of real people (English only), with the training region's prosody.
         "flite": (flite.VOICES, TRAIN_REGION, "fl", 3, "flite")}

# The fixed target voice of TTS and speech-to-speech translation: espeak's default of each language.
CANONICAL_VOICES = {
    lang: Voice("canonical", "", pitch=50, pitch_range=50, rate=165) for lang in LANGUAGE_VOICES
}


def sample_voices(n: int, seed: int, pool: str = "train") -> list[Voice]:
    """``n`` voices from ``pool`` ("train", "unseen", "all" or "flite"), deterministic for ``seed``.

    Variants are dealt from a shuffled pool, so all variants are used before any repeats (a
    repeated variant gets other parameters). Speaker ids are "tr00_m3", "un04_Andrea", ...
    """
    if pool not in POOLS:
        raise ConfigError(f"unknown voice pool {pool!r}; expected one of {sorted(POOLS)}")
    variants, region, prefix, stream, engine = POOLS[pool]
    rng = np.random.default_rng([seed, stream])
    order: list[str] = []
    while len(order) < n:
        order += [variants[i] for i in rng.permutation(len(variants))]
    return [Voice(f"{prefix}{i:02d}_{variant}", variant, **region.sample(rng), engine=engine)
            for i, variant in enumerate(order[:n])]
