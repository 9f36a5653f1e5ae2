"""The app as a newcomer meets it (issue 23): the plan follows the instruction, drops are copies, nothing clipped,
Ctrl+Enter from anywhere, sane states after delete / New project, honest hand-off words, a real export folder."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QAbstractButton, QApplication, QComboBox, QLabel, QWidget

from tests.app.conftest import draft

ROOT = Path(__file__).resolve().parents[2]


def understanding_window(make_window, **options):
    from app.fake_engine import DEFAULT_SUMMARY

    return make_window(summary=dict(DEFAULT_SUMMARY, has_understanding=True), **options)


def type_instruction(qtbot, win, text: str) -> None:
    """Select all in the instruction and type over it, as a user does."""
    win.prompt.edit.setFocus()
    qtbot.keyClick(win.prompt.edit, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(win.prompt.edit, text)


def ctrl_enter(qtbot, widget, n_before: int, win) -> None:
    qtbot.keyClick(widget, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: len(win.project.takes) == n_before + 1 and win.watch_job is None, timeout=30000)


# -- 1. the plan belongs to the instruction it is shown with -------------------------------------------------
def test_second_draft_is_rendered_from_its_own_instruction_plan(make_window, qtbot):
    win = understanding_window(make_window)
    first, second = "a small red circle moves left", "a big green plain square moves up"
    type_instruction(qtbot, win, first)
    ctrl_enter(qtbot, win.prompt.edit, 0, win)
    assert first in win.plan.plan() and win.plan.status == "written"
    type_instruction(qtbot, win, second)
    assert win.prompt.text() == second
    # The shown plan is marked stale the moment the instruction changes.
    assert win.plan.status == "stale" and "earlier instruction" in win.plan.state.text()
    ctrl_enter(qtbot, win.prompt.edit, 1, win)
    take = win.project.takes[-1]
    assert take.request["prompt"] == second
    assert second in take.metadata["plan"] and first not in take.metadata["plan"]
    assert take.request.get("plan") in (None, take.metadata["plan"])
    # The panel now shows the second instruction's plan, and the project file says whose it is.
    assert win.plan.plan() == take.metadata["plan"] and win.plan.status == "written"
    win.save_project(sync=True)
    saved = json.loads(win.project.file.read_text())
    assert second in saved["plan"] and saved["plan_instruction"] == second and saved["plan_edited"] is False


def test_hand_edited_plan_is_kept_only_for_its_instruction(make_window, qtbot):
    win = understanding_window(make_window)
    instruction = "a red circle moves left"
    type_instruction(qtbot, win, instruction)
    ctrl_enter(qtbot, win.prompt.edit, 0, win)
    # The user corrects the plan by hand.
    win.plan.text.setFocus()
    qtbot.keyClick(win.plan.text, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(win.plan.text, "1. a red circle on the right")
    qtbot.keyClick(win.plan.text, Qt.Key.Key_Return)
    qtbot.keyClicks(win.plan.text, "2. it moves left")
    assert win.plan.status == "edited" and "Edited by you" in win.plan.state.text()
    win.settings_panel.lock.setChecked(False)
    ctrl_enter(qtbot, win.plan.text, 1, win)  # Ctrl+Enter from the plan box drafts too
    edited = win.project.takes[-1]
    assert edited.request["plan"] == "1. a red circle on the right\n2. it moves left"
    assert win.plan.plan() == edited.request["plan"]  # a draft never overwrites the user's edit
    # Same words, other spacing: still the same instruction, the edit stays.
    type_instruction(qtbot, win, "a red  circle moves left ")
    assert win.plan.status == "edited"
    # Another instruction: the edit no longer applies, and the next draft gets a fresh plan for the new one.
    type_instruction(qtbot, win, "a blue square moves up")
    assert win.plan.status == "stale"
    ctrl_enter(qtbot, win.prompt.edit, 2, win)
    fresh = win.project.takes[-1]
    assert fresh.request.get("plan") in (None, fresh.metadata["plan"])
    assert "a blue square moves up" in fresh.metadata["plan"] and "on the right" not in fresh.metadata["plan"]
    assert win.plan.status == "written" and win.plan.plan() == fresh.metadata["plan"]


def test_plan_state_survives_reopening(make_window, qtbot):
    win = understanding_window(make_window)
    type_instruction(qtbot, win, "a red circle moves left")
    ctrl_enter(qtbot, win.prompt.edit, 0, win)
    type_instruction(qtbot, win, "a blue square moves up")  # the shown plan is now stale
    win.save_project(sync=True)
    folder = win.project.folder
    win.close()
    again = understanding_window(make_window, project_path=folder)
    assert again.prompt.text() == "a blue square moves up"
    assert again.plan.status == "stale"
    assert again._base_request().plan is None  # a stale plan is never sent


def test_old_project_plan_without_owner_is_not_trusted(tmp_path, make_window, qtbot):
    """Projects saved before plans knew their instruction may hold the bug's mismatched plan: shown stale."""
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "project.json").write_text(json.dumps({
        "format": "lumos-studio-project", "version": 1, "prompt": "a big green square moves up",
        "plan": "1. a small red circle\n2. it moves left", "takes": []}))
    win = understanding_window(make_window, project_path=folder)
    assert win.plan.status == "stale" and win._base_request().plan is None


# -- 2. and 3. drops are copies and do not lock the seed --------------------------------------------------------
def _exported_take(win, qtbot, tmp_path, prompt="a dotted triangle moves left"):
    t = draft(qtbot, win, prompt)
    out = tmp_path / "exported.mp4"
    done = []
    win.export_take(t.id, out, on_done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=30000)
    return t, out


def test_drop_is_accepted_as_copy_never_move(make_window, qtbot, tmp_path):
    win = make_window()
    t, out = _exported_take(win, qtbot, tmp_path)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(out))])
    both = Qt.DropAction.CopyAction | Qt.DropAction.MoveAction
    shift = Qt.KeyboardModifier.ShiftModifier  # with Shift held, a file manager proposes Move
    enter = QDragEnterEvent(win.rect().center(), both, mime, Qt.MouseButton.LeftButton, shift)
    assert enter.proposedAction() == Qt.DropAction.MoveAction
    QApplication.sendEvent(win, enter)
    assert enter.isAccepted() and enter.dropAction() == Qt.DropAction.CopyAction
    drop = QDropEvent(QPointF(win.rect().center()), both, mime, Qt.MouseButton.LeftButton, shift)
    QApplication.sendEvent(win, drop)
    assert drop.isAccepted() and drop.dropAction() == Qt.DropAction.CopyAction
    move_only = QDropEvent(QPointF(win.rect().center()), Qt.DropAction.MoveAction, mime,
                           Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(win, move_only)
    assert not move_only.isAccepted()  # a source that can only move is refused: the file stays where it is
    assert out.exists()


def test_open_take_from_mp4_menu(make_window, qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    win = make_window()
    t, out = _exported_take(win, qtbot, tmp_path, "a plain square grows")
    win.prompt.set_text("")
    action = next(a for a in win.findChildren(type(win.export_action)) if a.text() == "Open take from MP4…")
    assert action.shortcut().toString() == "Ctrl+Shift+O"
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(out), "")))
    action.trigger()
    qtbot.waitUntil(lambda: win.prompt.text() == "a plain square grows", timeout=20000)


def test_restoring_a_take_does_not_lock_the_seed(make_window, qtbot, tmp_path):
    win = make_window()
    assert not win.settings_panel.lock.isChecked()
    t, out = _exported_take(win, qtbot, tmp_path)
    win.reproduce_from(out)
    qtbot.waitUntil(lambda: "Settings restored" in win.banner.text.text(), timeout=20000)
    assert win.settings_panel.seed.value() == t.seed
    assert not win.settings_panel.lock.isChecked() and not win.seed_note.isVisible()
    assert "lock the seed" in win.banner.text.text()  # says what the next draft does
    seeds = set()
    for i in range(2):
        seeds.add(draft(qtbot, win, f"a dotted triangle moves right {i}").seed)
    assert len(seeds) == 2  # new drafts roll their own seeds


def test_a_locked_seed_is_visible_and_not_carried_into_a_new_project(make_window, qtbot):
    win = make_window()
    win.settings_panel.seed.setValue(4321)
    win.settings_panel.lock.setChecked(True)
    assert win.seed_note.isVisible() and "4321" in win.seed_note.text()
    win.seed_note.click()  # one click unlocks
    assert not win.settings_panel.lock.isChecked() and not win.seed_note.isVisible()
    win.settings_panel.lock.setChecked(True)
    qtbot.keyClick(win, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert not win.settings_panel.lock.isChecked() and not win.seed_note.isVisible()


# -- 4. the left column is never narrower than its contents ---------------------------------------------------------
def _clipped_widgets(win) -> list[str]:
    """Visible widgets of the left column narrower than their minimum size hint, or cut off by the viewport."""
    scroll = win.column_scroll
    viewport = scroll.viewport()
    problems = []
    for w in [scroll.widget(), *scroll.widget().findChildren(QWidget)]:
        if not w.isVisibleTo(win) or w.window() is not win:
            continue
        if isinstance(w, (QLabel, QAbstractButton, QComboBox)) or w is scroll.widget():
            hint = w.minimumSizeHint().width()
            if isinstance(w, QLabel) and w.wordWrap():
                hint = 0
            if w.width() < hint:
                problems.append(f"{type(w).__name__} '{getattr(w, 'text', lambda: '')()}' {w.width()} < {hint}")
        right = w.mapTo(viewport, w.rect().topRight()).x()
        if right > viewport.width():
            problems.append(f"{type(w).__name__} '{getattr(w, 'text', lambda: '')()}' ends at {right} > "
                            f"{viewport.width()}")
    return problems


def test_left_column_fits_its_contents_at_small_and_large_windows(make_window, qtbot):
    win = understanding_window(make_window)
    win.settings_panel.adv_toggle.setChecked(True)
    win.prompt.more.setChecked(True)
    for width, height in ((1024, 700), (1920, 1080)):
        win.resize(width, height)
        win.splitter.setSizes([40, width])  # as if dragged (or restored) far too narrow
        type_instruction(qtbot, win, "a big green plain square moves up while a small red striped circle "
                                     "moves to the left and a blue dotted triangle stays still")
        qtbot.wait(50)
        QApplication.processEvents()
        assert not _clipped_widgets(win), (width, height, _clipped_widgets(win))
        assert win.splitter.sizes()[0] >= win.column_scroll.minimumSizeHint().width()


def test_gate_placeholder_is_not_clipped(make_window, qtbot):
    win = make_window(wait_loaded=False)
    plot = win.handoff.plot
    plot.placeholder = "the gate appears once models load"
    image = plot.grab().toImage()
    # text drawn with word wrap inside the widget: nothing may touch the left or right edge columns
    fm = plot.fontMetrics()
    rect = fm.boundingRect(plot.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, plot.placeholder)
    assert rect.left() >= 0 and rect.right() <= plot.width(), (rect, plot.width())
    assert not image.isNull()


# -- 5. Ctrl+Enter drafts from anywhere; Write plan gives focus back ---------------------------------------------
def test_write_plan_keeps_focus_for_ctrl_enter(make_window, qtbot):
    win = understanding_window(make_window)
    type_instruction(qtbot, win, "a red circle moves left")
    win.plan.write.setFocus()
    qtbot.keyClick(win.plan.write, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: win.plan.plan() is not None and win.plan.write.isEnabled(), timeout=20000)
    assert QApplication.focusWidget() is win.prompt.edit
    ctrl_enter(qtbot, QApplication.focusWidget(), 0, win)


def test_ctrl_enter_drafts_from_any_widget(make_window, qtbot):
    win = make_window()
    win.prompt.set_text("a blue square moves up")
    n = 0
    for widget in (win.settings_panel.size, win.settings_panel.steps, win.handoff.slider, win.takes.list):
        widget.setFocus()
        win.settings_panel.lock.setChecked(False)
        ctrl_enter(qtbot, widget, n, win)
        n += 1


def test_ctrl_enter_uses_a_number_typed_but_not_confirmed(make_window, qtbot):
    win = make_window()
    win.prompt.set_text("a blue square moves up")
    steps = win.settings_panel.steps
    steps.setFocus()
    steps.lineEdit().selectAll()
    qtbot.keyClicks(steps.lineEdit(), "7")
    ctrl_enter(qtbot, steps, 0, win)
    assert win.project.takes[-1].request["steps"] == 7


# -- 7. states after delete, New project and at start --------------------------------------------------------------
def test_deleting_the_refine_on_screen_shows_its_draft(make_window, qtbot):
    win = make_window()
    base = draft(qtbot, win)
    win.handoff.set_value(0.6, fire=True)
    qtbot.waitUntil(lambda: len(win.project.takes) == 2 and win.watch_job is None, timeout=30000)
    refine = win.project.takes[-1]
    assert win.project.current_take == refine.id
    win.delete_take(refine.id)
    assert win.project.current_take == base.id
    assert win.handoff.value == 0.0 and win.handoff.isEnabled()
    assert len(win.storyboard.frames) > 1 and win.player.source is not None
    win.delete_take(base.id)
    assert win.project.current_take is None and not win.storyboard.frames
    assert win.handoff.value == 0.0 and not win.handoff.isEnabled()
    assert win.player.view.placeholder.startswith("Type an instruction")


def test_new_project_is_a_clean_start(make_window, qtbot):
    win = make_window()
    draft(qtbot, win)
    win.handoff.set_value(1.0, fire=True)
    qtbot.waitUntil(lambda: len(win.project.takes) == 2 and win.watch_job is None, timeout=30000)
    qtbot.keyClick(win, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert not win.project.takes and win.handoff.value == 0.0 and not win.handoff.isEnabled()
    assert win.player.view.placeholder.startswith("Type an instruction")
    assert win.player.status.text() == "" and not win.storyboard.frames


def test_settings_show_the_configured_family_from_the_first_paint(make_window, qtbot):
    """Before any model loads, the panel already shows what the embedded family was made for."""
    family = json.loads((ROOT / "resources" / "models" / "lumos-mini" / "lumos.json").read_text())
    win = make_window(wait_loaded=False)
    values = win.settings_panel.values()
    for key in ("width", "height", "num_frames", "steps"):
        assert values[key] == family[key], key
    assert win.plan.isVisibleTo(win)  # the family has an understanding block: no panel popping in later
    assert f"at {family['fps']} fps" in win.settings_panel.seconds.text()


# -- 8. hand-off words and plot ---------------------------------------------------------------------------------------
def test_handoff_words_at_the_ends_and_after_changing_steps(make_window, qtbot):
    win = make_window()
    base = draft(qtbot, win)
    qtbot.waitUntil(lambda: win.handoff.describing, timeout=20000)
    win.handoff.set_value(1.0)
    words = win.handoff.words.text()
    assert "leads 0 of" not in words and "heavy generator leads all" in words
    steps = base.request["steps"]
    win.settings_panel.steps.setValue(steps + 7)
    words = win.handoff.words.text()
    assert "Steps changed since this draft" in words and "press Draft" in words
    assert f"all {steps} steps" in words  # the refine really runs the draft's steps
    win.settings_panel.steps.setValue(steps)
    assert "changed since" not in win.handoff.words.text()


def test_gate_plot_has_axes(make_window, qtbot):
    win = make_window()
    draft(qtbot, win)
    qtbot.waitUntil(lambda: win.handoff.describing, timeout=20000)
    win.handoff.set_value(0.5)
    plot = win.handoff.plot
    r = plot.plot_rect()
    assert r.left() > 10 and r.bottom() < plot.height() - 8  # room for the share ticks and the step numbers
    image = plot.grab().toImage()
    ratio = image.width() / plot.width()

    def inked(x0, x1, y0, y1) -> int:
        return sum(1 for x in range(int(x0 * ratio), int(x1 * ratio)) for y in range(int(y0 * ratio), int(y1 * ratio))
                   if image.pixelColor(x, y).lightness() > 90)

    assert inked(0, r.left() - 2, 0, plot.height()) > 10  # tick labels on the left
    assert inked(r.left(), r.right(), r.bottom() + 2, plot.height()) > 10  # step labels below


# -- 12. the export folder ------------------------------------------------------------------------------------------
def test_export_starts_in_the_videos_folder_then_the_last_one(make_window, qtbot, tmp_path, monkeypatch, user_dirs):
    import app.window_export as mw

    seen = []

    class Dialog:
        def __init__(self, path, *args):
            seen.append(Path(path))

        def exec(self):
            return False

    monkeypatch.setattr(mw, "ExportDialog", Dialog)
    win = make_window()
    t = draft(qtbot, win)
    win.export_dialog()
    videos = user_dirs / "videos"
    assert seen[-1].parent == videos and videos.is_dir()
    (tmp_path / "elsewhere").mkdir()
    done = []
    win.export_take(t.id, tmp_path / "elsewhere" / "x.mp4", on_done=done.append)
    qtbot.waitUntil(lambda: bool(done) or "failed" in win.banner.text.text(), timeout=30000)
    win.export_dialog()
    assert seen[-1].parent == tmp_path / "elsewhere"


def test_typing_does_not_widen_the_left_column(make_window, qtbot):
    win = understanding_window(make_window)
    win.resize(1024, 700)
    win.prompt.set_token_budget(80)  # as with the embedded family: the count line also estimates tokens
    qtbot.wait(50)
    before = win.column_scroll.minimumSizeHint().width()
    type_instruction(qtbot, win, "a big green plain square moves up while a small red striped circle moves left")
    QApplication.processEvents()
    assert win.column_scroll.minimumSizeHint().width() == before


def test_takes_header_elides_and_selected_thumbnails_keep_their_colours(make_window, qtbot):
    from PySide6.QtGui import QIcon

    win = make_window()
    win.resize(1024, 700)
    t = draft(qtbot, win)
    hint = win.takes.hint
    hint.setText("Ctrl+click a second take to compare, right-click for star, rename and delete.")
    QApplication.processEvents()
    assert hint.fontMetrics().horizontalAdvance(hint.text()) <= hint.width()
    assert hint.full_text().startswith("Ctrl+click") and hint.toolTip() == hint.full_text()
    item_icon = win.takes.list.item(0).icon()
    size = win.takes.list.iconSize()
    normal = item_icon.pixmap(size, QIcon.Mode.Normal).toImage()
    selected = item_icon.pixmap(size, QIcon.Mode.Selected).toImage()
    assert normal == selected, t.id


def test_export_status_message_is_short(make_window, qtbot, tmp_path):
    win = make_window()
    t = draft(qtbot, win)
    out = tmp_path / ("a-very-long-folder-name-" * 4) / "take.mp4"
    out.parent.mkdir()
    done = []
    win.export_take(t.id, out, on_done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=30000)
    assert win.statusBar().currentMessage() == "Exported take.mp4"
    assert str(out) in win.banner.text.text()


def test_count_line_stays_on_one_line_when_there_is_room(make_window, qtbot):
    win = make_window()
    win.resize(1600, 1000)
    win.prompt.set_token_budget(80)
    type_instruction(qtbot, win, "a small red dotted circle at the top right moves left. sand checked background.")
    QApplication.processEvents()
    count = win.prompt.count
    one_line = count.fontMetrics().horizontalAdvance(count.text())
    assert one_line <= count.width() and count.height() < 2 * count.fontMetrics().lineSpacing()
