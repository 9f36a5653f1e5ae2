"""Unknown words are shown (issue 17): the instruction's words the family does not know are underlined and named in
the plan panel as the user types; the placeholder and the examples are instructions the shipped family draws well."""

from __future__ import annotations

import queue
import time

import pytest
from PySide6.QtCore import Qt

from app.widgets.instruction import EXAMPLES
from engine.api import DEFAULT_FAMILY, ModelSpec, embedded_family_available, unknown_words

needs_family = pytest.mark.skipif(not embedded_family_available(), reason="the embedded family is not built")


def _window(make_window):
    from app.fake_engine import DEFAULT_SUMMARY

    return make_window(summary=dict(DEFAULT_SUMMARY, has_understanding=True))


def _type(qtbot, win, text: str) -> None:
    assert "\n" not in text
    win.prompt.edit.setFocus()
    qtbot.keyClick(win.prompt.edit, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(win.prompt.edit, text)


def _marked(win) -> list[str]:
    return [m.cursor.selectedText() for m in win.prompt.edit.extraSelections()]


@needs_family
def test_typing_marks_the_words_the_family_does_not_know(make_window, qtbot):
    text = "a red ball next to a blue wall"
    unknown = unknown_words(ModelSpec(), text)  # "wall" at least ("ball" may be known: it reads as a circle)
    assert "wall" in unknown and not {"a", "red", "blue"} & set(unknown)
    win = _window(make_window)
    _type(qtbot, win, text)
    qtbot.waitUntil(lambda: win.plan.unknown.isVisible(), timeout=3000)
    assert win.plan.unknown.text() == f"This family does not know: {', '.join(unknown)} — it may ignore them."
    assert sorted(_marked(win)) == sorted(unknown) and win.prompt.unknown == unknown
    # words it knows: the line goes away and nothing is underlined
    _type(qtbot, win, "The big RED circle moves right!")
    qtbot.waitUntil(lambda: not win.plan.unknown.isVisible(), timeout=3000)
    assert _marked(win) == [] and win.prompt.unknown == []


@needs_family
def test_what_the_family_cannot_draw_as_asked_is_said(make_window, qtbot, tmp_path):
    """Two shapes of one colour, or more shapes than a plan holds, get one line each in the plan panel."""
    from engine.api import instruction_limits

    notes = instruction_limits(DEFAULT_FAMILY, "Two big red squares move left")
    assert notes == ["Several red squares: this family draws one shape per colour, so the plan has at most one red "
                     "square."]
    assert instruction_limits(DEFAULT_FAMILY, "a red circle, a blue star, a green box and a cyan ball") == \
        ["This family draws at most 3 shapes: the plan keeps the first 3."]
    for fine in ("two shapes: a red circle and a blue square", "if there are three shapes, the red ball grows"):
        assert instruction_limits(DEFAULT_FAMILY, fine) == []
    assert instruction_limits(tmp_path, "two red squares") == []  # no family here
    win = _window(make_window)
    _type(qtbot, win, "two red squares move left")
    qtbot.waitUntil(lambda: win.plan.limits.isVisible(), timeout=3000)
    assert "one shape per colour" in win.plan.limits.text()
    _type(qtbot, win, "a red square moves left")
    qtbot.waitUntil(lambda: not win.plan.limits.isVisible(), timeout=3000)


@needs_family
def test_case_punctuation_and_plurals_are_known(tmp_path):
    assert unknown_words(DEFAULT_FAMILY, "Red CIRCLES, blue squares... the stars!") == []
    (tmp_path / "lumos.json").write_text('{"vocabulary": ["a", "box", "sky", "red", "circle", "the"]}')
    assert unknown_words(tmp_path, "The RED circles; boxes, skies? A red ball, a red Ball!") == ["ball"]


def test_a_family_without_a_world_vocabulary_knows_every_word(tmp_path):
    (tmp_path / "lumos.json").write_text('{"name": "real"}')
    assert unknown_words(tmp_path, "a red ball next to a blue wall") == []
    (tmp_path / "lumos.json").write_text('{"name": "mini", "vocabulary": ["a", "ball", "red"]}')
    assert unknown_words(tmp_path, "A red ball, a blue ball.") == ["blue"]


@needs_family
def test_the_placeholder_and_the_examples_are_in_the_family_s_words(make_window):
    win = _window(make_window)
    assert EXAMPLES[0] in win.prompt.edit.placeholderText()
    assert [a.text() for a in win.prompt.examples.menu().actions()] == list(EXAMPLES)
    for text in EXAMPLES:
        assert unknown_words(ModelSpec(), text) == [], text


def test_an_example_fills_the_instruction(make_window, qtbot):
    win = _window(make_window)
    win.prompt.examples.menu().actions()[1].trigger()
    assert win.prompt.text() == EXAMPLES[1]


@needs_family
def test_the_placeholder_instruction_gives_a_plan_that_honours_it():
    """With the shipped family, through the engine API: "a big red circle moves right" → a big red circle that
    moves right (its plan parses, under the family's plan grammar)."""
    from engine.api import Engine, Failed, PlanReady
    from miniworld.language import parse_plan

    instruction = EXAMPLES[0]
    engine = Engine(ModelSpec(device="cpu"), cache_bytes=16 << 20, preview=False)
    try:
        engine.submit_plan(instruction)
        deadline, plan = time.monotonic() + 240, None
        while plan is None and time.monotonic() < deadline:
            try:
                event = engine.events.get(timeout=1)
            except queue.Empty:
                continue
            assert not isinstance(event, Failed), event
            if isinstance(event, PlanReady):
                plan = event.plan
    finally:
        engine.shutdown()
    assert plan, "no plan came back"
    shapes = parse_plan(plan).shapes
    assert any((s.colour, s.kind, s.size, s.motion) == ("red", "circle", "big", "right") for s in shapes), plan
