"""English and Spanish morphology for the bilingual grammar: plurals, agreement, verbs, numbers.

Everything here is a pure function of its arguments; the lexicon (``grammar_lexicon``) supplies the
irregular forms and these rules fill in the regular ones. Spanish output keeps its accents (á é í ó ú ñ ü):
they are letters of the ASR targets, not punctuation.

Persons are the five the grammar uses (no *vosotros*: English "you" is always *tú*)::

    PERSONS = ("1sg", "2sg", "3sg", "1pl", "3pl")

>>> conjugate_es(SpanishVerb("cerrar", stem_change="ie"), "present", "3pl")
'cierran'
>>> number_es(21, "f"), number_en(21)
('veintiuna', 'twenty one')
"""

from __future__ import annotations

from dataclasses import dataclass, field

PERSONS: tuple[str, ...] = ("1sg", "2sg", "3sg", "1pl", "3pl")
TENSES: tuple[str, ...] = ("present", "past", "future")

_ACCENTED = str.maketrans("áéíóú", "aeiou")
_VOWELS = set("aeiouáéíóú")

# Regular Spanish endings per conjugation, in PERSONS order.
_PRESENT = {
    "ar": ("o", "as", "a", "amos", "an"),
    "er": ("o", "es", "e", "emos", "en"),
    "ir": ("o", "es", "e", "imos", "en"),
}
_PRETERITE = {
    "ar": ("é", "aste", "ó", "amos", "aron"),
    "er": ("í", "iste", "ió", "imos", "ieron"),
    "ir": ("í", "iste", "ió", "imos", "ieron"),
}
_FUTURE = ("é", "ás", "á", "emos", "án")
_IMPERFECT = {
    "ar": ("aba", "abas", "aba", "ábamos", "aban"),
    "er": ("ía", "ías", "ía", "íamos", "ían"),
    "ir": ("ía", "ías", "ía", "íamos", "ían"),
}
# Stem changes in the present ("boot" persons: 1sg 2sg 3sg 3pl): the last stem vowel changes.
_STEM_CHANGE = {"ie": ("e", "ie"), "ue": ("o", "ue"), "i": ("e", "i"), "uue": ("u", "ue")}
_BOOT = {"1sg", "2sg", "3sg", "3pl"}

_EN_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_EN_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ES_ONES = (
    "cero uno dos tres cuatro cinco seis siete ocho nueve diez once doce trece catorce quince "
    "dieciséis diecisiete dieciocho diecinueve veinte veintiuno veintidós veintitrés veinticuatro "
    "veinticinco veintiséis veintisiete veintiocho veintinueve"
).split()
_ES_TENS = "_ _ _ treinta cuarenta cincuenta sesenta setenta ochenta noventa".split()


@dataclass(frozen=True)
class SpanishVerb:
    """How to conjugate one Spanish verb: regular rules plus the irregular parts given.

    ``tables`` maps a tense ("present", "past", "future", "imperfect") to its five forms in
    PERSONS order and overrides the rules completely for that tense; ``yo`` overrides only the
    present 1sg (conozco, salgo); ``future_stem`` replaces the infinitive before the future endings
    (tendr-, saldr-).

    >>> conjugate_es(SpanishVerb("buscar"), "past", "1sg")
    'busqué'
    """

    infinitive: str
    stem_change: str | None = None
    yo: str | None = None
    future_stem: str | None = None
    tables: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __hash__(self) -> int:  # tables is a dict; the infinitive identifies the verb
        return hash(self.infinitive)


def _change_last(stem: str, old: str, new: str) -> str:
    """Replace the last occurrence of vowel ``old`` in ``stem`` (cerr -> cierr, encontr -> encuentr)."""
    i = stem.rfind(old)
    return stem if i < 0 else stem[:i] + new + stem[i + len(old):]


def _preterite_regular(verb: SpanishVerb, person: str) -> str:
    inf = verb.infinitive
    stem, conj = inf[:-2], inf[-2:]
    k = PERSONS.index(person)
    if conj != "ar" and stem[-1] in _VOWELS:
        # Vowel-final -er/-ir stems (leer): leí, leíste, leyó, leímos, leyeron.
        return stem + ("í", "íste", "yó", "ímos", "yeron")[k]
    if person == "1sg" and conj == "ar":
        # Spelling keeps the consonant's sound before é: busqué, llegué, empecé.
        for end, repl in (("c", "qu"), ("g", "gu"), ("z", "c")):
            if stem.endswith(end):
                stem = stem[: -len(end)] + repl
                break
    if conj == "ir" and person in ("3sg", "3pl") and verb.stem_change:
        # -ir stem changers raise the vowel in the 3rd persons: pidió, prefirió, durmió.
        stem = _change_last(stem, "o", "u") if verb.stem_change == "ue" else _change_last(stem, "e", "i")
    return stem + _PRETERITE[conj][k]


def conjugate_es(verb: SpanishVerb, tense: str, person: str) -> str:
    """The Spanish form of ``verb`` for ``tense`` (present, past = preterite, future, imperfect) and ``person``.

    Irregular imperfects (ser, ir, ver) must come from ``verb.tables``.

    >>> [conjugate_es(SpanishVerb("dormir", stem_change="ue"), t, "3sg") for t in TENSES]
    ['duerme', 'durmió', 'dormirá']
    """
    if person not in PERSONS:
        raise ValueError(f"unknown person {person!r}; expected one of {PERSONS}")
    k = PERSONS.index(person)
    if tense in verb.tables:
        return verb.tables[tense][k]
    inf = verb.infinitive
    stem, conj = inf[:-2], inf[-2:]
    if tense == "present":
        if person == "1sg" and verb.yo:
            return verb.yo
        if verb.stem_change and person in _BOOT:
            stem = _change_last(stem, *_STEM_CHANGE[verb.stem_change])
        return stem + _PRESENT[conj][k]
    if tense == "past":
        return _preterite_regular(verb, person)
    if tense == "future":
        return (verb.future_stem or inf) + _FUTURE[k]
    if tense == "imperfect":
        return stem + _IMPERFECT[conj][k]
    raise ValueError(f"no rule for tense {tense!r} of {inf!r}; give it in SpanishVerb.tables")


def plural_es(word: str) -> str:
    """Regular Spanish plural: casa -> casas, tren -> trenes, lápiz -> lápices, estación -> estaciones.

    Irregular or invariable plurals (paraguas, jóvenes, sándwiches) are listed in the lexicon instead.
    """
    last = word[-1]
    if last in "aeiouáéó":
        return word + "s"
    if last == "z":
        return word[:-1] + "ces"
    if last in "ns" and len(word) > 1 and word[-2] in "áéíóú":
        # The stress stays on the same syllable, which is no longer the last: the accent goes.
        return word[:-2] + word[-2].translate(_ACCENTED) + last + "es"
    return word + "es"


def plural_en(word: str) -> str:
    """Regular English plural: cat -> cats, box -> boxes, city -> cities (irregulars come from the lexicon)."""
    if word.endswith(("s", "sh", "ch", "x", "z")):
        return word + "es"
    if word.endswith("y") and len(word) > 1 and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def adjective_forms_es(masc_sg: str, masc_pl: str | None = None) -> tuple[str, str, str, str]:
    """The four forms (m sg, f sg, m pl, f pl) of a Spanish adjective from its masculine singular.

    Adjectives in -o have a feminine in -a; the rest (grande, azul, feliz) share one form per number.

    >>> adjective_forms_es("rojo"), adjective_forms_es("azul")
    (('rojo', 'roja', 'rojos', 'rojas'), ('azul', 'azul', 'azules', 'azules'))
    """
    if masc_sg.endswith("o"):
        fem = masc_sg[:-1] + "a"
        return masc_sg, fem, masc_pl or masc_sg + "s", fem + "s"
    pl = masc_pl or plural_es(masc_sg)
    return masc_sg, masc_sg, pl, pl


def agree_es(forms: tuple[str, str, str, str], gender: str, plural: bool) -> str:
    """Pick the form of ``forms`` (m sg, f sg, m pl, f pl) for ``gender`` ("m"/"f") and number."""
    return forms[(2 if plural else 0) + (1 if gender == "f" else 0)]


def third_singular_en(base: str) -> str:
    """English 3rd person singular present: eat -> eats, wash -> washes, study -> studies, go -> goes."""
    if base == "have":
        return "has"
    if base.endswith(("s", "sh", "ch", "x", "z", "o")):
        return base + "es"
    if base.endswith("y") and base[-2] not in "aeiou":
        return base[:-1] + "ies"
    return base + "s"


def past_en(base: str) -> str:
    """Regular English simple past: clean -> cleaned, live -> lived, study -> studied."""
    if base.endswith("e"):
        return base + "d"
    if base.endswith("y") and base[-2] not in "aeiou":
        return base[:-1] + "ied"
    return base + "ed"


def number_en(n: int) -> str:
    """English number words for 1..99, unhyphenated (the ASR targets carry no punctuation)."""
    if not 1 <= n <= 99:
        raise ValueError(f"number {n} outside 1..99")
    if n < 20:
        return _EN_ONES[n]
    tens, unit = divmod(n, 10)
    return _EN_TENS[tens] + ("" if unit == 0 else " " + _EN_ONES[unit])


def number_es(n: int, gender: str | None = None) -> str:
    """Spanish number words for 1..99; with a ``gender`` the form that stands before a noun.

    "uno" agrees with the noun it counts: un gato, una casa, veintiún gatos, veintiuna casas,
    treinta y un gatos. Without a gender the citation form (veintiuno) is returned.

    >>> number_es(21, "m"), number_es(31, "f"), number_es(16)
    ('veintiún', 'treinta y una', 'dieciséis')
    """
    if not 1 <= n <= 99:
        raise ValueError(f"number {n} outside 1..99")
    if n < 30:
        word = _ES_ONES[n]
    else:
        tens, unit = divmod(n, 10)
        word = _ES_TENS[tens] + ("" if unit == 0 else " y " + _ES_ONES[unit])
    if gender is not None and word.endswith("uno"):
        word = word[:-3] + ("una" if gender == "f" else ("ún" if word.endswith("veintiuno") else "un"))
    return word


def indefinite_en(next_word: str) -> str:
    """"a" or "an" before ``next_word`` by its first sound (the vocabulary has no silent h)."""
    if next_word.startswith(("uni", "use", "eu", "one")):
        return "a"
    return "an" if next_word[0] in "aeiou" else "a"


def contract_es(words: list[str]) -> list[str]:
    """Spanish contractions a + el -> al, de + el -> del (only with the article, never with él).

    >>> contract_es("voy a el parque cerca de el río".split())
    ['voy', 'al', 'parque', 'cerca', 'del', 'río']
    """
    out: list[str] = []
    for word in words:
        if word == "el" and out and out[-1] in ("a", "de"):
            out[-1] = out[-1] + "l" if out[-1] == "a" else "del"
            continue
        out.append(word)
    return out
