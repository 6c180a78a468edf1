"""Train/validation/test sentence sets with held-out sentences and held-out word combinations.

The rule (also in docs/data.md):

1. **Held-out combinations.** From all valid adjective+noun pairs and all valid verb+object pairs of
   the lexicon, a fraction ``heldout_fraction`` of each kind is drawn with ``seed`` (a lemma keeps at
   least ``min_seen`` other partners, so every word still occurs in training, only never *with* that
   partner). A pair counts as "together" whether the adjective is attributive ("the red car") or
   predicative ("the car is red").
2. **Train and validation** never contain a held-out pair (sentences that would are re-drawn).
3. **Test** starts with ``heldout_share`` of sentences built around a held-out pair (cycling through
   the pairs in a seeded order, so as many pairs as possible are covered), then free sentences.
4. **Held-out sentences.** Every sentence occurs in one split only: an English *or* Spanish text
   seen in an earlier split is re-drawn. Test is drawn first, then validation, then train, each from
   its own random stream, so the test set of a seed does not change when the train size does.

>>> splits = make_sentence_splits({"train": 50, "validation": 5, "test": 10}, seed=0)
>>> [len(splits.splits[k]) for k in ("train", "validation", "test")]
[50, 5, 10]
>>> any(set(s.pairs) & splits.held_out for s in splits.splits["train"])
False
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from speechseq.data.grammar import Pair, Sentence, realize
from speechseq.data.grammar_lexicon import LEXICON, Lexicon
from speechseq.data.grammar_sample import GrammarSampler
from speechseq.errors import ConfigError

SPLIT_ORDER = ("test", "validation", "train")


@dataclass(frozen=True)
class SentenceSplits:
    """Sentences per split and the combinations held out of train/validation."""

    splits: dict[str, list[Sentence]]
    held_out: frozenset[Pair]


def valid_pairs(lexicon: Lexicon = LEXICON) -> dict[str, list[Pair]]:
    """All combinations the grammar can produce: {"adj_noun": [...], "verb_obj": [...]}."""
    nouns = list(lexicon.nouns.values())
    adj_noun = [(f"a:{a.key}", f"n:{n.key}") for a in lexicon.adjectives.values() for n in nouns
                if a.applies_to(n) and not n.bare]
    verb_obj = [(f"v:{v.key}", f"n:{n.key}") for v in lexicon.verbs.values() for n in nouns
                if v.takes_object(n)]
    return {"adj_noun": adj_noun, "verb_obj": verb_obj}


def choose_held_out(seed: int, fraction: float = 0.05, min_seen: int = 3,
                    lexicon: Lexicon = LEXICON) -> frozenset[Pair]:
    """Draw the held-out combinations: ``fraction`` of each kind, each lemma keeping ``min_seen`` partners."""
    rng = np.random.default_rng([seed, 1])
    held: set[Pair] = set()
    for pairs in valid_pairs(lexicon).values():
        partners = Counter(x for pair in pairs for x in pair)
        target = round(fraction * len(pairs))
        chosen = 0
        for i in rng.permutation(len(pairs)):
            if chosen == target:
                break
            first, second = pairs[i]
            if partners[first] > min_seen and partners[second] > min_seen:
                held.add(pairs[i])
                partners[first] -= 1
                partners[second] -= 1
                chosen += 1
    return frozenset(held)


def _draw(rng: np.random.Generator, n: int, seen: set[str], make, split: str) -> list[Sentence]:
    """``n`` sentences from ``make(rng, i)`` whose English and Spanish texts are not in ``seen``."""
    out: list[Sentence] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise RuntimeError(f"could only draw {len(out)} unique {split} sentences of {n}")
        sentence = make(rng, len(out))
        if sentence.en in seen or sentence.es in seen:
            continue
        seen.update((sentence.en, sentence.es))
        out.append(sentence)
    return out


def make_sentence_splits(counts: Mapping[str, int], seed: int, *, heldout_fraction: float = 0.05,
                         heldout_share: float = 0.5, lexicon: Lexicon = LEXICON) -> SentenceSplits:
    """Sentences for the splits in ``counts`` (keys among train, validation, test) by the rule above."""
    unknown = set(counts) - set(SPLIT_ORDER)
    if unknown:
        raise ConfigError(f"unknown split(s) {sorted(unknown)}; expected {SPLIT_ORDER}")
    sampler = GrammarSampler(lexicon)
    held = choose_held_out(seed, heldout_fraction, lexicon=lexicon)
    order = sorted(held)
    order = [order[i] for i in np.random.default_rng([seed, 2]).permutation(len(order))]
    n_forced = round(heldout_share * counts.get("test", 0))

    def make_test(rng: np.random.Generator, i: int) -> Sentence:
        if i < n_forced and order:
            return realize(sampler.spec_with_pair(rng, order[i % len(order)]), lexicon)
        return sampler.sentence(rng)

    def make_seen(rng: np.random.Generator, i: int) -> Sentence:
        return sampler.sentence(rng, avoid=held)

    seen: set[str] = set()
    splits: dict[str, list[Sentence]] = {}
    for stream, split in enumerate(SPLIT_ORDER, start=3):
        if split in counts:
            make = make_test if split == "test" else make_seen
            splits[split] = _draw(np.random.default_rng([seed, stream]), counts[split], seen, make, split)
    return SentenceSplits({k: splits[k] for k in counts}, held)
