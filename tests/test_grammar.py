"""The bilingual grammar: hand-checked translations, agreement, determinism and the held-out split."""

from __future__ import annotations

import numpy as np
import pytest

from speechseq.data.grammar import (
    GrammarError,
    NameRef,
    NounPhrase,
    PlacePhrase,
    PronounRef,
    SentenceSpec,
    realize,
)
from speechseq.data.grammar_lexicon import LEXICON
from speechseq.data.grammar_morph import number_es
from speechseq.data.grammar_sample import OBJECT_DETS, SUBJECT_DETS, GrammarSampler
from speechseq.data.grammar_split import choose_held_out, make_sentence_splits, valid_pairs

NP, P = NounPhrase, PlacePhrase


def act(subject, verb, tense="present", **kw) -> SentenceSpec:
    return SentenceSpec("action", subject, verb, tense, **kw)


def me(pronoun: str) -> PronounRef:
    return PronounRef(pronoun)


# Each row: specification, English, Spanish (checked by hand against Spanish grammar).
TABLE = [
    (act(NP("woman", adj="tall"), "see", "past", obj=NP("car", count=2, adj="red"), place=P("park"),
         time="monday"),
     "the tall woman saw two red cars in the park on monday",
     "la mujer alta vio dos coches rojos en el parque el lunes"),
    (SentenceSpec("be_adj", NP("house", plural=True), adj="red"), "the houses are red", "las casas son rojas"),
    (act(me("i"), "paint", obj=NP("house", plural=True, adj="red")), "i paint the red houses",
     "yo pinto las casas rojas"),
    (SentenceSpec("there_is", obj=NP("house", count=21), place=P("city")),
     "there are twenty one houses in the city", "hay veintiuna casas en la ciudad"),
    (SentenceSpec("there_is", tense="past", obj=NP("dog", count=21), place=P("garden")),
     "there were twenty one dogs in the garden", "había veintiún perros en el jardín"),
    (SentenceSpec("there_is", tense="future", obj=NP("chair", count=31), place=P("kitchen")),
     "there will be thirty one chairs in the kitchen", "habrá treinta y una sillas en la cocina"),
    (act(me("we"), "go", "future", place=P("market", "to")), "we will go to the market",
     "nosotros iremos al mercado"),
    (act(me("she"), "leave", "past", place=P("station", "from")), "she left the station",
     "ella salió de la estación"),
    (act(NameRef("maria"), "leave", place=P("park", "from")), "maria leaves the park", "maría sale del parque"),
    (act(me("they"), "live", place=P("madrid")), "they live in madrid", "ellos viven en madrid"),
    (act(me("i"), "call", "past", obj=NameRef("lucia")), "i called lucia", "yo llamé a lucía"),
    (act(me("he"), "see", obj=NP("man")), "he sees the man", "él ve al hombre"),
    (act(NP("boy", det="my"), "talk", "future", obj=NP("teacher")), "my boy will talk to the teacher",
     "mi niño hablará con el profesor"),
    (act(me("she"), "eat", negated=True, obj=NP("apple", det="a")), "she does not eat an apple",
     "ella no come una manzana"),
    (act(me("we"), "drink", "past", negated=True, obj=NP("milk", det="none")), "we did not drink milk",
     "nosotros no bebimos leche"),
    (act(me("you"), "arrive", "future", place=P("station", "to"), time="3h"),
     "you will arrive at the station at three o'clock", "tú llegarás a la estación a las tres"),
    (act(me("i"), "eat", "past", time="1h"), "i ate at one o'clock", "yo comí a la una"),
    (act(me("we"), "run", "future", place=P("park"), time="1h30"),
     "we will run in the park at half past one", "nosotros correremos en el parque a la una y media"),
    (SentenceSpec("be_adj", me("she"), tense="past", adj="tired"), "she was tired", "ella estaba cansada"),
    (SentenceSpec("be_adj", NP("cow", det="this", plural=True), tense="future", adj="big"),
     "these cows will be big", "estas vacas serán grandes"),
    (SentenceSpec("be_adj", NP("shoe", det="my", plural=True), adj="brown"), "my shoes are brown",
     "mis zapatos son marrones"),
    (SentenceSpec("be_adj", NP("teacher", plural=True), adj="young"), "the teachers are young",
     "los profesores son jóvenes"),
    (SentenceSpec("be_place", NameRef("carlos"), negated=True, place=P("home")), "carlos is not at home",
     "carlos no está en casa"),
    (SentenceSpec("be_place", NP("cat"), place=P("river", "near")), "the cat is near the river",
     "el gato está cerca del río"),
    (act(me("he"), "make", "past", obj=NP("cake", det="a")), "he made a cake", "él hizo un pastel"),
    (act(me("i"), "have", obj=NP("dog", count=2, adj="black")), "i have two black dogs",
     "yo tengo dos perros negros"),
    (act(me("i"), "want", "past", obj=NP("bicycle", det="a", adj="new")), "i wanted a new bicycle",
     "yo quería una bicicleta nueva"),
    (act(me("he"), "sleep", "past", place=P("hotel")), "he slept in the hotel", "él durmió en el hotel"),
    (act(me("i"), "look", "past", obj=NP("key", det="my", plural=True)), "i looked for my keys",
     "yo busqué mis llaves"),
    (act(me("she"), "order", "past", obj=NP("coffee", det="none")), "she ordered coffee", "ella pidió café"),
    (act(me("they"), "read", "past", obj=NP("newspaper")), "they read the newspaper",
     "ellos leyeron el periódico"),
    (act(NP("girl"), "wash", obj=NP("dress", det="her")), "the girl washes her dress",
     "la niña lava su vestido"),
    (act(me("you"), "draw", obj=NP("elephant", det="a", adj="ugly")), "you draw an ugly elephant",
     "tú dibujas un elefante feo"),
    (act(me("she"), "come", place=P("home", "to")), "she comes home", "ella viene a casa"),
    (act(me("i"), "drive", obj=NP("truck", det="a")), "i drive a truck", "yo conduzco un camión"),
    (act(me("they"), "hear", "past", obj=NP("bird", plural=True)), "they heard the birds",
     "ellos oyeron los pájaros"),
    (act(me("we"), "travel", "past", place=P("spain", "to"), time="last_year"),
     "we traveled to spain last year", "nosotros viajamos a españa el año pasado"),
    (act(NameRef("ana"), "enter", "future", place=P("church", "into")), "ana will enter the church",
     "ana entrará en la iglesia"),
    (act(me("he"), "speak", obj=NP("french", det="none"), time="every_day"), "he speaks french every day",
     "él habla francés todos los días"),
    (act(NP("boy", plural=True), "play", place=P("garden")), "the boys play in the garden",
     "los niños juegan en el jardín"),
    (act(me("they"), "know", "past", obj=NP("city")), "they knew the city", "ellos conocían la ciudad"),
    (act(NP("mouse", det="that", plural=True), "see", "future", obj=NP("lion", det="some")),
     "those mice will see some lions", "esos ratones verán unos leones"),
]


@pytest.mark.parametrize("spec,en,es", TABLE, ids=[row[1] for row in TABLE])
def test_hand_checked_translations(spec: SentenceSpec, en: str, es: str) -> None:
    sentence = realize(spec)
    assert (sentence.en, sentence.es) == (en, es)


def test_number_words_agree_with_gender() -> None:
    assert [number_es(n, "m") for n in (1, 21, 41)] == ["un", "veintiún", "cuarenta y un"]
    assert [number_es(n, "f") for n in (1, 21, 41)] == ["una", "veintiuna", "cuarenta y una"]
    assert number_es(22, "f") == "veintidós" and number_es(16) == "dieciséis"


def test_bad_specs_are_rejected() -> None:
    with pytest.raises(GrammarError, match="does not take object"):
        realize(act(me("i"), "drink", obj=NP("car")))
    with pytest.raises(GrammarError, match="needs a place"):
        realize(act(me("i"), "go"))
    with pytest.raises(GrammarError, match="cannot be plural"):
        realize(act(me("i"), "drink", obj=NP("milk", plural=True)))
    with pytest.raises(GrammarError, match="unknown noun"):
        realize(act(me("i"), "eat", obj=NP("unicorn")))


@pytest.fixture(scope="module")
def samples() -> list:
    sampler, rng = GrammarSampler(), np.random.default_rng(11)
    return [sampler.sentence(rng) for _ in range(3000)]


def _spanish_np_words(np_: NounPhrase) -> tuple[str, str]:
    """(noun form, adjective form) the Spanish text must contain for this noun phrase."""
    noun, adj = LEXICON.nouns[np_.noun], LEXICON.adjectives[np_.adj]
    plural = np_.is_plural
    forms = adj.forms[(2 if plural else 0) + (noun.gender == "f")]
    return (noun.es_pl if plural else noun.es), forms


def test_every_spanish_adjective_follows_and_agrees_with_its_noun(samples: list) -> None:
    checked = 0
    for s in samples:
        spec = s.spec
        for np_ in (spec.subject, spec.obj):
            if isinstance(np_, NounPhrase) and np_.adj:
                noun_form, adj_form = _spanish_np_words(np_)
                assert f"{noun_form} {adj_form}" in s.es, (s.en, s.es)
                checked += 1
        if spec.kind == "be_adj" and isinstance(spec.subject, NounPhrase):
            noun = LEXICON.nouns[spec.subject.noun]
            adj = LEXICON.adjectives[spec.adj]
            expected = adj.forms[(2 if spec.subject.is_plural else 0) + (noun.gender == "f")]
            assert s.es.split()[-1] == expected or f" {expected} " in f" {s.es} ", (s.en, s.es)
            checked += 1
    assert checked > 500


def test_verbs_agree_with_pronoun_subjects(samples: list) -> None:
    # Every tense: tú ends in -s/-ste (comes, comiste, comerás), nosotros in -mos, ellos in -n; yo and
    # él/ella never take those endings (como, comí, era; come, comió, es).
    plural_like = ("n", "mos", "ste")
    rules = {"tú": (("s", "ste"), ()), "nosotros": (("mos",), ()), "ellos": (("n",), ()),
             "yo": ((), plural_like + ("s",)), "él": ((), plural_like), "ella": ((), plural_like)}
    checked = 0
    for s in samples:
        words = s.es.split()
        if words[0] in rules and s.features["negated"] == "false" and s.features["kind"] != "there_is":
            required, forbidden = rules[words[0]]
            verb = words[1]
            assert not required or verb.endswith(required), s.es
            if forbidden:
                assert not verb.endswith(forbidden), s.es
            checked += 1
    assert checked > 300


def test_texts_are_normalised(samples: list) -> None:
    allowed = set("abcdefghijklmnopqrstuvwxyz áéíóúüñ'")
    for s in samples:
        assert set(s.en) <= allowed and set(s.es) <= allowed, (s.en, s.es)
        assert "'" not in s.es and "  " not in s.en + s.es
        assert " a el " not in f" {s.es} " and " de el " not in f" {s.es} "


def test_sampling_is_deterministic_for_a_seed() -> None:
    sampler = GrammarSampler()
    a = [sampler.sentence(np.random.default_rng(5)).es for _ in range(3)]
    run1 = [(s.en, s.es) for s in make_sentence_splits({"train": 40, "test": 10}, seed=9).splits["train"]]
    run2 = [(s.en, s.es) for s in make_sentence_splits({"train": 40, "test": 10}, seed=9).splits["train"]]
    other = [(s.en, s.es) for s in make_sentence_splits({"train": 40, "test": 10}, seed=10).splits["train"]]
    assert len(set(a)) == 1 and run1 == run2 and run1 != other


def test_vocabulary_gives_millions_of_sentences() -> None:
    sampler = GrammarSampler()
    # Transitive frames alone (no adjectives, places or times): subjects x determiners x
    # verb-object pairs x object determiners x tenses.
    subjects = len(sampler.persons) * len(SUBJECT_DETS) + len(LEXICON.names) + 6
    assert len(LEXICON.lemma_keys()) > 300
    assert subjects * len(valid_pairs()["verb_obj"]) * len(OBJECT_DETS) * 3 > 10_000_000


@pytest.fixture(scope="module")
def splits():
    return make_sentence_splits({"train": 1500, "validation": 100, "test": 200}, seed=4)


def test_no_test_sentence_in_train(splits) -> None:
    seen = {t for s in splits.splits["train"] + splits.splits["validation"] for t in (s.en, s.es)}
    for s in splits.splits["test"]:
        assert s.en not in seen and s.es not in seen
    assert len({s.en for s in splits.splits["train"]}) == 1500


def test_held_out_combinations_only_in_test(splits) -> None:
    held = splits.held_out
    assert held == choose_held_out(seed=4)
    kinds = {p[0][:2] for p in held}
    assert kinds == {"a:", "v:"}
    for s in splits.splits["train"] + splits.splits["validation"]:
        assert held.isdisjoint(s.pairs), s.en
    in_test = [p for s in splits.splits["test"] for p in s.pairs if p in held]
    assert len(in_test) >= 100  # half the test sentences are built around a held-out pair
    # Each member of a held-out pair still occurs in training (only not together).
    train_lemmas = {l for s in splits.splits["train"] for l in s.lemmas}
    covered = [p for p in set(in_test) if p[0] in train_lemmas and p[1] in train_lemmas]
    assert len(covered) >= 0.9 * len(set(in_test))


def test_test_split_is_stable_when_train_grows() -> None:
    small = make_sentence_splits({"train": 20, "test": 15}, seed=2).splits["test"]
    large = make_sentence_splits({"train": 400, "test": 15}, seed=2).splits["test"]
    assert [s.sentence_id for s in small] == [s.sentence_id for s in large]
