"""The window's layout and menus: which widget sits where and which intent each control sends.

A mixin of MainWindow (app.main_window): `_build_ui` and `_build_menus` create the widgets as attributes of the
window and connect their signals to the window's intent methods; nothing here holds state.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.api import instruction_limits, unknown_words

from .resources import icon
from .widgets.common import Banner, Storyboard
from .widgets.controls import SettingsPanel
from .widgets.instruction import PlanPanel, PromptEditor
from .widgets.handoff import HandoffPanel
from .widgets.player import CompareView, Player
from .widgets.takes import QueueView, TakesStrip


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


class WindowLayout:
    """MainWindow's widgets and menus."""

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
        self.prompt.changed.connect(self.save_soon)
        self.prompt.changed.connect(self._refresh_plan_status)
        lv.addWidget(self.prompt)
        self.plan = PlanPanel()
        self.plan.setVisible(False)
        self.plan.planRequested.connect(self.request_plan)
        self.plan.cancelRequested.connect(self.cancel_plan)
        self.plan.changed.connect(self.save_soon)
        self.plan.edited.connect(self._plan_edited)
        lv.addWidget(self.plan)
        # the words this family does not know, looked up from its files as the user types (no model needed)
        self.prompt.word_checker = lambda text: unknown_words(self.current_spec(), text)
        self.prompt.unknownWords.connect(self.plan.show_unknown)
        self.prompt.limits_checker = lambda text: instruction_limits(self.current_spec(), text)
        self.prompt.worldLimits.connect(self.plan.show_limits)
        self.bridge.modelsLoaded.connect(self.prompt.check_words_soon)  # other models may know other words
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
        action(f, "Save project as…", self.save_as_dialog, "Ctrl+Shift+S",
               "Copy this project and its takes to a folder")
        f.addSeparator()
        self.export_action = action(f, "Export take…", self.export_dialog, "Ctrl+E", "Export the shown take as MP4 "
                                    "(settings inside, drop it back to reproduce)", "export")
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
        action(m, "Choose models…", self.choose_models, None, "Embedded family or your own light + heavy pair",
               "model")
        h = mb.addMenu("&Help")
        action(h, "Shortcuts", self.show_shortcuts, "F1", "Every keyboard shortcut")
        action(h, "About Lumos Studio", self.show_about)
        esc = QShortcut(QKeySequence("Esc"), self)
        esc.activated.connect(self.escape)
