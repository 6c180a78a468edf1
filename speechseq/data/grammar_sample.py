"""Random sentence specifications for the bilingual grammar (deterministic for a ``numpy.random.Generator``).

The sampler only builds specs that make sense: objects fit their verb's object tags, adjectives fit
their noun, places fit the verb ("swim" in water), times fit the tense ("yesterday" with the past).
:meth:`GrammarSampler.spec_with_pair` builds a sentence around one given combination, which is how the
held-out test sentences are made.

>>> import numpy as np
>>> sampler = GrammarSampler()
>>> a = sampler.sentence(np.random.default_rng(7))
>>> b = sampler.sentence(np.random.default_rng(7))
>>> (a.en, a.es) == (b.en, b.es)
True
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from speechseq.data.grammar import (
    NameRef,
    NounPhrase,
    Pair,
    PlacePhrase,
    PronounRef,
    Sentence,
    SentenceSpec,
    Subject,
    realize,
)
from speechseq.data.grammar_lexicon import LEXICON, Lexicon, Noun, Verb
from speechseq.data.grammar_tables import PRONOUNS
from speechseq.data.grammar_morph import TENSES

KIND_WEIGHTS = {"action": 0.62, "be_adj": 0.16, "be_place": 0.10, "there_is": 0.12}
TENSE_WEIGHTS = {"present": 0.4, "past": 0.3, "future": 0.3}
SUBJECT_DETS = {"the": 0.45, "my": 0.08, "your": 0.04, "his": 0.04, "her": 0.04, "our": 0.04,
                "their": 0.03, "this": 0.08, "that": 0.07, "num": 0.13}
OBJECT_DETS = {"the": 0.25, "a": 0.15, "my": 0.06, "your": 0.04, "his": 0.03, "her": 0.03,
               "our": 0.03, "their": 0.02, "this": 0.07, "that": 0.05, "some": 0.06, "num": 0.17,
               "none": 0.04}
MASS_DETS = {"the": 0.4, "my": 0.15, "this": 0.1, "that": 0.05, "none": 0.3}
DEFINITE_MASS_DETS = {"the": 0.6, "my": 0.2, "this": 0.1, "that": 0.1}  # subjects: "el pan", never "pan"
PLACE_DETS = {"the": 0.75, "my": 0.08, "your": 0.04, "our": 0.05, "this": 0.04, "that": 0.04}
THERE_DETS = {"a": 0.4, "some": 0.2, "num": 0.4}
P_ADJ, P_PLURAL, P_NEGATED, P_TIME, P_PLACE, P_NAME = 0.35, 0.35, 0.15, 0.35, 0.45, 0.15
LOCATIVES = ("near", "behind", "next_to", "in_front_of")
# Verbs an animal may be the subject of ("the dog sleeps", not "the dog reads a letter").
ANIMAL_VERBS = frozenset("eat drink see want find look hear sleep run swim play walk rest go come "
                         "return enter leave".split())


def _pick(rng: np.random.Generator, items: list | tuple):
    return items[int(rng.integers(len(items)))]


def _weighted(rng: np.random.Generator, weights: dict[str, float]) -> str:
    """A key of ``weights`` drawn with probability proportional to its value (one uniform draw)."""
    keys = list(weights)
    cumulative = np.cumsum(list(weights.values()))
    return keys[min(int(np.searchsorted(cumulative, rng.random() * cumulative[-1], "right")), len(keys) - 1)]


def _count(rng: np.random.Generator, allow_one: bool) -> int:
    """Mostly small numbers, sometimes up to 99 (so that veintiún/veintiuna do occur)."""
    if allow_one and rng.random() < 0.06:
        return 1
    return int(rng.integers(2, 13)) if rng.random() < 0.7 else int(rng.integers(13, 100))


class GrammarSampler:
    """Draws :class:`SentenceSpec` s and realised :class:`Sentence` s from the lexicon.

    Holds only lookup tables computed once from the lexicon; all randomness comes from the generator
    passed to each call.

    >>> import numpy as np
    >>> s = GrammarSampler().spec_with_pair(np.random.default_rng(0), ("v:drink", "n:milk"))
    >>> ("v:drink", "n:milk") in realize(s).pairs
    True
    """

    def __init__(self, lexicon: Lexicon = LEXICON) -> None:
        self.lex = lexicon
        nouns = list(lexicon.nouns.values())
        self.persons = [n for n in nouns if "person" in n.tags]
        self.animals = [n for n in nouns if "animal" in n.tags]
        self.there_nouns = [n for n in nouns if n.tags & {"person", "animal", "thing", "vehicle", "food"}
                            and not n.mass]
        self.locatable = [n for n in nouns if n.tags & {"person", "animal", "thing", "vehicle"}]
        self.objects = {v.key: [n for n in nouns if v.takes_object(n)] for v in lexicon.verbs.values()}
        self.adjectives = {n.key: [a.key for a in lexicon.adjectives.values() if a.applies_to(n)]
                           for n in nouns}
        self.adj_nouns = {a.key: [n for n in nouns if a.applies_to(n) and not n.bare]
                          for a in lexicon.adjectives.values()}
        self.times = {t: [k for k, e in lexicon.times.items() if t in e.tenses] for t in TENSES}

    # --- phrases -------------------------------------------------------------------------------
    def _adj(self, rng: np.random.Generator, noun: Noun, p: float = P_ADJ) -> str | None:
        options = self.adjectives[noun.key]
        return _pick(rng, options) if options and not noun.bare and rng.random() < p else None

    def _noun_phrase(self, rng: np.random.Generator, noun: Noun, dets: dict[str, float],
                     adj: str | None = None, allow_one: bool = False) -> NounPhrase:
        if noun.bare:
            return NounPhrase(noun.key, det="none")
        if noun.mass:
            dets = MASS_DETS if "none" in dets else DEFINITE_MASS_DETS
        det = _weighted(rng, dets)
        adj = adj if adj is not None else self._adj(rng, noun)
        if det == "num":
            return NounPhrase(noun.key, adj=adj, count=_count(rng, allow_one))
        plural = det in ("some", "none") or (det != "a" and not noun.mass and rng.random() < P_PLURAL)
        return NounPhrase(noun.key, det=det, plural=plural and not noun.mass, adj=adj)

    def _subject(self, rng: np.random.Generator, verb: Verb | None = None,
                 noun: Noun | None = None, adj: str | None = None) -> Subject:
        if noun is None:
            r = rng.random()
            if r < 0.3:
                return PronounRef(_pick(rng, list(PRONOUNS)))
            if r < 0.3 + P_NAME:
                return NameRef(_pick(rng, list(self.lex.names)))
            animal_ok = verb is None or verb.key in ANIMAL_VERBS
            noun = _pick(rng, self.animals if animal_ok and rng.random() < 0.25 else self.persons)
        return self._noun_phrase(rng, noun, SUBJECT_DETS, adj=adj)

    def _place(self, rng: np.random.Generator, relation: str, verb: Verb | None = None,
               noun: Noun | None = None, adj: str | None = None) -> PlacePhrase | None:
        """A place for ``relation`` that ``verb`` allows, or None when there is none."""
        if noun is None:
            def allowed(tags: frozenset[str]) -> bool:
                return verb is None or verb.allows_place(tags)

            r = rng.random()
            if relation in ("in", "to", "from") and r < 0.12 and allowed(frozenset({"city"})):
                return PlacePhrase(_pick(rng, list(self.lex.proper_places)), relation)
            if relation in ("in", "to", "from") and r < 0.2 and allowed(frozenset({"building"})):
                return PlacePhrase("home", relation)
            pool = [n for n in self.lex.places if allowed(n.tags)
                    and (relation != "into" or n.tags & {"building", "room"})]
            if not pool:
                return None
            noun = _pick(rng, pool)
        # People do things *in* a lake only when the verb says so (swim); otherwise near it.
        wet = "wet" in noun.tags and (verb is None or "water" not in verb.place_tags)
        if relation == "in" and (wet or rng.random() < 0.25):
            relation = _pick(rng, LOCATIVES)
        det = _weighted(rng, PLACE_DETS)
        return PlacePhrase(noun.key, relation, det, adj if adj is not None else self._adj(rng, noun, 0.15))

    def _time(self, rng: np.random.Generator, tense: str) -> str | None:
        return _pick(rng, self.times[tense]) if rng.random() < P_TIME else None

    # --- sentences -----------------------------------------------------------------------------
    def _action(self, rng: np.random.Generator, verb: Verb, tense: str,
                obj: NounPhrase | NameRef | None = None, subject: Subject | None = None) -> SentenceSpec:
        motion = [f for f in verb.frames if f in ("to", "from", "into")]
        place = None
        if motion:
            place = self._place(rng, motion[0], verb)
        else:
            if obj is None and "tr" in verb.frames and ("in" not in verb.frames or rng.random() < 0.6):
                noun = _pick(rng, self.objects[verb.key])
                if "person" in noun.tags and rng.random() < P_NAME:
                    obj = NameRef(_pick(rng, list(self.lex.names)))
                else:
                    obj = self._noun_phrase(rng, noun, OBJECT_DETS, allow_one=True)
            # "visited the villages at our zoo" reads oddly: a place object takes no second place.
            obj_is_place = isinstance(obj, NounPhrase) and "place" in self.lex.nouns[obj.noun].tags
            p_place = 0.0 if obj_is_place else P_PLACE if obj is not None else 0.75
            place = self._place(rng, "in", verb) if rng.random() < p_place else None
        return SentenceSpec("action", subject or self._subject(rng, verb), verb.key, tense,
                            rng.random() < P_NEGATED, obj, place, None, self._time(rng, tense))

    def _be_adj(self, rng: np.random.Generator, tense: str, adj: str, noun: Noun | None = None) -> SentenceSpec:
        entry = self.lex.adjectives[adj]
        if noun is None and "person" in entry.tags and rng.random() < 0.45:
            subject: Subject = self._subject(rng)
            while isinstance(subject, NounPhrase):
                subject = self._subject(rng)
        else:
            noun = noun or _pick(rng, self.adj_nouns[adj])
            others = [a for a in self.adjectives[noun.key] if a != adj]
            extra = _pick(rng, others) if others and rng.random() < 0.15 else None
            subject = replace(self._subject(rng, noun=noun), adj=extra)
        # A lasting property (ser) does not hold "at five o'clock": only states (estar) get a time.
        time = self._time(rng, tense) if entry.copula == "estar" else None
        return SentenceSpec("be_adj", subject, None, tense, rng.random() < P_NEGATED, adj=adj, time=time)

    def _be_place(self, rng: np.random.Generator, tense: str) -> SentenceSpec:
        subject = self._subject(rng) if rng.random() < 0.4 else self._noun_phrase(
            rng, _pick(rng, self.locatable), SUBJECT_DETS)
        return SentenceSpec("be_place", subject, None, tense, rng.random() < P_NEGATED,
                            place=self._place(rng, "in"), time=self._time(rng, tense))

    def _there_is(self, rng: np.random.Generator, tense: str, noun: Noun | None = None,
                  adj: str | None = None) -> SentenceSpec:
        noun = noun or _pick(rng, self.there_nouns)
        obj = self._noun_phrase(rng, noun, THERE_DETS, adj=adj)
        return SentenceSpec("there_is", None, None, tense, False, obj, self._place(rng, "in"),
                            time=self._time(rng, tense))

    def spec(self, rng: np.random.Generator) -> SentenceSpec:
        """One random specification."""
        kind, tense = _weighted(rng, KIND_WEIGHTS), _weighted(rng, TENSE_WEIGHTS)
        if kind == "action":
            return self._action(rng, _pick(rng, list(self.lex.verbs.values())), tense)
        if kind == "be_adj":
            return self._be_adj(rng, tense, _pick(rng, list(self.lex.adjectives)))
        return self._be_place(rng, tense) if kind == "be_place" else self._there_is(rng, tense)

    def spec_with_pair(self, rng: np.random.Generator, pair: Pair) -> SentenceSpec:
        """A random specification that contains the combination ``pair`` (adj+noun or verb+object)."""
        first, noun = pair[0], self.lex.nouns[pair[1].removeprefix("n:")]
        tense = _weighted(rng, TENSE_WEIGHTS)
        if first.startswith("v:"):
            verb = self.lex.verbs[first.removeprefix("v:")]
            obj = self._noun_phrase(rng, noun, OBJECT_DETS, allow_one=True)
            return self._action(rng, verb, tense, obj=obj)
        adj = first.removeprefix("a:")
        slots = ["predicate"]
        verbs = [v for v in self.lex.verbs.values() if v.takes_object(noun)]
        slots += ["object"] if verbs else []
        slots += ["there"] if noun in self.there_nouns else []
        slots += ["subject"] if noun.tags & {"person", "animal"} else []
        slots += ["place"] if "place" in noun.tags else []
        slot = _pick(rng, slots)
        if slot == "predicate":
            return self._be_adj(rng, tense, adj, noun)
        if slot == "object":
            obj = self._noun_phrase(rng, noun, OBJECT_DETS, adj=adj, allow_one=True)
            return self._action(rng, _pick(rng, verbs), tense, obj=obj)
        if slot == "there":
            return self._there_is(rng, tense, noun, adj)
        if slot == "subject":
            verbs = [v for v in self.lex.verbs.values() if "animal" not in noun.tags or v.key in ANIMAL_VERBS]
            subject = self._noun_phrase(rng, noun, SUBJECT_DETS, adj=adj)
            return self._action(rng, _pick(rng, verbs), tense, subject=subject)
        place = self._place(rng, "in", noun=noun, adj=adj)
        return replace(self._be_place(rng, tense), place=place)

    def sentence(self, rng: np.random.Generator, avoid: frozenset[Pair] = frozenset(),
                 max_tries: int = 1000) -> Sentence:
        """A random sentence containing none of the combinations in ``avoid``."""
        for _ in range(max_tries):
            sentence = realize(self.spec(rng), self.lex)
            if avoid.isdisjoint(sentence.pairs):
                return sentence
        raise RuntimeError(f"no sentence avoiding {len(avoid)} combinations in {max_tries} tries")
