"""Plain-word instructions, written by hand (not drawn from the phrasing generator nor the bench), give the right
plan with the shipped family: every shape, kind and motion they say, and the size, place and background where they
say one (issue 17)."""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# instruction → {colour: (kind, motion, {other stated attributes})}, plus "background" when it is stated
CASES = {
    "a red circle moves to the right": {"red": ("circle", "right", {})},
    "a blue square goes up": {"blue": ("square", "up", {})},
    "a blue circle is pumped full of air": {"blue": ("circle", "grow", {})},
    "Move the green triangle down.": {"green": ("triangle", "down", {})},
    "show me a cyan ball shrinking": {"cyan": ("circle", "shrink", {})},
    "A yellow box in the middle rises.": {"yellow": ("square", "up", {"slot": (1, 1)})},
    "a big magenta star at the top left stays put, on a slate striped background": {
        "magenta": ("star", "still", {"size": "big", "slot": (0, 0)}), "background": ("slate", "striped")},
    "There is a red star on the left and a blue star on the right. Everything except the red one bounces.": {
        "red": ("star", "still", {"slot": (0, 1)}), "blue": ("star", "bounce", {"slot": (2, 1)})},
    "a green ball on the left that slides right and a yellow triangle on the right that grows": {
        "green": ("circle", "right", {"slot": (0, 1)}), "yellow": ("triangle", "grow", {"slot": (2, 1)})},
}


@pytest.fixture(scope="module")
def block():
    from engine.understanding import UnderstandingBlock
    from training.common import FAMILY_DIR

    return UnderstandingBlock.from_pretrained(FAMILY_DIR / "understanding")


@pytest.mark.parametrize("instruction", list(CASES))
def test_plain_words_give_the_right_plan(block, instruction):
    from miniworld import parse_plan

    want = dict(CASES[instruction])
    plan = block.plan(instruction)
    scene = parse_plan(plan)
    bg = want.pop("background", None)
    assert {s.colour for s in scene.shapes} == set(want), plan
    for s in scene.shapes:
        kind, motion, attrs = want[s.colour]
        assert (s.kind, s.motion) == (kind, motion), plan
        for attr, value in attrs.items():
            assert getattr(s, attr) == value, plan
    if bg:
        assert (scene.bg_colour, scene.bg_texture) == bg, plan
