"""The connector's slot supervision: query k names the plan's k-th shape whole; the heads can learn it."""

import numpy as np
import torch

from miniworld import CATEGORIES, sample_train_example
from training.slot_labels import (
    BACKGROUND_ATTRIBUTES, IGNORE, MAX_SHAPES, NUM_SLOTS, SHAPE_ATTRIBUTES, SlotHeads, batch_labels, slot_labels)

PLAN = ("a small green plain star at the top left stays still. "
        "a big magenta checked square at the top right moves toward the green star. sand dotted background.")


def _name(attr, labels, k):
    classes = SHAPE_ATTRIBUTES.get(attr) or BACKGROUND_ATTRIBUTES[attr]
    return None if labels[attr][k] == IGNORE else classes[labels[attr][k]]


def test_each_slot_names_its_shape_and_empty_slots_say_none():
    lab = slot_labels(PLAN)
    first = {a: _name(a, lab, 0) for a in SHAPE_ATTRIBUTES}
    second = {a: _name(a, lab, 1) for a in SHAPE_ATTRIBUTES}
    assert first == {"kind": "star", "colour": "green", "size": "small", "texture": "plain", "place": (0, 0),
                     "motion": "still", "target": None}
    assert second == {"kind": "square", "colour": "magenta", "size": "big", "texture": "checked", "place": (2, 0),
                      "motion": "toward", "target": 0}
    assert _name("kind", lab, 2) == "none" and _name("colour", lab, 2) is None
    assert (_name("bg_colour", lab, 0), _name("bg_texture", lab, 0)) == ("sand", "dotted")


def test_dropped_and_unreadable_plans_are_ignored():
    for plan in ("", "   ", "a purple cloud drifts."):
        assert all(v == IGNORE for vals in slot_labels(plan).values() for v in vals)


def test_every_category_labels_every_shape_of_its_plan():
    rng = np.random.default_rng(3)
    for cat in CATEGORIES:
        for _ in range(5):
            ex = sample_train_example(rng, cat)
            lab = slot_labels(ex.plan)
            for k, s in enumerate(ex.scene.shapes):
                assert _name("colour", lab, k) == s.colour and _name("place", lab, k) == s.slot
            assert sum(_name("kind", lab, k) == "none" for k in range(MAX_SHAPES)) == MAX_SHAPES - len(ex.scene.shapes)


def test_heads_learn_the_labels_from_tokens_that_carry_them():
    # Tokens that are a fixed random code of the plan: linear heads on the slot tokens can learn every attribute.
    torch.manual_seed(0)
    rng = np.random.default_rng(5)
    plans = [sample_train_example(rng, "explicit").plan for _ in range(24)]
    labels = batch_labels(plans)
    code = torch.nn.Embedding(len(plans), NUM_SLOTS * 32)
    tokens = code(torch.arange(len(plans))).detach().view(len(plans), NUM_SLOTS, 32)
    heads = SlotHeads(32)
    opt = torch.optim.Adam(heads.parameters(), lr=0.05)
    first = heads.loss(tokens, labels).item()
    for _ in range(200):
        opt.zero_grad()
        loss = heads.loss(tokens, labels)
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first
    assert min(heads.accuracy(tokens, labels).values()) == 1.0
