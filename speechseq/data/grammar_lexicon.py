"""The bilingual lexicon of the grammar: nouns, adjectives, verbs, names, places and times.

The word lists live in ``grammar_tables`` (one lemma a line); ``build_lexicon`` parses them into
frozen dataclasses and fills in regular plurals and English verb forms.

Semantic *tags* keep sentences sensible: an adjective applies to nouns sharing one of its tags
("red" needs ``col``), a verb takes objects sharing one of its object tags ("drink" needs ``drink``),
and a verb's place tags restrict where it happens ("swim" needs ``water``). Noun tags: person, animal,
food, drink, mass (uncountable), sweet, cook, make, read, write, thing (a portable object), container,
open, wash, clean, break, fix, paint, draw, wear, col (has a colour), vehicle, drive, long, tall,
place, building, room, outdoor, city, water, wet (river, lake, pool), cross, sell, language, song,
music.

>>> lex = LEXICON
>>> lex.nouns["house"].es, lex.nouns["house"].gender, lex.adjectives["red"].forms
('casa', 'f', ('rojo', 'roja', 'rojos', 'rojas'))
>>> len(lex.lemma_keys()) > 300
True
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from speechseq.data.grammar_morph import (
    SpanishVerb,
    adjective_forms_es,
    past_en,
    plural_en,
    plural_es,
    third_singular_en,
)
from speechseq.data.grammar_tables import (
    ADJECTIVES,
    HOURS_EN,
    HOURS_ES,
    IRREGULAR_VERBS,
    MONTHS,
    NAMES,
    NOUNS,
    PROPER_PLACES,
    TIMES,
    VERBS,
)


@dataclass(frozen=True)
class Noun:
    """A countable or mass noun; places carry the English locative preposition (in/at/on)."""

    key: str
    en: str
    en_pl: str
    es: str
    es_pl: str
    gender: str
    tags: frozenset[str]
    en_loc: str | None = None

    @property
    def mass(self) -> bool:
        return "mass" in self.tags

    @property
    def bare(self) -> bool:
        """Languages take no article in either language ("she speaks french" -> "ella habla francés")."""
        return "language" in self.tags


@dataclass(frozen=True)
class Adjective:
    """An adjective: its four Spanish forms (m sg, f sg, m pl, f pl) and the copula it takes."""

    key: str
    en: str
    forms: tuple[str, str, str, str]
    copula: str
    tags: frozenset[str]

    def applies_to(self, noun: Noun) -> bool:
        return bool(self.tags & noun.tags)


@dataclass(frozen=True)
class Verb:
    """A verb with its English forms, its Spanish conjugation and its argument frames."""

    key: str
    en: str
    en_3sg: str
    en_past: str
    particle: str
    es: SpanishVerb
    frames: frozenset[str]
    object_tags: frozenset[str]
    place_tags: frozenset[str]
    personal_a: bool = False
    stative: bool = False
    es_prep: str = ""

    def takes_object(self, noun: Noun) -> bool:
        return "tr" in self.frames and bool(self.object_tags & noun.tags)

    def allows_place(self, tags: frozenset[str]) -> bool:
        return not self.place_tags or bool(self.place_tags & tags)


@dataclass(frozen=True)
class NameEntry:
    key: str
    en: str
    es: str
    gender: str


@dataclass(frozen=True)
class ProperPlace:
    key: str
    en: str
    es: str


@dataclass(frozen=True)
class TimeExpr:
    """A time adverbial and the tenses it can go with ("yesterday" only with the past)."""

    key: str
    en: str
    es: str
    tenses: frozenset[str]


_FLAGS = ("pa", "con", "st")


def _rows(table: str) -> list[list[str]]:
    return [line.split() for line in table.strip().splitlines() if line.strip()]


def _words(token: str) -> str:
    return token.replace("_", " ")


def _parse_noun(cols: list[str]) -> Noun:
    en, _, en_pl = cols[0].partition("/")
    es, _, es_pl = cols[1].partition("/")
    loc = cols[4][1:] if len(cols) > 4 else None
    return Noun(key=en, en=_words(en), en_pl=_words(en_pl or plural_en(en)), es=es,
                es_pl=es_pl or plural_es(es), gender=cols[2], tags=frozenset(cols[3].split(",")),
                en_loc=loc)


def _parse_adjective(cols: list[str]) -> Adjective:
    es, _, es_pl = cols[1].partition("/")
    return Adjective(key=cols[0], en=cols[0], forms=adjective_forms_es(es, es_pl or None),
                     copula=cols[2], tags=frozenset(cols[3].split(",")))


def _parse_verb(cols: list[str]) -> Verb:
    head, _, particle = cols[0].partition("+")
    base, _, past = head.partition("/")
    inf, _, change = cols[1].partition(":")
    spanish = IRREGULAR_VERBS.get(inf) or SpanishVerb(inf, stem_change=change or None)
    rest = cols[4:]
    place_tags = frozenset(rest[0].split(",")) if rest and rest[0] not in _FLAGS else frozenset()
    flags = set(rest)
    return Verb(key=base, en=base, en_3sg=third_singular_en(base), en_past=past or past_en(base),
                particle=particle, es=spanish, frames=frozenset(cols[2].split(",")),
                object_tags=frozenset() if cols[3] == "-" else frozenset(cols[3].split(",")),
                place_tags=place_tags, personal_a="pa" in flags, stative="st" in flags,
                es_prep="con" if "con" in flags else "")


def _parse_times() -> list[TimeExpr]:
    every = frozenset(("present", "past", "future"))
    out = []
    for line in TIMES.strip().splitlines():
        key, en, es, tenses = line.split("|")
        out.append(TimeExpr(key, en, es, every if tenses == "*" else frozenset(tenses.split(","))))
    out += [TimeExpr(m_en, "in " + m_en, "en " + m_es, every) for m_en, m_es in MONTHS]
    for h, (h_en, h_es) in enumerate(zip(HOURS_EN, HOURS_ES), start=1):
        art = "la" if h == 1 else "las"
        out.append(TimeExpr(f"{h}h", f"at {h_en} o'clock", f"a {art} {h_es}", every))
        out.append(TimeExpr(f"{h}h30", f"at half past {h_en}", f"a {art} {h_es} y media", every))
    return out


@dataclass(frozen=True)
class Lexicon:
    """All entries, keyed by their English lemma (unique within each part of speech)."""

    nouns: dict[str, Noun]
    adjectives: dict[str, Adjective]
    verbs: dict[str, Verb]
    names: dict[str, NameEntry]
    proper_places: dict[str, ProperPlace]
    times: dict[str, TimeExpr]

    def __hash__(self) -> int:
        return id(self)

    @cached_property
    def places(self) -> list[Noun]:
        return [n for n in self.nouns.values() if "place" in n.tags]

    def lemma_keys(self) -> list[str]:
        """Every content lemma as a typed key ("n:cat", "a:red", "v:eat", ...)."""
        groups = (("n", self.nouns), ("a", self.adjectives), ("v", self.verbs),
                  ("name", self.names), ("p", self.proper_places), ("t", self.times))
        return [f"{prefix}:{key}" for prefix, table in groups for key in table] + ["p:home"]


def build_lexicon() -> Lexicon:
    """Parse the tables above into a :class:`Lexicon` (checks that keys are unique)."""
    nouns = [_parse_noun(c) for c in _rows(NOUNS)]
    adjectives = [_parse_adjective(c) for c in _rows(ADJECTIVES)]
    verbs = [_parse_verb(c) for c in _rows(VERBS)]
    names = [NameEntry(c[0], c[0], c[1], c[2]) for c in _rows(NAMES)]
    places = [ProperPlace(c[0], _words(c[0]), _words(c[1])) for c in _rows(PROPER_PLACES)]
    tables = {}
    for label, entries in (("noun", nouns), ("adjective", adjectives), ("verb", verbs),
                           ("name", names), ("place", places), ("time", _parse_times())):
        table = {e.key: e for e in entries}
        if len(table) != len(entries):
            raise ValueError(f"duplicate {label} key in the lexicon")
        tables[label] = table
    return Lexicon(tables["noun"], tables["adjective"], tables["verb"], tables["name"],
                   tables["place"], tables["time"])


LEXICON = build_lexicon()
