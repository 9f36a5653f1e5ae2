"""The stated-attribute checker (miniworld/honour.py): a plan must keep what the instruction said, nothing more."""

from dataclasses import replace

import numpy as np

from miniworld import plan_text, sample_example
from miniworld.honour import honours, parses, stated_of, unhonoured
from miniworld.phrasing import Phrased


def _phrased(scene, stated, bg_stated=True):
    return Phrased("", plan_text(scene), scene, "explicit", tuple(frozenset(s) for s in stated), bg_stated)


def _example():
    rng = np.random.default_rng(4)
    while True:
        ex = sample_example(rng, "explicit")
        if len(ex.scene.shapes) == 2 and ex.scene.shapes[0].motion in ("left", "right", "up", "down", "grow"):
            return ex


def test_template_examples_state_everything():
    ex = _example()
    stated, bg = stated_of(ex)
    assert bg and all(s == {"colour", "kind", "size", "texture", "slot", "motion"} for s in stated)
    assert honours(ex.plan, ex)
    other = replace(ex.scene, bg_colour="slate" if ex.scene.bg_colour != "slate" else "sand")
    assert not honours(plan_text(other), ex)


def test_unstated_attributes_may_differ_stated_ones_may_not():
    ex = _example()
    sc = ex.scene
    item = _phrased(sc, [{"colour", "kind", "motion"}, {"colour", "kind", "motion", "size"}], bg_stated=False)
    s0, s1 = sc.shapes
    free = replace(sc, shapes=(replace(s0, size="big" if s0.size == "small" else "small",
                                       texture="striped" if s0.texture != "striped" else "dotted"), s1),
                   bg_colour="slate" if sc.bg_colour != "slate" else "sand")
    assert honours(plan_text(free), item)
    wrong_size = replace(sc, shapes=(s0, replace(s1, size="big" if s1.size == "small" else "small")))
    assert unhonoured(plan_text(wrong_size), item) and not honours(plan_text(wrong_size), item)
    wrong_motion = replace(sc, shapes=(replace(s0, motion="still", target=None), s1))
    assert any("motion" in e for e in unhonoured(plan_text(wrong_motion), item))
    wrong_kind = replace(sc, shapes=(replace(s0, kind="star" if s0.kind != "star" else "circle"), s1))
    assert not honours(plan_text(wrong_kind), item)


def test_missing_or_extra_shapes_and_broken_plans_fail():
    ex = _example()
    one = replace(ex.scene, shapes=ex.scene.shapes[:1])
    assert not honours(plan_text(one), ex)
    item = _phrased(one, [{"colour", "kind", "motion"}])
    assert not honours(ex.plan, item)
    assert not parses("a moves") and not honours("a moves", ex)
    assert parses(ex.plan)
