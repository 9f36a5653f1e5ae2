"""The text encoder's binding labels: every token of a shape sentence carries that sentence's attributes."""

import numpy as np
import pytest

from miniworld import CATEGORIES, sample_train_example
from training.clause_labels import ATTRIBUTES, IGNORE, sentence_spans, token_labels
from training.stage_text import build_tokenizer

PLAN = ("a small green plain star at the top left stays still. "
        "a big magenta checked square at the top right moves toward the green star. sand checked background.")
INSTRUCTION = ("a small blue striped star at the top. a small red checked triangle at the bottom right. gray dotted "
               "background. every shape that is not blue shrinks.")


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer([PLAN, INSTRUCTION])


def _labels(tokenizer, text):
    enc = tokenizer(text, return_offsets_mapping=True)
    words = [text[a:b].strip() for a, b in enc.offset_mapping]
    return words, token_labels(enc.offset_mapping, text)


def test_each_token_of_a_shape_sentence_carries_its_sentence(tokenizer):
    words, lab = _labels(tokenizer, PLAN)
    colour, place, motion = ATTRIBUTES["colour"], ATTRIBUTES["place"], ATTRIBUTES["motion"]
    second = words.index("big") - 1  # the second sentence's "a": its offsets start at the space before it
    assert words[second] == "a"
    for t in range(second):
        assert (colour[lab["colour"][t]], place[lab["place"][t]], motion[lab["motion"][t]]) == \
            ("green", "top left", "still")
    # the second sentence names the green star as its target, but its tokens are the magenta square's
    green_in_second = words.index("green", second)
    assert colour[lab["colour"][green_in_second]] == "magenta"
    assert place[lab["place"][green_in_second]] == "top right"
    assert motion[lab["motion"][green_in_second]] == "toward"
    background = words.index("background")
    assert all(lab[k][background] == IGNORE for k in ATTRIBUTES)


def test_layout_sentences_have_no_motion_and_reasoning_sentences_no_labels(tokenizer):
    words, lab = _labels(tokenizer, INSTRUCTION)
    star = words.index("star")
    assert ATTRIBUTES["place"][lab["place"][star]] == "top"  # not "top left": the longest match that fits
    assert lab["motion"][star] == IGNORE  # a layout sentence says nothing of motion
    every = words.index("every")
    assert all(lab[k][t] == IGNORE for k in ATTRIBUTES for t in range(every, len(words)))


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_shape_of_drawn_plans_is_found(category):
    rng = np.random.default_rng(5)
    for _ in range(20):
        ex = sample_train_example(rng, category)
        spans = sentence_spans(ex.plan)
        assert [ATTRIBUTES["colour"][s[2]["colour"]] for s in spans] == [s.colour for s in ex.scene.shapes]
        assert [ATTRIBUTES["kind"][s[2]["kind"]] for s in spans] == [s.kind for s in ex.scene.shapes]
        assert all("motion" in s[2] for s in spans)
