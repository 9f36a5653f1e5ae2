"""Issue 23, items 9–11: the wipe line under the cursor, takes that say what they are, visible check boxes and
radio buttons, and a model picker that says why a path cannot be loaded."""

from __future__ import annotations

import os
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PySide6.QtCore import QEvent, QPointF, Qt  # noqa: E402
from PySide6.QtGui import QColor, QMouseEvent  # noqa: E402
from PySide6.QtWidgets import QApplication, QDialog, QStyle, QStyleOptionButton  # noqa: E402

from tests.app.test_model_picker import make_pair  # noqa: E402


# -- 9: the compare view's wipe ------------------------------------------------------------------------------
@pytest.fixture
def wipe_view(qtbot):
    """A compare view, wider than tall, showing two square takes in Wipe mode (so the images are letterboxed)."""
    from app.widgets.player import CompareView

    view = CompareView()
    qtbot.addWidget(view)
    view.resize(1000, 500)
    view.show()
    view.activateWindow()
    qtbot.waitUntil(view.isActiveWindow, timeout=3000)
    red = np.zeros((6, 64, 64, 3), np.uint8)
    red[..., 0] = 220
    blue = np.zeros((6, 64, 64, 3), np.uint8)
    blue[..., 2] = 220
    view.set_takes(red, 16, "Draft", blue, 16, "Refine 30 %")
    view.transport.pause()
    view.mode.setCurrentIndex(view.mode.findData("wipe"))
    canvas = view.canvas
    target = canvas.image_rect()
    assert canvas.mode == "wipe" and target.width() < canvas.width() - 100  # really letterboxed
    return view


def _mouse(widget, kind, x, buttons):
    button = Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseMove else Qt.MouseButton.NoButton
    pos = QPointF(x, widget.height() / 2)
    event = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def _drawn_line_x(canvas) -> list[int]:
    """Columns of the grabbed canvas where the white wipe line is drawn (a row near the image's top)."""
    image = canvas.grab().toImage()
    y = canvas.image_rect().top() + 40
    return [x for x in range(image.width()) if image.pixelColor(x, y).lightness() > 240]


def test_wipe_line_is_under_the_cursor_on_click_and_drag(wipe_view, qtbot):
    canvas = wipe_view.canvas
    target = canvas.image_rect()
    click_x = target.left() + round(target.width() * 0.8)  # the old widget-width mapping put it ~60 px away
    _mouse(canvas, QEvent.Type.MouseButtonPress, click_x, Qt.MouseButton.LeftButton)  # a click alone moves it
    _mouse(canvas, QEvent.Type.MouseButtonRelease, click_x, Qt.MouseButton.NoButton)
    assert abs(canvas.split_x() - click_x) <= 1
    drawn = _drawn_line_x(canvas)
    assert drawn and all(abs(x - click_x) <= 1 for x in drawn), drawn

    drag_x = target.left() + round(target.width() * 0.25)
    _mouse(canvas, QEvent.Type.MouseButtonPress, click_x, Qt.MouseButton.LeftButton)
    _mouse(canvas, QEvent.Type.MouseMove, drag_x, Qt.MouseButton.LeftButton)
    assert abs(canvas.split_x() - drag_x) <= 1
    _mouse(canvas, QEvent.Type.MouseMove, 3, Qt.MouseButton.LeftButton)  # left of the image: clamped to its edge
    assert canvas.wipe == 0.0 and canvas.split_x() == target.left()
    _mouse(canvas, QEvent.Type.MouseButtonRelease, 3, Qt.MouseButton.NoButton)
    _mouse(canvas, QEvent.Type.MouseMove, drag_x, Qt.MouseButton.NoButton)  # no button: the line stays
    assert canvas.split_x() == target.left()


def test_wipe_line_moves_with_the_arrow_keys(wipe_view, qtbot):
    canvas = wipe_view.canvas
    canvas.setFocus()
    qtbot.waitUntil(canvas.hasFocus, timeout=3000)
    start = canvas.wipe
    qtbot.keyClick(canvas, Qt.Key.Key_Right)
    assert canvas.wipe == pytest.approx(start + canvas.WIPE_STEP)
    qtbot.keyClick(canvas, Qt.Key.Key_Left, Qt.KeyboardModifier.ShiftModifier)
    assert canvas.wipe == pytest.approx(start - 4 * canvas.WIPE_STEP)
    assert wipe_view.transport.index == 0  # the arrows moved the line, not the frame
    # Side by side there is no line: the arrows step frames as before.
    wipe_view.mode.setCurrentIndex(wipe_view.mode.findData("side"))
    qtbot.keyClick(canvas, Qt.Key.Key_Right)
    assert wipe_view.transport.index == 1


# -- 10: the takes strip -------------------------------------------------------------------------------------
def _take(take_id, prompt, handoff=0.0, name=""):
    from app.project import TakeRecord

    return TakeRecord(id=take_id, request={"prompt": prompt, "seed": 7, "handoff": handoff, "steps": 8}, name=name,
                      created=time.time(), fps=16, num_frames=33, width=64, height=64)


def test_take_items_show_their_instruction_and_a_renamed_refine_stays_a_refine(qtbot, monkeypatch):
    from PySide6.QtWidgets import QInputDialog

    from app.widgets.takes import TakesStrip

    strip = TakesStrip()
    qtbot.addWidget(strip)
    long_prompt = "a red ball rolls right across a long wooden table while the camera pans slowly " * 3
    draft = _take("d", "a red ball rolls right")
    refine = _take("r", long_prompt, handoff=0.3)
    strip.set_takes([draft, refine], {})
    draft_text, refine_text = (strip.list.item(i).text() for i in range(2))
    assert "a red ball rolls right" in draft_text and draft_text.startswith("Draft")
    assert "Refine 30 %" in refine_text and long_prompt[:60] in refine_text
    assert long_prompt.strip() not in refine_text and "…" in refine_text  # a piece of it, not all of it
    assert long_prompt.strip() in strip.list.item(1).toolTip()  # the full instruction stays in the tooltip

    refine.name = "My favourite"
    strip.update_take(refine)
    text = strip.list.item(1).text()
    assert text.startswith("My favourite") and "Refine 30 %" in text and long_prompt[:20] in text
    assert refine.label() == "My favourite · Refine 30 %"  # captions and compare labels say it too
    assert "Refine 30 %" in strip.list.item(1).toolTip()
    # Renaming again offers the name alone, not the kind glued to it.
    offered = []
    monkeypatch.setattr(QInputDialog, "getText",
                        staticmethod(lambda *a, **k: (offered.append(k.get("text")), ("Other", True))[1]))
    strip._rename("r")
    assert offered == ["My favourite"]


def test_renamed_refine_in_the_window_keeps_its_kind(make_window, qtbot):
    from tests.app.conftest import draft

    win = make_window()
    draft(qtbot, win, "a green ball bounces")
    win.handoff.set_value(0.5, fire=True)
    qtbot.waitUntil(lambda: win.project.takes[-1].handoff == 0.5, timeout=5000)
    refine = win.project.takes[-1]
    win.rename_take(refine.id, "keeper")
    text = win.takes.list.item(win.takes.ids().index(refine.id)).text()
    assert text.startswith("keeper") and "Refine 50 %" in text and "a green ball bounces" in text


# -- 11: check boxes, radio buttons and the model picker -----------------------------------------------------
@pytest.fixture
def styled_picker(qtbot):
    """The model picker under the app's stylesheet (restored afterwards for the other tests)."""
    from app.bridge import Tasks
    from app.resources import stylesheet
    from app.widgets.dialogs import ModelPickerDialog
    from engine.api import ModelSpec

    app = QApplication.instance()
    before = app.styleSheet()
    app.setStyleSheet(stylesheet())
    tasks = Tasks()
    dlg = ModelPickerDialog(ModelSpec(), tasks)
    qtbot.addWidget(dlg)
    dlg.show()
    qtbot.waitExposed(dlg)
    yield dlg
    tasks.shutdown()
    app.setStyleSheet(before)


def _indicator_contrast(dlg, button, element) -> int:
    """How far the indicator's most distinct pixel is from the dialog's background (sum of RGB differences)."""
    image = dlg.grab().toImage()
    background = image.pixelColor(dlg.width() // 2, dlg.height() - 60)  # empty dialog area
    assert background.lightness() < 60  # the dark theme is on
    opt = QStyleOptionButton()
    button.initStyleOption(opt)
    rect = button.style().subElementRect(element, opt, button)
    rect.moveTopLeft(button.mapTo(dlg, rect.topLeft()))
    assert rect.width() >= 10

    def distance(c: QColor) -> int:
        return abs(c.red() - background.red()) + abs(c.green() - background.green()) + abs(c.blue() - background.blue())

    return max(distance(image.pixelColor(x, y))
               for x in range(rect.left(), rect.right() + 1) for y in range(rect.top(), rect.bottom() + 1))


def test_unchecked_and_checked_indicators_are_visible_on_the_dark_theme(styled_picker):
    dlg = styled_picker
    radio, check = QStyle.SubElement.SE_RadioButtonIndicator, QStyle.SubElement.SE_CheckBoxIndicator
    assert dlg.embedded.isChecked() and not dlg.custom.isChecked() and not dlg.offload.isChecked()
    # Qt's own indicators here differ from the background by ~20; a visible ring is well over 150.
    assert _indicator_contrast(dlg, dlg.custom, radio) > 150
    assert _indicator_contrast(dlg, dlg.offload, check) > 150
    assert _indicator_contrast(dlg, dlg.embedded, radio) > 300  # checked: filled
    dlg.offload.setChecked(True)
    assert _indicator_contrast(dlg, dlg.offload, check) > 300
    dlg.offload.setChecked(False)
    dlg.offload.setEnabled(False)
    dlg.custom.setEnabled(False)
    assert _indicator_contrast(dlg, dlg.offload, check) > 60  # disabled: dimmer, still there
    assert _indicator_contrast(dlg, dlg.custom, radio) > 60


def test_loading_a_bad_path_says_why_next_to_the_field_and_stays_open(styled_picker, qtbot, tmp_path):
    dlg = styled_picker
    dlg.custom.setChecked(True)
    good = make_pair(tmp_path / "good")
    dlg.light.setText(str(tmp_path / "nowhere"))
    dlg.heavy.setText(good.heavy)
    dlg.load_button.click()  # pressed without "Check pair" first: it checks anyway
    light_error, heavy_error = dlg.field_errors["light"], dlg.field_errors["heavy"]
    qtbot.waitUntil(light_error.isVisible, timeout=10000)
    assert "not found" in light_error.text() and str(tmp_path / "nowhere") in light_error.text()
    assert not heavy_error.isVisible() and dlg.light.property("invalid") and not dlg.heavy.property("invalid")
    assert dlg.isVisible() and dlg.result() != QDialog.DialogCode.Accepted
    assert dlg.load_button.isEnabled()

    dlg.light.setText(good.light)  # editing clears the mark
    assert not light_error.isVisible() and not dlg.light.property("invalid")
    dlg.load_button.click()
    qtbot.waitUntil(lambda: dlg.result() == QDialog.DialogCode.Accepted, timeout=10000)
    assert not dlg.isVisible() and dlg.spec().light == good.light


def test_cancel_while_checking_does_not_load(styled_picker, qtbot, tmp_path):
    dlg = styled_picker
    dlg.custom.setChecked(True)
    good = make_pair(tmp_path / "good")
    dlg.light.setText(good.light)
    dlg.heavy.setText(good.heavy)
    dlg.load_button.click()
    dlg.reject()
    qtbot.wait(300)
    assert dlg.result() == QDialog.DialogCode.Rejected and not dlg.isVisible()
