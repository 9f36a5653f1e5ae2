"""Free phrasing (miniworld/phrasing.py): every category in both splits, plans that mean the phrased scene, held-out
wordings that training never draws, and a vocabulary that covers every training word."""

import re

import numpy as np
import pytest

from miniworld import CATEGORIES, parse_plan, plan_text, sample_example, split_of
from miniworld import phrasing_pools as P
from miniworld.phrasing import (
    DEFAULTS, KNOWN_WORDS, SPLITS, conjugate, heldout_set, phrase, sample_phrased,
)


def _words(text):
    return set(re.findall(r"[a-z]+", text.lower()))


@pytest.fixture(scope="module")
def train_phrasings():
    rng = np.random.default_rng(7)
    return [sample_phrased(rng, c, "train") for c in CATEGORIES for _ in range(120)]


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("category", CATEGORIES)
def test_every_category_phrases_in_both_splits(category, split):
    rng = np.random.default_rng([3, CATEGORIES.index(category)])
    for _ in range(15):
        ph = sample_phrased(rng, category, split)
        assert ph.category == category and ph.instruction.strip()
        assert ph.plan == plan_text(ph.scene) and parse_plan(ph.plan) == ph.scene
        assert split_of(ph.plan) == ("train" if split == "train" else "bench")
        assert len(ph.stated) == len(ph.scene.shapes)
        assert all({"colour", "kind", "motion"} <= s for s in ph.stated)


def test_training_phrasings_use_training_entries_only(train_phrasings):
    assert all(ph.heldout_parts == () for ph in train_phrasings)


def test_heldout_phrasings_always_use_a_heldout_wording():
    items = heldout_set()
    assert len(items) >= 200 and {ph.category for ph, _ in items} == set(CATEGORIES)
    assert all(ph.heldout_parts for ph, _ in items)
    assert len({ph.instruction for ph, _ in items}) == len(items)
    assert heldout_set() == items  # fixed seeds


def test_heldout_only_words_and_instructions_never_reach_training(train_phrasings):
    train_text = [ph.instruction.lower() for ph in train_phrasings]
    train_words = set().union(*(_words(t) for t in train_text))
    for word in ("leftwards", "rightwards", "upwards", "downwards", "while", "filled"):
        assert word not in train_words and word not in KNOWN_WORDS
    heldout = {ph.instruction for ph, _ in heldout_set()}
    assert not heldout & {ph.instruction for ph in train_phrasings}
    # whole held-out rule wordings (their fixed words) never appear in a training phrasing
    for frame in ("that is biggest", "gets pushed by", "gets pulled by", "is dropped down", "the one that has"):
        assert not any(frame in t for t in train_text)


def test_known_words_cover_training_and_template_language(train_phrasings):
    rng = np.random.default_rng(11)
    for ph in train_phrasings:
        assert _words(ph.instruction) <= KNOWN_WORDS, _words(ph.instruction) - KNOWN_WORDS
    for c in CATEGORIES:
        for _ in range(40):
            ex = sample_example(rng, c)
            assert _words(ex.instruction) | _words(ex.plan) <= KNOWN_WORDS


def test_omitted_attributes_take_the_defaults(train_phrasings):
    seen = {"size": 0, "texture": 0, "slot": 0, "bg": 0}
    for ph in train_phrasings:
        for s, st in zip(ph.scene.shapes, ph.stated):
            if "size" not in st:
                assert s.size == DEFAULTS["size"]
                seen["size"] += 1
            if "texture" not in st:
                assert s.texture == DEFAULTS["texture"]
                seen["texture"] += 1
            seen["slot"] += "slot" not in st
        if not ph.bg_stated:
            assert (ph.scene.bg_colour, ph.scene.bg_texture) == (DEFAULTS["bg_colour"], DEFAULTS["bg_texture"])
            seen["bg"] += 1
    assert all(v > 20 for v in seen.values()), seen


def test_keep_scene_phrasings_keep_the_plan():
    rng = np.random.default_rng(5)
    for c in CATEGORIES:
        for _ in range(20):
            ex = sample_example(rng, c)
            assert phrase(ex, rng, "train", keep_scene=True).plan == ex.plan


def test_reasoning_examples_carry_their_rule():
    rng = np.random.default_rng(2)
    for c in CATEGORIES:
        ex = sample_example(rng, c)
        assert (ex.rule is None) == (c == "explicit")
        if ex.rule:
            assert ex.rule["type"] == c and "form" in ex.rule


def test_conjugation():
    assert conjugate("<move> to the left", "3sg") == "moves to the left"
    assert conjugate("<fall> and <bounce>", "ing") == "falling and bouncing"
    assert conjugate("<do> not move", "ing") == "not moving"
    assert conjugate("<stay> put", "base") == "stay put"


def test_every_rule_wording_pool_has_heldout_entries():
    pools = [*P.NEGATION.values(), *P.COMPARISON.values(), *P.CAUSE.values(), *P.RELATION_SIZE.values(),
             P.RELATION_SUBJECT, P.COUNT_CORNERS, P.COUNT_IF, P.ONLY_ONE, P.EXPLICIT]
    assert all(p.held and p.train for p in pools)
    assert not any(set(p.held) & set(p.train) for p in pools)


def test_a_rule_that_reads_textures_keeps_every_texture_said():
    """"Everything except the striped ones": a texture left out would fall to the default and change the answer."""
    found = 0
    for split, seed in (("train", 3), ("heldout", 4)):
        rng = np.random.default_rng(seed)
        for _ in range(150):
            ex = sample_example(rng, "negation")
            if ex.rule["attr"] == "texture":
                found += 1
                ph = phrase(ex, rng, split)
                assert all("texture" in st for st in ph.stated), ph.instruction
    assert found > 10
