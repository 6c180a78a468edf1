"""A compositional English–Spanish grammar: sentence specifications and their realisation in both languages.

A :class:`SentenceSpec` is a language-neutral description (who does what to whom, where, when, in which
tense); :func:`realize` turns it into a :class:`Sentence` holding the English text, its correct Spanish
translation, the content lemmas used and the *combinations* (adjective+noun, verb+object) it contains,
so that corpus splits can hold combinations out. Random specs come from ``grammar_sample``; the
held-out split from ``grammar_split``.

Texts are normalised as ASR targets are: lower case, no punctuation, numbers in words. The only
apostrophe is the one inside "o'clock". Conventions where English is ambiguous (one Spanish form is
always chosen, so translation is a function): "you" is *tú*; "they" is *ellos*; "i", "you", "we",
"they" agree in the masculine; subject pronouns are kept in Spanish (*yo como*), which is grammatical
and keeps the two sentences word-aligned; the English past is the preterite for actions and the
imperfect for *ser*/*estar* descriptions and for stative verbs (have, want, need, know, remember,
understand: *tenía*, *quería*).

>>> spec = SentenceSpec(
...     kind="action", subject=NounPhrase("woman", adj="tall"), verb="see", tense="past",
...     obj=NounPhrase("car", count=2, adj="red"), place=PlacePhrase("park"), time="monday")
>>> s = realize(spec)
>>> s.en
'the tall woman saw two red cars in the park on monday'
>>> s.es
'la mujer alta vio dos coches rojos en el parque el lunes'
>>> s.pairs
(('a:tall', 'n:woman'), ('a:red', 'n:car'), ('v:see', 'n:car'))
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Union

from speechseq.data.grammar_lexicon import LEXICON, Lexicon, Noun, Verb
from speechseq.data.grammar_morph import (
    agree_es,
    conjugate_es,
    contract_es,
    indefinite_en,
    number_en,
    number_es,
)
from speechseq.data.grammar_tables import COPULAS, PRONOUNS
from speechseq.errors import SpeechSeqError

GRAMMAR_VERSION = "2"  # bump whenever a change alters any generated sentence (it keys corpus caches)

KINDS = ("action", "be_adj", "be_place", "there_is")
RELATIONS_EN = {"near": "near", "behind": "behind", "next_to": "next to", "in_front_of": "in front of"}
RELATIONS_ES = {"in": "en", "near": "cerca de", "behind": "detrás de", "next_to": "al lado de",
                "in_front_of": "delante de"}
# Determiner -> (English sg, English pl, Spanish m sg, f sg, m pl, f pl); "" where it does not exist.
DETERMINERS: dict[str, tuple[str, ...]] = {
    "the": ("the", "the", "el", "la", "los", "las"),
    "a": ("a", "", "un", "una", "", ""),
    "some": ("", "some", "", "", "unos", "unas"),
    "my": ("my", "my", "mi", "mi", "mis", "mis"),
    "your": ("your", "your", "tu", "tu", "tus", "tus"),
    "his": ("his", "his", "su", "su", "sus", "sus"),
    "her": ("her", "her", "su", "su", "sus", "sus"),
    "our": ("our", "our", "nuestro", "nuestra", "nuestros", "nuestras"),
    "their": ("their", "their", "su", "su", "sus", "sus"),
    "this": ("this", "these", "este", "esta", "estos", "estas"),
    "that": ("that", "those", "ese", "esa", "esos", "esas"),
    "none": ("", "", "", "", "", ""),
}
_BE_EN = {"present": ("am", "are", "is", "are", "are"), "past": ("was", "were", "was", "were", "were")}
_PERSON_INDEX = {"1sg": 0, "2sg": 1, "3sg": 2, "1pl": 3, "3pl": 4}
_SPANISH_TENSE_OF_COPULA = {"present": "present", "past": "imperfect", "future": "future"}
_EXISTENTIAL_ES = {"present": "hay", "past": "había", "future": "habrá"}

Pair = tuple[str, str]


class GrammarError(SpeechSeqError, ValueError):
    """A sentence specification the grammar cannot realise (unknown lemma, impossible agreement)."""


@dataclass(frozen=True)
class NounPhrase:
    """A noun with determiner, number, optional adjective and optional count (then ``det`` is ignored).

    ``det`` is one of :data:`DETERMINERS`; ``count`` 1..99 makes a numbered phrase ("two cats").

    >>> " ".join(realize_noun_phrase(NounPhrase("house", det="the", plural=True, adj="red")).es)
    'las casas rojas'
    """

    noun: str
    det: str = "the"
    plural: bool = False
    adj: str | None = None
    count: int | None = None

    @property
    def is_plural(self) -> bool:
        """Plural when counted above one, with "some" (which has no singular), or when asked."""
        return self.count > 1 if self.count is not None else (self.plural or self.det == "some")


@dataclass(frozen=True)
class NameRef:
    """A person's name ("maria" -> "maría")."""

    name: str


@dataclass(frozen=True)
class PronounRef:
    """A subject pronoun: one of i, you, he, she, we, they."""

    pronoun: str


@dataclass(frozen=True)
class PlacePhrase:
    """A place: a place noun (with determiner/adjective), a city/country, or "home".

    ``relation``: in (the noun's own preposition: in/at/on), near, behind, next_to, in_front_of
    (locatives); to (goal of go/come/...), from (what one leaves), into (what one enters).
    """

    place: str
    relation: str = "in"
    det: str = "the"
    adj: str | None = None


Subject = Union[NounPhrase, NameRef, PronounRef]


@dataclass(frozen=True)
class SentenceSpec:
    """Everything that decides a sentence; ``kind`` is one of :data:`KINDS`.

    action: subject verb [obj] [place] [time]; be_adj: subject is adj; be_place: subject is at place;
    there_is: there is obj place. ``tense`` is present, past or future.
    """

    kind: str
    subject: Subject | None = None
    verb: str | None = None
    tense: str = "present"
    negated: bool = False
    obj: NounPhrase | NameRef | None = None
    place: PlacePhrase | None = None
    adj: str | None = None
    time: str | None = None


@dataclass(frozen=True)
class Sentence:
    """One generated sentence pair.

    ``lemmas`` are typed content-lemma keys ("n:cat", "a:red", "v:eat", "name:maria", "p:madrid",
    "t:monday"); ``pairs`` the combinations (("a:red", "n:car") and ("v:eat", "n:apple")) that the
    held-out split reasons about; ``features`` the grammatical choices (kind, tense, person, negated).
    """

    en: str
    es: str
    lemmas: tuple[str, ...]
    pairs: tuple[Pair, ...]
    features: dict[str, str] = field(compare=False)
    spec: SentenceSpec = field(compare=False)

    @property
    def sentence_id(self) -> str:
        """A stable id from the two texts (independent of sampling order)."""
        return "s" + hashlib.sha1(f"{self.en}|{self.es}".encode()).hexdigest()[:12]


@dataclass
class _Phrase:
    """Words of one constituent in both languages plus what agreement needs."""

    en: list[str]
    es: list[str]
    gender: str = "m"
    plural: bool = False
    person: str = "3sg"
    lemmas: list[str] = field(default_factory=list)
    pairs: list[Pair] = field(default_factory=list)


def _noun(lex: Lexicon, key: str) -> Noun:
    try:
        return lex.nouns[key]
    except KeyError:
        raise GrammarError(f"unknown noun {key!r}") from None


def realize_noun_phrase(np_: NounPhrase, lex: Lexicon = LEXICON) -> _Phrase:
    """English and Spanish words of a noun phrase; Spanish adjectives follow the noun and agree."""
    noun = _noun(lex, np_.noun)
    plural = np_.is_plural
    if plural and noun.mass:
        raise GrammarError(f"mass noun {noun.key!r} cannot be plural")
    en_noun, es_noun = (noun.en_pl, noun.es_pl) if plural else (noun.en, noun.es)
    en_adj, es_adj, pairs = [], [], []
    if np_.adj is not None:
        adj = lex.adjectives.get(np_.adj)
        if adj is None:
            raise GrammarError(f"unknown adjective {np_.adj!r}")
        if not adj.applies_to(noun):
            raise GrammarError(f"adjective {adj.key!r} does not apply to {noun.key!r}")
        en_adj, es_adj = [adj.en], [agree_es(adj.forms, noun.gender, plural)]
        pairs.append((f"a:{adj.key}", f"n:{noun.key}"))
    if np_.count is not None:
        en_det, es_det = number_en(np_.count), number_es(np_.count, noun.gender)
    else:
        forms = DETERMINERS.get(np_.det)
        if forms is None:
            raise GrammarError(f"unknown determiner {np_.det!r}")
        en_det = forms[1 if plural else 0]
        es_det = forms[2 + (2 if plural else 0) + (noun.gender == "f")]
        if np_.det == "none" and not (plural or noun.mass or noun.bare):
            raise GrammarError(f"a bare singular count noun ({noun.key!r}) needs a determiner")
        if np_.det != "none" and not (en_det and es_det):
            raise GrammarError(f"determiner {np_.det!r} has no {'plural' if plural else 'singular'}")
        if np_.det == "a":
            en_det = indefinite_en((en_adj or [en_noun])[0])
    en = [w for w in (en_det, *en_adj, en_noun) if w]
    es = [w for w in (es_det, es_noun, *es_adj) if w]
    lemmas = [f"n:{noun.key}"] + ([f"a:{np_.adj}"] if np_.adj else [])
    return _Phrase(en, es, noun.gender, plural, "3pl" if plural else "3sg", lemmas, pairs)


def _realize_subject(subject: Subject, lex: Lexicon) -> _Phrase:
    if isinstance(subject, NounPhrase):
        return realize_noun_phrase(subject, lex)
    if isinstance(subject, NameRef):
        entry = lex.names.get(subject.name)
        if entry is None:
            raise GrammarError(f"unknown name {subject.name!r}")
        return _Phrase([entry.en], [entry.es], entry.gender, lemmas=[f"name:{entry.key}"])
    if subject.pronoun not in PRONOUNS:
        raise GrammarError(f"unknown pronoun {subject.pronoun!r}")
    person, es, gender = PRONOUNS[subject.pronoun]
    return _Phrase([subject.pronoun], [es], gender, person.endswith("pl"), person)


def _place_tags(place: PlacePhrase, lex: Lexicon) -> frozenset[str]:
    """Tags used to check a place against a verb; cities/countries count as ``city``, home as ``building``."""
    if place.place == "home":
        return frozenset({"building"})
    if place.place in lex.proper_places:
        return frozenset({"city"})
    return _noun(lex, place.place).tags


def realize_place(place: PlacePhrase, lex: Lexicon = LEXICON, en_goal: str = "to") -> _Phrase:
    """A place phrase. ``en_goal`` is the English goal preposition ("to"; "arrive" uses "at"/"in")."""
    rel = place.relation
    if place.place == "home":
        en = {"in": ["at", "home"], "to": ["home"], "from": ["home"]}.get(rel)
        es = {"in": ["en", "casa"], "to": ["a", "casa"], "from": ["de", "casa"]}.get(rel)
        if en is None or es is None:
            raise GrammarError(f"relation {rel!r} is not used with home")
        return _Phrase(en, es, lemmas=["p:home"])
    proper = lex.proper_places.get(place.place)
    if proper is not None:
        if rel not in ("in", "to", "from"):
            raise GrammarError(f"relation {rel!r} is not used with {proper.key!r}")
        en_prep = {"in": ["in"], "to": [en_goal if en_goal == "to" else "in"], "from": []}[rel]
        es_prep = {"in": "en", "to": "a", "from": "de"}[rel]
        return _Phrase(en_prep + [proper.en], [es_prep, proper.es], lemmas=[f"p:{proper.key}"])
    noun = _noun(lex, place.place)
    if noun.en_loc is None:
        raise GrammarError(f"noun {noun.key!r} is not a place")
    np_ = realize_noun_phrase(NounPhrase(noun.key, det=place.det, adj=place.adj), lex)
    if rel in ("in", *RELATIONS_EN):
        en_prep, es_prep = RELATIONS_EN.get(rel, noun.en_loc), RELATIONS_ES[rel]
    elif rel == "to":
        goal = en_goal if en_goal == "to" else ("in" if "city" in noun.tags else "at")
        en_prep, es_prep = goal, "a"
    elif rel in ("from", "into"):
        en_prep, es_prep = "", "de" if rel == "from" else "en"
    else:
        raise GrammarError(f"unknown place relation {rel!r}")
    return _Phrase(en_prep.split() + np_.en, es_prep.split() + np_.es, lemmas=np_.lemmas,
                   pairs=np_.pairs)


def _verb_en(verb: Verb, person: str, tense: str, negated: bool) -> list[str]:
    """English verb group with do-support for negation: "does not eat", "did not look for"."""
    third = person == "3sg"
    if tense == "future":
        words = ["will", "not", verb.en] if negated else ["will", verb.en]
    elif negated:
        aux = "did" if tense == "past" else ("does" if third else "do")
        words = [aux, "not", verb.en]
    else:
        words = [verb.en_past if tense == "past" else (verb.en_3sg if third else verb.en)]
    return words + ([verb.particle] if verb.particle else [])


def _be_en(person: str, tense: str, negated: bool) -> list[str]:
    if tense == "future":
        return ["will", "not", "be"] if negated else ["will", "be"]
    return [_BE_EN[tense][_PERSON_INDEX[person]]] + (["not"] if negated else [])


def _copula_es(copula: str, person: str, tense: str, negated: bool) -> list[str]:
    """Spanish ser/estar; the English past of a description is the imperfect (era, estaba)."""
    form = conjugate_es(COPULAS[copula], _SPANISH_TENSE_OF_COPULA[tense], person)
    return (["no"] if negated else []) + [form]


def _object_phrase(spec: SentenceSpec, verb: Verb, lex: Lexicon) -> _Phrase:
    """The object with Spanish personal "a" (veo a la mujer) or "con" (hablo con maría)."""
    obj = spec.obj
    if isinstance(obj, NameRef):
        phrase = _realize_subject(obj, lex)
        is_person = True
    else:
        noun = _noun(lex, obj.noun)
        if not verb.takes_object(noun):
            raise GrammarError(f"verb {verb.key!r} does not take object {noun.key!r}")
        phrase = realize_noun_phrase(obj, lex)
        phrase.pairs.append((f"v:{verb.key}", f"n:{noun.key}"))
        is_person = "person" in noun.tags
    prep = verb.es_prep or ("a" if verb.personal_a and is_person else "")
    phrase.es = ([prep] if prep else []) + phrase.es
    return phrase


_MOTION = ("to", "from", "into")


def _check_frame(spec: SentenceSpec, verb: Verb) -> None:
    """Reject specs whose arguments do not fit the verb (an object for "sleep", no goal for "go")."""
    rel = spec.place.relation if spec.place is not None else None
    motion = [f for f in verb.frames if f in _MOTION]
    if motion:
        if rel != motion[0] or spec.obj is not None:
            raise GrammarError(f"verb {verb.key!r} needs a place with relation {motion[0]!r}")
        return
    if rel in _MOTION:
        raise GrammarError(f"verb {verb.key!r} does not take relation {rel!r}")
    if spec.obj is None and "in" not in verb.frames:
        raise GrammarError(f"verb {verb.key!r} needs an object")


def _predicate(spec: SentenceSpec, subj: _Phrase, lex: Lexicon) -> list[_Phrase]:
    """Verb group and complements (without subject, place and time) for each sentence kind."""
    if spec.kind == "action":
        verb = lex.verbs.get(spec.verb or "")
        if verb is None:
            raise GrammarError(f"unknown verb {spec.verb!r}")
        _check_frame(spec, verb)
        tense = "imperfect" if verb.stative and spec.tense == "past" else spec.tense
        es_verb = (["no"] if spec.negated else []) + [conjugate_es(verb.es, tense, subj.person)]
        parts = [_Phrase(_verb_en(verb, subj.person, spec.tense, spec.negated), es_verb,
                         lemmas=[f"v:{verb.key}"])]
        if spec.obj is not None:
            parts.append(_object_phrase(spec, verb, lex))
        return parts
    if spec.kind == "be_adj":
        adj = lex.adjectives.get(spec.adj or "")
        if adj is None:
            raise GrammarError(f"unknown adjective {spec.adj!r}")
        about = _noun(lex, spec.subject.noun).tags if isinstance(spec.subject, NounPhrase) else {"person"}
        if not adj.tags & about:
            raise GrammarError(f"adjective {adj.key!r} does not apply to the subject of {spec}")
        es = _copula_es(adj.copula, subj.person, spec.tense, spec.negated)
        pred = _Phrase(_be_en(subj.person, spec.tense, spec.negated) + [adj.en],
                       es + [agree_es(adj.forms, subj.gender, subj.plural)], lemmas=[f"a:{adj.key}"])
        if isinstance(spec.subject, NounPhrase):
            pred.pairs.append((f"a:{adj.key}", f"n:{spec.subject.noun}"))
        return [pred]
    if spec.kind == "be_place":
        if spec.place is None or spec.place.relation in _MOTION:
            raise GrammarError("be_place needs a locative place")
        es = _copula_es("estar", subj.person, spec.tense, spec.negated)
        return [_Phrase(_be_en(subj.person, spec.tense, spec.negated), es)]
    raise GrammarError(f"unknown sentence kind {spec.kind!r}; expected one of {KINDS}")


def _existential(spec: SentenceSpec, lex: Lexicon) -> list[_Phrase]:
    if not isinstance(spec.obj, NounPhrase) or spec.place is None:
        raise GrammarError("there_is needs a noun phrase obj and a place")
    obj = realize_noun_phrase(spec.obj, lex)
    if spec.tense == "future":
        en = ["there", "will", "be"]
    else:
        en = ["there", ("were" if obj.plural else "was") if spec.tense == "past"
              else ("are" if obj.plural else "is")]
    return [_Phrase(en, [_EXISTENTIAL_ES[spec.tense]]), obj]


def realize(spec: SentenceSpec, lex: Lexicon = LEXICON) -> Sentence:
    """Realise ``spec`` in English and Spanish (raises :class:`GrammarError` if it is not well formed)."""
    if spec.tense not in _SPANISH_TENSE_OF_COPULA:
        raise GrammarError(f"unknown tense {spec.tense!r}")
    if spec.kind == "there_is":
        parts, person = _existential(spec, lex), "3sg"
    else:
        if spec.subject is None:
            raise GrammarError(f"sentence kind {spec.kind!r} needs a subject")
        subj = _realize_subject(spec.subject, lex)
        parts, person = [subj] + _predicate(spec, subj, lex), subj.person
    if spec.place is not None:
        verb = lex.verbs.get(spec.verb or "")
        en_goal = "at" if verb is not None and verb.key == "arrive" else "to"
        parts.append(realize_place(spec.place, lex, en_goal))
    if spec.time is not None:
        time = lex.times.get(spec.time)
        if time is None:
            raise GrammarError(f"unknown time expression {spec.time!r}")
        parts.append(_Phrase(time.en.split(), time.es.split(), lemmas=[f"t:{time.key}"]))
    en = " ".join(w for p in parts for w in p.en)
    es = " ".join(contract_es([w for p in parts for w in p.es]))
    features = {"kind": spec.kind, "tense": spec.tense, "person": person,
                "negated": str(spec.negated).lower()}
    return Sentence(en, es, tuple(dict.fromkeys(l for p in parts for l in p.lemmas)),
                    tuple(pr for p in parts for pr in p.pairs), features, spec)
