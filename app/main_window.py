"""Lumos Studio's main window: instruction → draft → storyboard → hand-off refine → takes → export.

State lives in plain objects (Project, TakeRecord, Settings, the jobs table); widgets show it and emit intents;
the window turns intents into engine calls and engine events (via EngineBridge) into state + widget updates.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numpy as np
from PySide6.QtCore import QByteArray, QEvent, Qt, QTimer
from PySide6.QtGui import QAction, QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.api import (
    ModelSpec,
    ProjectError,
    RenderRequest,
    RequestError,
    check_request,
    default_handoff,
    expected_defaults,
    export_take,
    gate_schedule,
    read_take_metadata,
)

from . import project as proj
from .bridge import EngineBridge, FinishedTake, StepPreview, Tasks, frame_to_qimage, keyframe_indices
from .media import read_mp4_frames
from .plan_state import PlanState, same_instruction
from .project import Project, Settings, TakeRecord
from .resources import icon
from .widgets.common import Banner, Storyboard
from .widgets.controls import PlanPanel, PromptEditor, SettingsPanel
from .widgets.dialogs import ExportDialog, ModelPickerDialog, ShortcutsDialog
from .widgets.handoff import HandoffPanel
from .widgets.player import CompareView, Player
from .widgets.takes import QueueView, TakesStrip

log = logging.getLogger(__name__)

FRAME_CACHE_BYTES = 1_500_000_000
ERROR_HINTS = {
    "OutOfMemory": "",  # the engine's message already says what to do
    "ModelError": " Use the button to choose other models (Models ▸ Choose models…).",
    "RequestError": " Change the setting named above and try again.",
    "InternalError": " The app is still usable; if it happens again, try other settings and report it.",
}


EMPTY_PLAYER_TEXT = "Type an instruction and press Draft (Ctrl+Enter).\nThe preview streams here while it renders."


class ColumnScroll(QScrollArea):
    """The left column's scroll area: vertical scrolling only, so it is never narrower than its contents need
    (a narrower viewport would cut their edges off); the splitter reads this from minimumSizeHint."""

    def __init__(self, content: QWidget):
        super().__init__()
        self.setWidget(content)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QScrollArea.Shape.NoFrame)
        content.installEventFilter(self)

    def minimumSizeHint(self):
        hint = super().minimumSizeHint()
        need = self.widget().minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width()
        need += 2 * self.frameWidth()
        hint.setWidth(max(hint.width(), need))
        return hint

    def eventFilter(self, obj, event) -> bool:
        if obj is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()  # the contents' minimum may have grown (a longer label): tell the splitter
        return super().eventFilter(obj, event)


def request_key(req: RenderRequest) -> str:
    """Identity of a take: every field of the (checked) request."""
    return json.dumps(check_request(req).to_dict(), sort_keys=True, default=str)


@dataclass
class JobInfo:
    id: int
    kind: str  # "load", "draft", "refine", "plan"
    label: str
    state: str = "queued"
    key: str | None = None
    base_id: str | None = None
    step: int = 0
    total: int = 0
    project: object = None  # the Project it was submitted in (its take goes there even if another is open)
    live_from: tuple[int, float] | None = None  # (step, elapsed) at the end of the first computed step


class MainWindow(QMainWindow):
    def __init__(self, engine_factory: Callable | None = None, settings: Settings | None = None,
                 project_path: str | Path | None = None, start_engine: bool = True):
        super().__init__()
        self.setWindowTitle("Lumos Studio")
        self.setWindowIcon(icon("app"))
        self.setAcceptDrops(True)
        self.first_paint: float | None = None
        self._start_engine_after_paint = False
        # imageio-ffmpeg otherwise starts ffmpeg with preexec_fn, which forces a full fork() of this big process
        # while holding the GIL: a visible GUI stall each time a take file is written.
        os.environ.setdefault("IMAGEIO_FFMPEG_NO_PREVENT_SIGINT", "1")
        self.torch_at_first_paint: bool | None = None
        self.settings_problem = None
        if settings is None:
            settings, self.settings_problem = Settings.load()
        self.settings = settings
        self.summary: dict | None = None
        self.plan_state = PlanState()
        self.jobs: dict[int, JobInfo] = {}
        self.watch_job: int | None = None
        self.frames: OrderedDict[str, np.ndarray] = OrderedDict()
        self.thumbs: dict[str, QImage] = {}
        self.keyframes: dict[str, list] = {}
        self._timesteps: dict[tuple, list[float]] = {}
        self._loading_frames: set[str] = set()
        self._pending_compare: tuple[str, str] | None = None
        self._closing = False
        self._deferred: list[Callable[[], None]] = []  # intents that arrived while the engine was starting
        self._draft_after_load = False  # Draft pressed before the models (and their default sizes) were known
        self._models_pending = start_engine  # a model load is coming or running
        self._engine_factory = engine_factory
        self.tasks = Tasks(self)
        self.bridge = EngineBridge(engine_factory, self)
        self._build_ui()
        self._build_menus()
        self._connect_bridge()
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(800)
        self._save_timer.timeout.connect(self.save_project)
        self._memory_timer = QTimer(self)
        self._memory_timer.setInterval(2000)
        self._memory_timer.timeout.connect(self._update_memory)
        self._memory_timer.start()
        self._update_memory()
        self.project = self._open_initial_project(project_path)
        self._apply_expected_defaults()
        self._restore_settings()
        self._update_seed_note()  # (a settings problem is told with the project's, in _open_initial_project)
        self._start_engine_after_paint = start_engine

    # ------------------------------------------------------------------ layout
    def _build_ui(self) -> None:
        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(8, 6, 8, 6)
        outer.setSpacing(6)
        self.banner = Banner()
        outer.addWidget(self.banner)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        # Left column: instruction, plan, settings, draft.
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 4, 0)
        self.prompt = PromptEditor()
        self.prompt.draftRequested.connect(self.draft)
        self.prompt.changed.connect(self._schedule_save)
        self.prompt.changed.connect(self._refresh_plan_status)
        lv.addWidget(self.prompt)
        self.plan = PlanPanel()
        self.plan.setVisible(False)
        self.plan.planRequested.connect(self.request_plan)
        self.plan.changed.connect(self._schedule_save)
        self.plan.edited.connect(self._plan_edited)
        lv.addWidget(self.plan)
        self.settings_panel = SettingsPanel()
        self.settings_panel.changed.connect(self._settings_changed)
        lv.addWidget(self.settings_panel)
        lv.addStretch(1)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(0, 4, 4, 0)
        self.draft_button = QPushButton(icon("draft"), "Draft")
        self.draft_button.setObjectName("primary")
        self.draft_button.setToolTip("Render a fast draft with the light generator alone (Ctrl+Enter)")
        self.draft_button.clicked.connect(self.draft)
        self.cancel_button = QPushButton(icon("stop"), "Cancel")
        self.cancel_button.setToolTip("Cancel the running job (Esc)")
        self.cancel_button.clicked.connect(self.cancel_running)
        self.cancel_button.setEnabled(False)
        buttons.addWidget(self.draft_button, 2)
        buttons.addWidget(self.cancel_button, 1)
        self.seed_note = QToolButton()
        self.seed_note.setObjectName("seedNote")
        self.seed_note.setIcon(icon("lock"))
        self.seed_note.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.seed_note.setToolTip("The seed is locked: every draft uses it. Click to unlock, so that each draft "
                                  "rolls a new seed")
        self.seed_note.clicked.connect(lambda: self.settings_panel.lock.setChecked(False))
        self.settings_panel.changed.connect(self._update_seed_note)
        self.column_scroll = ColumnScroll(left)
        column = QWidget()  # the Draft button stays visible however tall the settings get
        cl = QVBoxLayout(column)
        cl.setContentsMargins(0, 0, 0, 0)
        cl.setSpacing(0)
        cl.addWidget(self.column_scroll, 1)
        cl.addWidget(self.seed_note, 0, Qt.AlignmentFlag.AlignLeft)
        cl.addLayout(buttons)
        self.splitter.addWidget(column)
        # Centre: player / compare, storyboard, hand-off.
        centre = QWidget()
        cv = QVBoxLayout(centre)
        cv.setContentsMargins(4, 0, 0, 0)
        self.stack = QStackedWidget()
        self.player = Player()
        self.compare = CompareView()
        self.compare.closed.connect(self.close_compare)
        self.stack.addWidget(self.player)
        self.stack.addWidget(self.compare)
        cv.addWidget(self.stack, 1)
        self.storyboard = Storyboard()
        self.storyboard.frameClicked.connect(self._keyframe_clicked)
        cv.addWidget(self.storyboard)
        self.handoff = HandoffPanel(debounce_ms=self.settings.debounce_ms)
        self.handoff.requested.connect(self.refine)
        self.handoff.setEnabled(False)
        cv.addWidget(self.handoff)
        self.splitter.addWidget(centre)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)  # a column dragged to nothing would hide the instruction
        self.splitter.setSizes([390, 900])
        outer.addWidget(self.splitter, 1)
        bottom = QHBoxLayout()
        bottom.setContentsMargins(0, 0, 0, 0)
        self.takes = TakesStrip()
        self.takes.selected.connect(self.show_take)
        self.takes.compareRequested.connect(self.open_compare)
        self.takes.compareWithDraft.connect(self.compare_with_draft)
        self.takes.starToggled.connect(self.toggle_star)
        self.takes.renameRequested.connect(self.rename_take)
        self.takes.deleteRequested.connect(self.delete_take)
        self.queue = QueueView()
        self.queue.cancelRequested.connect(self.cancel_job)
        bottom.addWidget(self.takes, 1)
        bottom.addWidget(self.queue)
        # Under the player only: the left column keeps the window's full height for instruction, plan and settings.
        cv.addLayout(bottom)
        self.setCentralWidget(central)
        # Status bar: models, device, load progress.
        sb = self.statusBar()
        self.model_label = QLabel("Models: starting…")
        self.model_label.setToolTip("The loaded generator pair")
        self.device_label = QLabel("")
        self.device_label.setToolTip("Where the models run, their precision and size")
        self.load_bar = QProgressBar()
        self.load_bar.setMaximumWidth(180)
        self.load_bar.setRange(0, 100)
        self.load_bar.setToolTip("Model loading progress")
        self.load_bar.setVisible(False)
        self.memory_label = QLabel("")
        self.memory_label.setToolTip("Memory in use by Lumos Studio (and on the GPU, when one is used)")
        sb.addPermanentWidget(self.load_bar)
        sb.addPermanentWidget(self.memory_label)
        sb.addPermanentWidget(self.device_label)
        sb.addPermanentWidget(self.model_label)
        self.resize(1280, 800)
        self.setMinimumSize(1024, 700)

    def _build_menus(self) -> None:
        def action(menu, text, slot, shortcut=None, tip="", icon_name=None):
            a = QAction(text, self)
            if icon_name:
                a.setIcon(icon(icon_name))
            if shortcut:
                a.setShortcut(QKeySequence(shortcut))
            a.setStatusTip(tip)
            a.setToolTip(tip)
            a.triggered.connect(slot)
            menu.addAction(a)
            return a

        mb = self.menuBar()
        f = mb.addMenu("&File")
        action(f, "New project", self.new_project, "Ctrl+N", "Start an empty project (the current one stays saved)")
        action(f, "Open project…", self.open_project_dialog, "Ctrl+O", "Open a saved project", "folder")
        self.recent_menu = f.addMenu("Open recent")
        self.recent_menu.setToolTipsVisible(True)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        action(f, "Open take from MP4…", self.open_take_dialog, "Ctrl+Shift+O",
               "Restore the instruction and settings of an exported take (same as dropping the MP4 here)", "folder")
        action(f, "Save project as…", self.save_as_dialog, "Ctrl+Shift+S", "Copy this project and its takes to a folder")
        f.addSeparator()
        self.export_action = action(f, "Export take…", self.export_dialog, "Ctrl+E",
                                    "Export the shown take as MP4 (settings inside, drop it back to reproduce)", "export")
        f.addSeparator()
        action(f, "Quit", self.close, "Ctrl+Q")
        r = mb.addMenu("&Render")
        draft_action = action(r, "Draft", self.draft, None, "Render a draft (Ctrl+Enter, from anywhere in the window)",
                              "draft")
        # Return and the keypad's Enter are different keys; either drafts wherever the focus is.
        draft_action.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
        draft_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action(r, "Cancel running job", self.cancel_running, None, "Esc", "stop")
        action(r, "Cancel all jobs", self.cancel_all, None, "Cancel the running job and empty the queue")
        action(r, "Refine at the default hand-off", self.refine_official, "Ctrl+R",
               "Move the hand-off to the amber mark (the model family's measured default, else the authors' "
               "γ_w = 0.3) and refine")
        action(r, "Hand-off −5 %", lambda: self._nudge_handoff(-5), "Ctrl+[")
        action(r, "Hand-off +5 %", lambda: self._nudge_handoff(5), "Ctrl+]")
        v = mb.addMenu("&View")
        action(v, "Compare selected takes", self.compare_selected, "Ctrl+K", "Side by side or wipe", "compare")
        m = mb.addMenu("&Models")
        action(m, "Choose models…", self.choose_models, None, "Embedded family or your own light + heavy pair", "model")
        h = mb.addMenu("&Help")
        action(h, "Shortcuts", self.show_shortcuts, "F1", "Every keyboard shortcut")
        action(h, "About Lumos Studio", self.show_about)
        esc = QShortcut(QKeySequence("Esc"), self)
        esc.activated.connect(self.escape)

    def _connect_bridge(self) -> None:
        # Bound methods only: these signals are emitted on the engine's worker thread.
        b = self.bridge
        b.queued.connect(self._on_queued)
        b.started.connect(self._on_started)
        b.loadProgress.connect(self._on_load_progress)
        b.modelsLoaded.connect(self._on_models_loaded)
        b.step.connect(self._on_step)
        b.finished.connect(self._on_finished)
        b.failed.connect(self._on_failed)
        b.cancelled.connect(self._on_cancelled)
        b.planReady.connect(self._on_plan)
        b.ready.connect(self._on_engine_ready)
        b.startFailed.connect(self._on_engine_failed)

    # ------------------------------------------------------------------ startup / shutdown
    def event(self, e) -> bool:
        if e.type() == QEvent.Type.Paint and self.first_paint is None:
            self.first_paint = time.perf_counter()
            self.torch_at_first_paint = "torch" in sys.modules
            if self._start_engine_after_paint:
                # Only once the window is on screen: the worker's torch import competes for the GIL.
                QTimer.singleShot(30, self.start_engine)
        return super().event(e)

    def _update_memory(self) -> None:
        text = f"RAM {process_memory_bytes() / 2**30:.1f} GB" if process_memory_bytes() else ""
        torch = sys.modules.get("torch")  # only if the engine already imported it: never import it here
        if torch is not None and self.summary and str(self.summary.get("device", "")).startswith("cuda"):
            try:
                used, total = torch.cuda.memory_allocated(), torch.cuda.get_device_properties(0).total_memory
                text += f" · GPU {used / 2**30:.1f}/{total / 2**30:.0f} GB"
            except Exception:
                pass
        self.memory_label.setText(text)

    def current_spec(self) -> ModelSpec:
        s = self.settings
        return ModelSpec(light=s.model_light or None, heavy=s.model_heavy or None,
                         understanding=s.model_understanding or None, device=s.model_device, offload=s.model_offload)

    @property
    def engine(self):
        return self.bridge.engine

    def start_engine(self) -> None:
        if self.engine is not None or self.bridge.starting:
            return
        self.model_label.setText("Models: starting the engine…")
        self.load_bar.setVisible(True)
        self.load_bar.setValue(0)
        self.bridge.start(self.current_spec())

    def _on_engine_ready(self) -> None:
        self.model_label.setText("Models: loading…")
        deferred, self._deferred = self._deferred, []
        for call in deferred:
            call()

    def _on_engine_failed(self, message: str) -> None:
        self._deferred = []
        self._draft_after_load = self._models_pending = False
        self.load_bar.setVisible(False)
        self.model_label.setText("Models: engine unavailable")
        self.banner.show_message(message, "error")

    def closeEvent(self, event) -> None:
        self._closing = True  # jobs cancelled by the shutdown stay in the project's queue for next time
        self.player.transport.pause()
        self.compare.stop()
        self.bridge.shutdown()
        self.tasks.shutdown()  # finish take files and saves already queued
        QApplication.processEvents()  # deliver their results (and any last engine events) to the project
        self.save_project(sync=True)
        self.project.close()  # the folder's lock: another instance may open it now
        self._store_settings()
        super().closeEvent(event)

    # ------------------------------------------------------------------ projects and settings
    def _open_initial_project(self, path) -> Project:
        target = Path(path) if path else Path(self.settings.last_project or proj.default_project_dir())
        failed = None
        try:
            opened = proj.open_project(target, create=True)
        except ProjectError as exc:  # a broken last project never stops the app: a fresh one, and say so
            fresh = proj.unused_project_dir()
            opened, failed = proj.open_project(fresh, create=True), f"{exc} A new project was started in {fresh}."
        self._apply_project(opened.project)
        self._tell_opened(opened, " ".join(m for m in (self.settings_problem, failed) if m),
                          "error" if failed else "warning" if self.settings_problem else None)
        return opened.project

    def _tell_opened(self, opened, before: str | None = None, level: str | None = None) -> None:
        """One banner for what opening a project found, after earlier words (a settings problem, a failed open).
        A read-only project offers a copy; otherwise _apply_project's offer to render a queue again is kept."""
        text = " ".join(m for m in (before, opened.message) if m)
        if not text:
            return
        level = level or opened.level
        if opened.read_only:
            self.banner.show_message(text, "warning", "Open a copy", self.open_copy)
        elif self.project.queue and self.banner.level:
            self.banner.show_message(f"{text} {self.banner.text.text()}", level, "Render again", self.resume_queue)
        else:
            self.banner.show_message(text, level)

    def open_copy(self) -> None:
        """A project open in another window is shown read-only here: copy it beside itself and continue there."""
        if not self.save_as(proj.unused_copy_dir(self.project.folder)):
            return
        for t in self.project.takes:  # takes made while read-only were kept in memory: their files go to the copy
            if t.file is None and t.id in self.frames:
                take = SimpleNamespace(frames=self.frames[t.id], fps=t.fps, metadata=t.metadata)
                self._write_take_file(t, take, self.thumbs.get(t.id) or QImage())

    def _apply_project(self, project: Project) -> None:
        old = getattr(self, "project", None)
        if old is not None and old is not project:
            old.close()  # its lock goes now: reopening it at once (Open recent) must find it free
        self.project = project
        self.settings.add_recent_project(str(project.folder))
        self.frames.clear()
        self.thumbs.clear()
        self.keyframes.clear()
        self.prompt.set_text(project.prompt)
        self.prompt.set_negative(project.negative_prompt)
        self.plan_state = PlanState(project.plan, project.plan_instruction, project.plan_edited)
        self.plan.set_plan(project.plan)
        self.plan.use.setChecked(project.use_plan)
        self._refresh_plan_status()
        self.settings_panel.set_values(project.settings or self.settings.render)
        self._update_seed_note()
        for t in project.takes:
            thumb_path = project.path_of(t, "thumbnail")
            if thumb_path is not None and thumb_path.exists():
                self.thumbs[t.id] = QImage(str(thumb_path))
        self.takes.set_takes(project.takes, self.thumbs)
        self.setWindowTitle(f"{project.name} — Lumos Studio")
        self._update_handoff_state()
        current = project.take(project.current_take) or project.take(project.base_draft)
        self.watch_job = None  # a job still streaming belongs to the project it was started in
        self.statusBar().clearMessage()
        if current is not None:
            self.show_take(current.id)
        else:
            self._show_nothing()
        if project.queue:
            n = len(project.queue)
            self.banner.show_message(f"{n} render{'s' if n > 1 else ''} had not finished when Lumos Studio last "
                                     "closed.", "info", "Render again", self.resume_queue)

    def _apply_expected_defaults(self) -> None:
        """Show the settings the configured models were made for from the first paint (read from their family's
        lumos.json, no weights), instead of generic ones that jump once the models have loaded."""
        try:
            expected = expected_defaults(self.current_spec())
        except Exception as exc:  # a bad configured path is reported by the load itself
            log.info("no family defaults before loading: %s", exc)
            return
        if not expected:
            return
        self.plan.setVisible(bool(expected.get("has_understanding")))
        defaults = expected.get("defaults") or {}
        if isinstance(defaults.get("fps"), int):
            self.settings_panel.set_fps(defaults["fps"])
        if defaults and self.settings.defaults_applied_for != self.settings.model_key() and not self.project.takes:
            self._apply_family_defaults(defaults)

    def _apply_family_defaults(self, defaults: dict) -> None:
        values = self.settings_panel.values()
        values.update({k: defaults[k] for k in ("width", "height", "num_frames", "steps", "guidance_light",
                                                "guidance_heavy") if k in defaults})
        self.settings_panel.set_values(values)

    def _restore_settings(self) -> None:
        s = self.settings
        self.prompt.set_history(s.recent_prompts)
        if s.geometry:
            self.restoreGeometry(QByteArray.fromBase64(s.geometry.encode()))
        if s.window_state:
            self.restoreState(QByteArray.fromBase64(s.window_state.encode()))
        if s.splitter:
            self.splitter.restoreState(QByteArray.fromBase64(s.splitter.encode()))

    def _store_settings(self) -> None:
        s = self.settings
        s.geometry = bytes(self.saveGeometry().toBase64()).decode()
        s.window_state = bytes(self.saveState().toBase64()).decode()
        s.splitter = bytes(self.splitter.saveState().toBase64()).decode()
        s.add_recent_project(str(self.project.folder))
        s.render = self.settings_panel.values()
        try:
            s.save()
        except ProjectError as exc:
            self.banner.show_message(str(exc), "warning")

    def _schedule_save(self) -> None:
        self._save_timer.start()

    def _update_seed_note(self) -> None:
        locked = self.settings_panel.lock.isChecked()
        self.seed_note.setText(f"Seed {self.settings_panel.seed.value()} locked: every draft uses it")
        self.seed_note.setVisible(locked)

    def _settings_changed(self) -> None:
        self._schedule_save()
        self._update_handoff_state()

    def save_project(self, sync: bool = False) -> bool:
        """Snapshot the project now; write it on the helper thread (or here when `sync`).

        fsync + rename can take tens of milliseconds on a busy disk: never on the GUI thread during work.
        Returns False when a synchronous save failed (the message is in the banner).
        """
        self._save_timer.stop()
        p = self.project
        p.prompt = self.prompt.text()
        p.negative_prompt = self.prompt.negative_text()
        p.plan, p.plan_instruction, p.plan_edited = (self.plan_state.text, self.plan_state.instruction,
                                                      self.plan_state.edited)
        p.use_plan = self.plan.use.isChecked()
        p.settings = self.settings_panel.values()
        data, file = p.to_dict(), p.file
        if not sync:
            self.tasks.run(proj.write_project, file, data, on_error=self._save_failed)
            return True
        try:
            proj.write_project(file, data)
        except ProjectError as exc:
            self._save_failed(exc)
            return False
        return True

    def _save_failed(self, exc: Exception) -> None:
        self.banner.show_message(str(exc), "error")

    def new_project(self) -> None:
        self.save_project()
        folder = proj.unused_project_dir()
        # The settings carry over, a locked seed does not: a new project starts with fresh seeds.
        settings = self.settings_panel.values() | {"seed_locked": False}
        project = Project(folder=folder, name=folder.name, settings=settings)
        problem = project.acquire_lock()  # None, or why it is read-only (a folder that cannot be locked)
        self._apply_project(project)
        self.save_project()
        self.settings.add_recent_project(str(folder))
        if problem:
            self.banner.show_message(problem, "warning")

    def open_project(self, path: str | Path) -> bool:
        try:
            opened = proj.open_project(path, current=self.project)
        except ProjectError as exc:
            self.banner.show_message(str(exc), "error")
            return False
        project = opened.project
        self.save_project()
        self._apply_project(project)
        self.settings.add_recent_project(str(project.folder))
        self._tell_opened(opened, f"Opened {project.folder}.")
        return True

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        folders = [p for p in self.settings.recent_projects if p != str(self.project.folder)]
        for folder in folders:
            a = self.recent_menu.addAction(Path(folder).name, self._open_recent)
            a.setData(folder)
            a.setToolTip(folder)
        if not folders:
            self.recent_menu.addAction("(no other projects yet)").setEnabled(False)

    def _open_recent(self) -> None:
        action = self.sender()
        if action is not None and action.data():
            self.open_project(action.data())

    def open_project_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open project", str(self.project.folder.parent),
                                              "Lumos Studio project (project.json)")
        if path:
            self.open_project(path)

    def save_as(self, folder: str | Path) -> bool:
        self.save_project()
        try:
            copy = self.project.save_as(Path(folder))
        except (ProjectError, OSError) as exc:
            self.banner.show_message(f"Could not save the project to {folder}: {exc}", "error")
            return False
        self.project = copy
        self.settings.add_recent_project(str(copy.folder))
        self.setWindowTitle(f"{copy.name} — Lumos Studio")
        self.banner.show_message(f"Project saved to {copy.folder}; autosave continues there.", "info")
        return True

    def save_as_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save project into folder", str(self.project.folder.parent))
        if folder:
            self.save_as(folder)

    # ------------------------------------------------------------------ rendering intents
    def _base_request(self) -> RenderRequest:
        prompt = self.prompt.text()
        use_plan = self.plan.use.isChecked() if self.plan.isVisible() else True
        # Only a plan that belongs to this instruction is sent: a hand edit made for it. Otherwise the understanding
        # block writes the plan of this very instruction (app.plan_state).
        plan = self.plan_state.plan_for_request(prompt) if self.plan.isVisible() and use_plan else None
        return RenderRequest(prompt=prompt, negative_prompt=self.prompt.negative_text(), mode="upfb",
                             handoff=0.0, plan=plan, use_plan=use_plan, **self.settings_panel.request_fields())

    def draft(self) -> None:
        """Render the instruction with the light generator alone (or show the take if it exists)."""
        focused = QApplication.focusWidget()
        if isinstance(focused, QAbstractSpinBox):
            focused.interpretText()  # a number typed but not yet confirmed counts (the boxes apply on Enter)
        if not self.prompt.text().strip():
            self.banner.show_message("Type an instruction first, then press Draft.", "warning")
            self.prompt.edit.setFocus()
            return
        if self.summary is None and self._models_pending:
            # The first load may still change the settings to the sizes the models were made for.
            self._draft_after_load = True
            self.statusBar().showMessage("The models are loading; the draft starts as soon as they are ready.")
            return
        if not self.settings_panel.lock.isChecked():
            self.settings_panel.roll_seed()
        try:
            req = check_request(self._base_request())
        except RequestError as exc:
            self.banner.show_message(f"Cannot draft: {exc}.", "error")
            return
        self.settings.add_recent_prompt(req.prompt)
        self.prompt.set_history(self.settings.recent_prompts)
        self._schedule_save()
        self._submit(req, "draft", f"Draft · seed {req.seed}")

    def refine(self, s: float) -> None:
        """The slider rested at s: show the take if rendered, else (re)start a refine of the current draft."""
        base = self.project.take(self.project.base_draft)
        if base is None:
            return
        req = None
        if s > 0.0:
            try:
                req = check_request(self._refine_request(base, s))
            except RequestError as exc:
                self.banner.show_message(f"Cannot refine: {exc}.", "error")
                return
        key = request_key(req) if req is not None else None
        # A refine still running for another value is now stale: cancel it (and any queued ones).
        for job in list(self.jobs.values()):
            if job.kind == "refine" and job.key != key and job.state in ("queued", "running") and self.engine:
                self.engine.cancel(job.id)
        if req is None:  # back at 0 %: the draft itself
            self.watch_job = None
            self.show_take(base.id)
            return
        self._submit(req, "refine", f"Refine {round(s * 100)} % · seed {req.seed}", base_id=base.id)

    def _refine_request(self, base: TakeRecord, s: float) -> RenderRequest:
        fields = self.settings_panel.request_fields()
        req = RenderRequest.from_dict(base.request)
        # UPFB knobs and the heavy guidance do not change the draft, so they follow the panel.
        return req.replace(mode="upfb", handoff=round(s, 4), gamma_w=None, upfb=fields["upfb"],
                           guidance_heavy=fields["guidance_heavy"])

    def _submit(self, req: RenderRequest, kind: str, label: str, base_id: str | None = None) -> None:
        key = request_key(req)
        existing = self._take_by_key(key, self._current_models())
        if existing is not None:
            self.watch_job = None  # whatever still runs must not take the player away from this take
            self.show_take(existing.id)
            self.statusBar().showMessage("Already rendered: shown at once.", 3000)
            return
        for job in self.jobs.values():
            if job.key == key and job.state in ("queued", "running"):
                self.watch_job = job.id
                return
        if self.engine is None and self.bridge.starting:
            self._deferred.append(lambda: self._submit(req, kind, label, base_id))
            self.statusBar().showMessage("The engine is starting; the job will be queued in a moment.", 4000)
            return
        if self.engine is None:
            self.banner.show_message("The engine is not running, so nothing can be rendered. "
                                     "Choose models in Models ▸ Choose models….", "error",
                                     "Choose models…", self.choose_models)
            return
        try:
            handle = self.engine.submit(req)
        except RequestError as exc:
            self.banner.show_message(f"Cannot render: {exc}.", "error")
            return
        except Exception as exc:
            self.banner.show_message(f"The engine refused the job: {exc}", "error")
            return
        info = self.jobs.get(handle.id) or JobInfo(handle.id, kind, label)
        info.kind, info.label, info.key, info.base_id = kind, label, key, base_id
        info.project = self.project
        if handle.state != "queued" and info.state == "queued":
            info.state = handle.state
        self.jobs[handle.id] = info
        self.watch_job = handle.id
        if not any(q.get("key") == key for q in self.project.queue):
            self.project.queue.append({"key": key, "request": req.to_dict(), "kind": kind, "label": label,
                                       "base_id": base_id})
            self._schedule_save()
        if self.banner.level == "error":
            self.banner.dismiss()
        self._refresh_queue()

    def resume_queue(self) -> None:
        """Submit again the renders that were queued or running when the project was last saved."""
        entries, self.project.queue = self.project.queue, []
        for e in entries:
            try:
                req = RenderRequest.from_dict(e["request"])
            except RequestError as exc:
                log.warning("dropping an unreadable queued render: %s", exc)
                continue
            self._submit(req, e.get("kind", "draft"), e.get("label", "Render"), e.get("base_id"))
        self._schedule_save()

    def _unqueue(self, job: JobInfo | None) -> None:
        if job is None or job.key is None or self._closing:
            return
        project = job.project or self.project
        before = len(project.queue)
        project.queue = [q for q in project.queue if q.get("key") != job.key]
        if len(project.queue) == before:
            return
        if project is self.project:
            self._schedule_save()
        else:
            self.tasks.run(proj.write_project, project.file, project.to_dict(), on_error=self._save_failed)

    def _current_models(self) -> tuple | None:
        return (self.summary.get("light"), self.summary.get("heavy")) if self.summary else None

    def _take_by_key(self, key: str, models: tuple | None = None) -> TakeRecord | None:
        """The take made from exactly this request (and, when `models` is given, by these models)."""
        for t in self.project.takes:
            made_by = take_models(t.metadata)
            if models is not None and made_by is not None and made_by != models:
                continue
            try:
                if request_key(RenderRequest.from_dict(t.request)) == key:
                    return t
            except RequestError:
                continue
        return None

    def cancel_running(self) -> None:
        if self.engine is not None:
            self.engine.cancel(None)

    def cancel_all(self) -> None:
        if self.engine is not None:
            self.engine.cancel_all()

    def cancel_job(self, job_id: int) -> None:
        if self.engine is not None:
            self.engine.cancel(job_id)

    def escape(self) -> None:
        if self.stack.currentWidget() is self.compare:
            self.close_compare()
        else:
            self.cancel_running()

    def request_plan(self) -> None:
        if self.engine is None or not self.prompt.text().strip():
            self.banner.show_message("Type an instruction first; the plan is written from it.", "warning")
            return
        handle = self.engine.submit_plan(self.prompt.text())
        self.jobs[handle.id] = JobInfo(handle.id, "plan", "Plan", state=handle.state)
        if self.plan.write.hasFocus():
            self.prompt.edit.setFocus()  # disabling the focused button would push focus down to the settings
        self.plan.write.setEnabled(False)
        self._refresh_queue()

    def refine_official(self) -> None:
        if not self.handoff.isEnabled():
            self.banner.show_message("Render a draft first; the hand-off refines it.", "info")
            return
        self.handoff.set_value(self.handoff.slider.official / 100, fire=True)

    def _nudge_handoff(self, delta: int) -> None:
        if self.handoff.isEnabled():
            self.handoff.slider.setValue(self.handoff.slider.value() + delta)

    # ------------------------------------------------------------------ engine events (GUI thread)
    def _on_queued(self, ev) -> None:
        if ev.job_id not in self.jobs:
            self.jobs[ev.job_id] = JobInfo(ev.job_id, "load", "Load models")
        self._refresh_queue()

    def _on_started(self, ev) -> None:
        job = self.jobs.setdefault(ev.job_id, JobInfo(ev.job_id, ev.kind, ev.kind.capitalize()))
        job.state = "running"
        if job.kind in ("draft", "refine"):
            self.cancel_button.setEnabled(True)
            if ev.job_id == self.watch_job:
                self.player.set_progress(0, 1, f"{job.label}: starting…")
        self._refresh_queue()

    def _on_load_progress(self, ev) -> None:
        self.load_bar.setVisible(True)
        self.load_bar.setValue(round(100 * ev.fraction))
        self.model_label.setText(f"Loading: {ev.message}")

    def _on_models_loaded(self, ev) -> None:
        job = self.jobs.get(ev.job_id)
        if job is not None and job.kind == "load":
            del self.jobs[ev.job_id]
        self._refresh_queue()
        self.summary = s = dict(ev.summary)
        self.load_bar.setVisible(False)
        defaults = s.get("defaults") or {}
        light, heavy = short_model_name(s.get("light", "?")), short_model_name(s.get("heavy", "?"))
        self.model_label.setText(f"Models: {light} + {heavy}")
        self.model_label.setToolTip(f"Light: {s.get('light', '?')}\nHeavy: {s.get('heavy', '?')}")
        params = ""
        if s.get("light_params") and s.get("heavy_params"):
            params = f" · {s['light_params'] / 1e6:.1f} M + {s['heavy_params'] / 1e6:.1f} M parameters"
        self.device_label.setText(f"{s.get('device', '?')} · {s.get('dtype', '?')}{params}")
        self.plan.setVisible(bool(s.get("has_understanding")))
        if isinstance(s.get("max_sequence_length"), int):
            self.prompt.set_token_budget(s["max_sequence_length"])
        if "fps" in defaults:
            self.settings_panel.set_fps(int(defaults["fps"]))
        if isinstance(defaults.get("flow_shift"), (int, float)):
            self._mark_default_handoff(float(defaults["flow_shift"]))
        key = self.settings.model_key()
        if defaults and self.settings.defaults_applied_for != key and not self.project.takes:
            # First time with this model pair: start from the sizes it was made for.
            self._apply_family_defaults(defaults)
            self.settings.defaults_applied_for = key
        self.statusBar().showMessage("Models loaded. Type an instruction and press Draft.", 4000)
        self._update_handoff_state()
        self._models_pending = False
        if self._draft_after_load:
            self._draft_after_load = False
            self.draft()

    def _on_step(self, sp: StepPreview) -> None:
        ev = sp.event
        job = self.jobs.get(ev.job_id)
        if job is None or job.state not in ("queued", "running"):
            return
        job.step, job.total, job.state = ev.step, ev.total, "running"
        if not ev.from_cache and job.live_from is None:
            job.live_from = (ev.step, ev.elapsed)  # the pace is measured from the end of this step on
        self._refresh_queue()
        if ev.job_id != self.watch_job:
            return
        if self.stack.currentWidget() is not self.player:
            self.stack.setCurrentWidget(self.player)
        remaining = self._remaining(job, ev)
        cached = " (from draft cache)" if ev.from_cache else ""
        text = (f"{job.label} · step {ev.step}/{ev.total} · {ev.phase}{cached} · "
                f"{ev.elapsed:.1f} s · ~{remaining:.0f} s left")
        caption = f"step {ev.step}/{ev.total} · {ev.phase} · light share {ev.w_t:.2f}"
        self.player.show_step(sp.images, caption)
        self.player.set_progress(ev.step, ev.total, text)

    @staticmethod
    def _remaining(job: JobInfo, ev) -> float:
        """Seconds left, from the pace of the steps actually computed: steps resumed from the draft cache come back
        almost free, and the first computed step also carries the conditioning. Until a second computed step
        arrives, elapsed / step is all there is."""
        left = ev.total - ev.step
        if job.live_from is not None and ev.step > job.live_from[0]:
            s0, e0 = job.live_from
            return (ev.elapsed - e0) / (ev.step - s0) * left
        return ev.elapsed / max(1, ev.step) * left

    def _on_finished(self, ft: FinishedTake) -> None:
        job = self.jobs.pop(ft.job_id, None) or JobInfo(ft.job_id, "draft", "Take")
        self._unqueue(job)
        take = ft.take
        req = take.request
        key = request_key(req)
        if job.project is not None and job.project is not self.project:
            # Submitted in a project that is no longer open: the take still belongs there.
            other = job.project
            record = TakeRecord(id=proj.new_take_id(), request=req.to_dict(), created=time.time(),
                                elapsed=float(take.elapsed), fps=int(take.fps), num_frames=int(len(take.frames)),
                                width=int(take.frames.shape[2]), height=int(take.frames.shape[1]),
                                metadata=dict(take.metadata), base_id=None if req.is_draft else job.base_id)
            other.add_take(record)
            self._write_take_file(record, take, ft.thumbnail, project=other)
            self._job_ended()
            return
        record = self._take_by_key(key, take_models(take.metadata))
        if record is None:
            record = TakeRecord(id=proj.new_take_id(), request=req.to_dict(), created=time.time(),
                                elapsed=float(take.elapsed), fps=int(take.fps), num_frames=int(len(take.frames)),
                                width=int(take.frames.shape[2]), height=int(take.frames.shape[1]),
                                metadata=dict(take.metadata), base_id=None if req.is_draft else job.base_id)
            self.project.add_take(record)
            self._keep_frames(record.id, take.frames)
            self.thumbs[record.id] = ft.thumbnail
            self.keyframes[record.id] = ft.keyframes
            self.takes.add_take(record, ft.thumbnail)
            self._write_take_file(record, take, ft.thumbnail)
        else:
            self._keep_frames(record.id, take.frames)
            self.keyframes[record.id] = ft.keyframes
        plan = take.metadata.get("plan") if isinstance(take.metadata, dict) else None
        if isinstance(plan, str) and plan and same_instruction(req.prompt, self.prompt.text()):
            # show how the block read this instruction; editable from here
            self._show_written_plan(req.prompt, plan)
        if ft.job_id == self.watch_job:
            self.watch_job = None
            if req.is_draft:
                self.project.base_draft = record.id
            self.show_take(record.id)
            self.player.set_progress(1, 1, f"{record.label()} done in {take.elapsed:.1f} s"
                                           + (" (from cache)" if take.from_cache else ""))
        self._job_ended()

    def _on_failed(self, ev) -> None:
        job = self.jobs.pop(ev.job_id, None)
        self._unqueue(job)
        what = {"load": "Loading the models", "draft": "The draft", "refine": "The refine",
                "plan": "Writing the plan"}.get(job.kind if job else "", "A job")
        message = ev.message.strip()
        if message and message[-1] not in ".!?…)":
            message += "."
        self.banner.show_message(f"{what} failed: {message}{ERROR_HINTS.get(ev.error_type, '')}", "error",
                                 "Choose models…" if ev.error_type == "ModelError" else None,
                                 self.choose_models if ev.error_type == "ModelError" else None)
        if job is not None and job.kind == "load" or (self.summary is None and ev.error_type == "ModelError"):
            self._draft_after_load = self._models_pending = False
            self.load_bar.setVisible(False)
            self.model_label.setText("Models: not loaded")
        if job is not None and job.kind == "plan":
            self._plan_button_ready()
        if ev.job_id == self.watch_job:
            self.watch_job = None
            self.player.end_stream()
            self.player.set_progress(0, 1, "Failed: see the message above")
            self._reshow_current()
        self._job_ended()

    def _on_cancelled(self, ev) -> None:
        job = self.jobs.pop(ev.job_id, None)
        self._unqueue(job)
        if ev.job_id == self.watch_job:
            self.watch_job = None
            self.player.end_stream()
            at = f" at step {ev.at_step}" if ev.at_step else ""
            self.player.set_progress(0, 1, f"{job.label if job else 'Job'} cancelled{at}")
            self._reshow_current()
        self._job_ended()

    def _on_plan(self, ev) -> None:
        self.jobs.pop(ev.job_id, None)
        self._plan_button_ready()
        if ev.plan is None:
            self.plan.setVisible(False)
        elif same_instruction(ev.instruction, self.prompt.text()):
            # asked for with Write plan: it replaces a hand edit too
            self.plan_state = PlanState(ev.plan, ev.instruction, False)
            self.plan.set_plan(ev.plan)
            self._refresh_plan_status()
            self._schedule_save()
        self._job_ended()

    def _plan_button_ready(self) -> None:
        had_focus = self.plan.write.hasFocus() or QApplication.focusWidget() is None
        self.plan.write.setEnabled(True)
        if had_focus:
            self.prompt.edit.setFocus()  # never leave focus wherever Qt moved it while the button was disabled

    def _show_written_plan(self, instruction: str, plan: str) -> None:
        self.plan_state.written(instruction, plan)
        self.plan.set_plan(self.plan_state.text)
        self._refresh_plan_status()
        self._schedule_save()

    def _plan_edited(self, text: str) -> None:
        self.plan_state.edit(self.prompt.text(), text)
        self._refresh_plan_status()

    def _refresh_plan_status(self) -> None:
        instruction = self.prompt.text()
        self.plan.show_status(self.plan_state.status(instruction), self.plan_state.describe(instruction))

    def _job_ended(self) -> None:
        active = [j for j in self.jobs.values() if j.kind in ("draft", "refine") and j.state in ("queued", "running")]
        self.cancel_button.setEnabled(bool(active))
        self._refresh_queue()

    def _refresh_queue(self) -> None:
        shown = [(j.id, j.label if j.state != "running" or not j.total else f"{j.label} ({j.step}/{j.total})", j.state)
                 for j in sorted(self.jobs.values(), key=lambda j: (j.state != "running", j.id))
                 if j.state in ("queued", "running")]
        self.queue.set_jobs(shown)

    # ------------------------------------------------------------------ takes
    def _keep_frames(self, take_id: str, frames: np.ndarray) -> None:
        self.frames[take_id] = frames
        self.frames.move_to_end(take_id)
        while sum(f.nbytes for f in self.frames.values()) > FRAME_CACHE_BYTES and len(self.frames) > 2:
            self.frames.popitem(last=False)

    def _write_take_file(self, record: TakeRecord, take, thumb: QImage, project: Project | None = None) -> None:
        project = project or self.project
        folder = project.folder
        crf = self.settings.export_crf
        if project.read_only:  # open in another window: the take stays in memory (export it, or open a copy)
            return

        def write():
            (folder / "takes").mkdir(parents=True, exist_ok=True)
            export_take(take, folder / "takes" / f"{record.id}.mp4", crf=crf)
            thumb.save(str(folder / "takes" / f"{record.id}.png"))

        self.tasks.run(write, on_done=lambda _: self._take_file_written(project, record),
                       on_error=lambda e: self._take_file_failed(record, e))

    def _take_file_written(self, project: Project, record: TakeRecord) -> None:
        record.file = f"takes/{record.id}.mp4"
        record.thumbnail = f"takes/{record.id}.png"
        if project is self.project:
            self.save_project()
            return
        # Another project was opened (or this one saved elsewhere) meanwhile: keep the take's own project whole...
        self.tasks.run(proj.write_project, project.file, project.to_dict(), on_error=self._save_failed)
        current = self.project.take(record.id)
        if current is None or current.file is not None:
            return
        # ...and when Save As copied it before this file existed, bring the file along.
        source, target = project.folder, self.project.folder

        def copy():
            (target / "takes").mkdir(parents=True, exist_ok=True)
            for rel in (record.file, record.thumbnail):
                shutil.copy2(source / rel, target / rel)

        def copied(_):
            current.file, current.thumbnail = record.file, record.thumbnail
            if self.project.take(current.id) is current:
                self.save_project()

        self.tasks.run(copy, on_done=copied, on_error=lambda e: self._take_file_failed(record, e))

    def _take_file_failed(self, record: TakeRecord, exc: Exception) -> None:
        self.banner.show_message(f"The take “{record.label()}” could not be saved to the project: {exc}. "
                                 "It stays available until you close the app; export it with Ctrl+E.", "error")

    def current_take(self) -> TakeRecord | None:
        return self.project.take(self.project.current_take)

    def show_take(self, take_id: str) -> None:
        t = self.project.take(take_id)
        if t is None:
            return
        self.project.current_take = t.id
        if t.is_draft:
            self.project.base_draft = t.id
        elif t.base_id and self.project.take(t.base_id):
            self.project.base_draft = t.base_id
        if self.stack.currentWidget() is self.compare:
            self.close_compare()
        self.takes.select(t.id)
        self.handoff.set_value(0.0 if t.is_draft else t.handoff)
        self._update_handoff_state()
        frames = self.frames.get(t.id)
        caption = f"{t.label()} · seed {t.seed}"
        if frames is None:
            self.player.clear("Loading the take…")
            self._load_frames(t, lambda _: self._frames_loaded_for_player(t.id))
        else:
            self.frames.move_to_end(t.id)
            self.player.set_take(frames, t.fps, caption)
            self._show_keyframes(t.id, frames)
        self._schedule_save()

    def _frames_loaded_for_player(self, take_id: str) -> None:
        if self.project.current_take == take_id and take_id in self.frames and not self.player.streaming:
            t = self.project.take(take_id)
            self.player.set_take(self.frames[take_id], t.fps, f"{t.label()} · seed {t.seed}")
            self._show_keyframes(take_id, self.frames[take_id])

    def _load_frames(self, t: TakeRecord, then: Callable) -> None:
        path = self.project.path_of(t)
        if path is None or not path.exists():
            self.player.clear(f"The file of “{t.label()}” is missing from the project folder.")
            return
        if t.id in self._loading_frames:
            return
        self._loading_frames.add(t.id)

        def done(frames):
            self._loading_frames.discard(t.id)
            self._keep_frames(t.id, frames)
            then(frames)

        def failed(exc):
            self._loading_frames.discard(t.id)
            self.banner.show_message(f"Could not read “{t.label()}”: {exc}", "error")

        self.tasks.run(read_mp4_frames, path, on_done=done, on_error=failed)

    def _show_keyframes(self, take_id: str, frames: np.ndarray) -> None:
        keys = self.keyframes.get(take_id)
        if keys is None:
            keys = self.keyframes[take_id] = [(i, frame_to_qimage(frames[i])) for i in keyframe_indices(len(frames))]
        self.storyboard.set_keyframes(keys)

    def _show_nothing(self) -> None:
        """No take on screen: a player that says what to do, no storyboard, the slider back at the draft."""
        self.player.clear(EMPTY_PLAYER_TEXT)
        self.player.set_progress(0, 1, "")
        self.storyboard.set_keyframes([])
        self.handoff.set_value(0.0)

    def _reshow_current(self) -> None:
        t = self.current_take()
        if t is not None and t.id in self.frames:
            self.player.set_take(self.frames[t.id], t.fps, f"{t.label()} · seed {t.seed}", autoplay=False)

    def _keyframe_clicked(self, index: int) -> None:
        self.player.seek(index)
        self.player.setFocus()

    def toggle_star(self, take_id: str) -> None:
        t = self.project.take(take_id)
        if t is not None:
            t.starred = not t.starred
            self.takes.update_take(t)
            self.save_project()

    def rename_take(self, take_id: str, name: str) -> None:
        t = self.project.take(take_id)
        if t is not None:
            t.name = name
            self.takes.update_take(t)
            self.save_project()

    def delete_take(self, take_id: str) -> None:
        if self.project.remove_take(take_id) is None:
            return
        self.frames.pop(take_id, None)
        self.thumbs.pop(take_id, None)
        self.keyframes.pop(take_id, None)
        self.takes.remove_take(take_id)
        if self.project.current_take is None:
            # The take on screen is gone: show its draft (a refine's) or the newest take left, else nothing.
            follow = self.project.take(self.project.base_draft) or (self.project.takes[-1] if self.project.takes
                                                                    else None)
            if follow is not None:
                self.show_take(follow.id)
            else:
                self._show_nothing()
        self._update_handoff_state()
        self.save_project()

    def _update_handoff_state(self) -> None:
        base = self.project.take(self.project.base_draft) if hasattr(self, "project") else None
        enabled = base is not None
        self.handoff.setEnabled(enabled)
        if not enabled:
            self.handoff.words.setText("Render a draft, then slide to refine it with the heavy generator.")
            self.handoff.set_rendered(set())
            self.handoff.set_describer(None)
            self.handoff.plot.placeholder = "the gate appears after a draft"
            self.handoff.plot.set_weights([])
            return
        self.handoff.plot.placeholder = "computing the gate…" if self.summary else "the gate appears once models load"
        self.handoff.plot.update()
        if not self.handoff.describing:
            self.handoff.words.setText("Slide to refine this draft with the heavy generator.")
        rendered = {t.handoff for t in self.project.takes if t.base_id == base.id and not t.is_draft}
        self.handoff.set_rendered(rendered | {0.0})
        self._prepare_gate(base)

    # ------------------------------------------------------------------ gate plot
    def _flow_shift(self, base: TakeRecord) -> float:
        """The shift the sampler used for this draft: the request's, else what the engine recorded in the take
        (the model's scheduler config), else the family default, else Wan's 5."""
        if base.request.get("flow_shift") is not None:
            return float(base.request["flow_shift"])
        if isinstance(base.metadata.get("flow_shift"), (int, float)):
            return float(base.metadata["flow_shift"])
        defaults = (self.summary or {}).get("defaults") or {}
        return float(defaults.get("flow_shift", 5.0))

    def _mark_default_handoff(self, shift: float) -> None:
        """The amber mark: the family's measured hand-off (its lumos.json, e.g. from the mini VR-Bench) where it was
        measured at this flow shift, else the authors' γ_w = 0.3 placed for this shift."""
        s, measured = default_handoff((self.summary or {}).get("defaults") or {}, shift)
        if measured:
            self.handoff.set_official(s, "model family's measured default")
        else:
            self.handoff.set_official(s)

    def _prepare_gate(self, base: TakeRecord) -> None:
        if self.summary is None:
            return  # gate_schedule imports diffusers: only once the models (and diffusers) are loaded
        req = base.request
        steps, sched = int(req.get("steps", 50)), req.get("scheduler", "unipc")
        shift = self._flow_shift(base)
        key = (steps, shift, sched)
        self._mark_default_handoff(shift)
        if key in self._timesteps:
            self.handoff.set_describer(self._describer(key))
            return
        self.tasks.run(lambda: list(gate_schedule(steps, 0.5, flow_shift=shift, scheduler=sched).timesteps),
                       on_done=lambda ts: self._timesteps_ready(key, ts))

    def _timesteps_ready(self, key: tuple, ts: list[float]) -> None:
        self._timesteps[key] = ts
        base = self.project.take(self.project.base_draft)
        if base is not None:
            self._prepare_gate(base)

    def _describer(self, key: tuple):
        steps, shift, sched = key
        ts = self._timesteps[key]

        def describe(s: float):
            lead = self.settings_panel.values()["upfb"]["light_lead"] if s > 0 else 0
            g = gate_schedule(steps, s, flow_shift=shift, scheduler=sched, light_lead=min(lead, steps), timesteps=ts)
            words = g.describe()
            changed = self._changed_since_draft()
            if changed:
                # The slider refines the draft on screen, with that draft's settings.
                words += (f". {changed} changed since this draft: the slider refines the draft shown; press Draft "
                          "to use the new settings")
            return list(g.w), words

        return describe

    def _changed_since_draft(self) -> str:
        """The settings panel's values that differ from the current draft's ("Steps, Size"), or ""."""
        base = self.project.take(self.project.base_draft)
        if base is None:
            return ""
        panel, req = self.settings_panel.request_fields(), base.request
        names = {"Size": ("width", "height"), "Frames": ("num_frames",), "Steps": ("steps",),
                 "Guidance light": ("guidance_light",), "Sampler": ("scheduler",)}
        changed = [name for name, keys in names.items() if any(panel[k] != req.get(k) for k in keys)]
        return ", ".join(changed)

    # ------------------------------------------------------------------ compare
    def compare_selected(self) -> None:
        ids = self.takes.selected_ids()
        if len(ids) != 2:
            self.banner.show_message("Select two takes in the strip (Ctrl+click) to compare them.", "info")
            return
        order = self.takes.ids()
        a, b = sorted(ids, key=order.index)
        self.open_compare(a, b)

    def compare_with_draft(self, take_id: str) -> None:
        t = self.project.take(take_id)
        if t is not None and t.base_id and self.project.take(t.base_id):
            self.open_compare(t.base_id, t.id)
        else:
            self.banner.show_message("This take's draft is not in the project any more.", "info")

    def open_compare(self, a_id: str, b_id: str) -> None:
        a, b = self.project.take(a_id), self.project.take(b_id)
        if a is None or b is None:
            return
        missing = [t for t in (a, b) if t.id not in self.frames]
        if missing:
            self._pending_compare = (a_id, b_id)
            for t in missing:
                self._load_frames(t, lambda _: self._compare_frames_loaded())
            return
        self.player.transport.pause()
        self.compare.set_takes(self.frames[a.id], a.fps, a.label(), self.frames[b.id], b.fps, b.label())
        self.stack.setCurrentWidget(self.compare)
        self.compare.setFocus()

    def _compare_frames_loaded(self) -> None:
        if self._pending_compare and all(i in self.frames for i in self._pending_compare):
            a, b = self._pending_compare
            self._pending_compare = None
            self.open_compare(a, b)

    def close_compare(self) -> None:
        self.compare.stop()
        self.stack.setCurrentWidget(self.player)

    # ------------------------------------------------------------------ export and reproduce
    def export_dialog(self) -> None:
        t = self.current_take()
        if t is None:
            self.banner.show_message("There is no take to export yet: render a draft first.", "info")
            return
        # a file name from the take's name: a typed name may hold "/" or other characters a file name cannot
        stem = re.sub(r"[^\w.-]+", "_", (t.name or t.kind_label()).replace("%", "pct")).strip("._") or "take"
        name = f"{stem[:80]}-seed{t.seed}.mp4"
        start = proj.export_folder(self.settings.last_export_dir) / name
        dlg = ExportDialog(str(start), t.fps, t.width, t.height, self.settings.export_crf, self)
        if dlg.exec():
            opts = dlg.options()
            if opts["path"]:
                self.settings.export_crf = opts["crf"]
                self.export_take(t.id, opts["path"], fps=opts["fps"], crf=opts["crf"], scale=opts["scale"])

    def export_take(self, take_id: str, path: str | Path, on_done: Callable | None = None, *, fps: int | None = None,
                    crf: int | None = None, scale: int = 1) -> None:
        """Write the take to `path` (MP4 with its settings inside) on a helper thread."""
        t = self.project.take(take_id)
        if t is None:
            return
        path = Path(path).expanduser()
        if path.suffix.lower() != ".mp4":
            path = path.with_suffix(".mp4")
        self.settings.last_export_dir = str(path.parent)
        frames = self.frames.get(t.id)
        source = self.project.path_of(t)
        crf = self.settings.export_crf if crf is None else crf
        fps = t.fps if fps is None else fps

        def work():
            pixels = frames
            if pixels is None:
                if source is None or not source.exists():
                    raise OSError("the take's file is missing from the project folder")
                pixels = read_mp4_frames(source)
            take = SimpleNamespace(frames=pixels, fps=fps, metadata=t.metadata)
            return export_take(take, path, fps=fps, crf=crf, scale=scale)

        def done(result):
            self.statusBar().showMessage(f"Exported {Path(result).name}", 6000)  # the banner has the whole path
            self.banner.show_message(f"Exported “{t.label()}” to {result}.", "info")
            if on_done is not None:
                on_done(result)

        self.tasks.run(work, on_done=done,
                       on_error=lambda e: self.banner.show_message(f"Export failed: {e}", "error"))

    @staticmethod
    def _accept_as_copy(event) -> bool:
        """Drops are only ever copies: a file manager told "moved" would delete the user's MP4."""
        if not event.possibleActions() & Qt.DropAction.CopyAction:
            event.ignore()
            return False
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()
        return True

    def dragEnterEvent(self, event) -> None:
        if any(u.toLocalFile().lower().endswith(".mp4") for u in event.mimeData().urls()):
            self._accept_as_copy(event)

    def dragMoveEvent(self, event) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:
        for url in event.mimeData().urls():
            if url.toLocalFile().lower().endswith(".mp4"):
                if self._accept_as_copy(event):
                    self.reproduce_from(url.toLocalFile())
                return

    def open_take_dialog(self) -> None:
        """File ▸ Open take from MP4…: the same as dropping an exported take on the window."""
        start = proj.export_folder(self.settings.last_export_dir)
        path, _ = QFileDialog.getOpenFileName(self, "Open take from MP4", str(start), "MP4 video (*.mp4)")
        if path:
            self.reproduce_from(path)

    def reproduce_from(self, path: str | Path) -> None:
        """Restore the instruction and settings stored in an exported MP4."""
        self.tasks.run(read_take_metadata, str(path), on_done=lambda meta: self._apply_metadata(path, meta),
                       on_error=lambda e: self.banner.show_message(
                           f"{Path(path).name} holds no Lumos Studio settings ({e}).", "error"))

    def _apply_metadata(self, path, meta: dict) -> None:
        try:  # an MP4 is untrusted: every value is checked (proj.restore_from_metadata) before it is used
            restored = proj.restore_from_metadata(meta)
        except RequestError as exc:
            self.banner.show_message(f"{Path(path).name}: its settings cannot be used ({exc}).", "error")
            return
        req = restored.request
        self.prompt.set_text(req.prompt)
        self.prompt.set_negative(req.negative_prompt)
        values = self.settings_panel.values()
        values.update(restored.panel)
        self.settings_panel.set_values(values)
        self._update_seed_note()
        if req.plan:
            self.plan_state = PlanState(req.plan, req.prompt, True)  # the take was drafted from a hand-edited plan
            self.plan.set_plan(req.plan)
        elif restored.plan:
            self.plan_state = PlanState(restored.plan, req.prompt, False)
            self.plan.set_plan(restored.plan)
        self._refresh_plan_status()
        self.reproduce_request = req
        self._schedule_save()
        what = "draft" if req.is_draft else f"refine at {round(req.handoff * 100)} %"
        # The seed lock is left as it was: a restored take must not change what the next draft does unsaid.
        lock = ("" if self.settings_panel.lock.isChecked()
                else " New drafts still roll their own seed; lock the seed to keep this one.")
        notes = "".join(" " + n for n in restored.notes)
        self.banner.show_message(f"Settings restored from {Path(path).name} ({what}, seed {req.seed}).{lock}{notes}",
                                 "info", "Render it", lambda: self.render_request(req))

    def render_request(self, req: RenderRequest) -> None:
        """Render exactly `req` (used by drop-to-reproduce)."""
        try:
            req = check_request(req)
            draft = None if req.is_draft else request_key(req.replace(handoff=0.0, gamma_w=None, mode="upfb"))
        except RequestError as exc:  # said in the banner (whose button was just pressed), never raised
            self.banner.show_message(f"Cannot render it: {exc}.", "error")
            return
        if draft is None:
            self._submit(req, "draft", f"Draft · seed {req.seed}")
        else:
            base = self._take_by_key(draft, self._current_models())
            self._submit(req, "refine", f"Refine {round(req.handoff * 100)} % · seed {req.seed}",
                         base_id=base.id if base else None)

    # ------------------------------------------------------------------ dialogs
    def choose_models(self) -> None:
        dlg = ModelPickerDialog(self.current_spec(), self.tasks, self)
        if dlg.exec():
            self.apply_model_spec(dlg.spec())

    def apply_model_spec(self, spec: ModelSpec) -> None:
        s = self.settings
        s.model_light, s.model_heavy = spec.light or "", spec.heavy or ""
        s.model_device, s.model_offload = spec.device, spec.offload
        self._store_settings()
        self.summary = None
        self._models_pending = True
        self._timesteps.clear()
        if self.engine is None:
            self.start_engine()
            return
        self.model_label.setText("Models: loading…")
        self.load_bar.setVisible(True)
        self.load_bar.setValue(0)
        handle = self.engine.load(spec)
        self.jobs[handle.id] = JobInfo(handle.id, "load", "Load models", state=handle.state)
        self._refresh_queue()

    def show_shortcuts(self) -> None:
        ShortcutsDialog(self).exec()

    def show_about(self) -> None:
        from engine.api import __version__

        self.banner.show_message(f"Lumos Studio {__version__}: draft with a light generator, refine with a heavy one "
                                 "(UPFB hand-off), export MP4.", "info")


def take_models(metadata: dict) -> tuple | None:
    """(light, heavy) model ids recorded in a take's metadata, if any."""
    m = metadata.get("models") if isinstance(metadata, dict) else None
    return (m.get("light"), m.get("heavy")) if isinstance(m, dict) else None


def short_model_name(source: str) -> str:
    """'/home/me/models/wan-1.3b' → 'models/wan-1.3b' for the status bar (the tooltip has the whole path)."""
    parts = Path(str(source)).parts
    return "/".join(parts[-2:]) if len(parts) > 2 else str(source)


def process_memory_bytes() -> int:
    """Resident memory of this process (Linux: now; elsewhere: the peak), 0 if unknown."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
    except (ImportError, OSError):
        return 0


def run(argv: list[str] | None = None) -> int:
    """Start the app. Options: --demo (a scripted engine, no models), --project FOLDER."""
    import argparse

    t0 = time.perf_counter()
    parser = argparse.ArgumentParser(prog="lumos-studio")
    parser.add_argument("--demo", action="store_true", help="use a scripted engine (no models, for a tour)")
    parser.add_argument("--project", help="open this project folder")
    parser.add_argument("--print-startup", action="store_true", help="print the time to first paint")
    args, qt_args = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    app.setApplicationName("Lumos Studio")
    app.setStyle("Fusion")
    from .resources import stylesheet

    app.setStyleSheet(stylesheet())
    factory = None
    if args.demo:
        from .fake_engine import FakeEngine

        factory = FakeEngine
    win = MainWindow(engine_factory=factory, project_path=args.project)
    win.show()
    if args.print_startup:
        def report():
            if win.first_paint is None:
                QTimer.singleShot(10, report)
                return
            print(f"time to first paint: {1000 * (win.first_paint - t0):.0f} ms "
                  f"(torch imported before paint: {win.torch_at_first_paint})", flush=True)
        QTimer.singleShot(0, report)
    return app.exec()
