"""Top of the left column: the instruction editor and the understanding block's plan panel."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.api import MAX_PROMPT_CHARS

from ..resources import icon
from .common import panel_header


class _InstructionEdit(QPlainTextEdit):
    """Ctrl+Enter drafts; Alt+Up / Alt+Down walk through recent instructions."""

    submit = Signal()
    historyStep = Signal(int)

    def keyPressEvent(self, event) -> None:
        key, mods = event.key(), event.modifiers()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and mods & Qt.KeyboardModifier.ControlModifier:
            self.submit.emit()
            return
        if mods & Qt.KeyboardModifier.AltModifier and key in (Qt.Key.Key_Up, Qt.Key.Key_Down):
            self.historyStep.emit(-1 if key == Qt.Key.Key_Up else 1)
            return
        super().keyPressEvent(event)


class PromptEditor(QFrame):
    """Multi-line instruction with history, character budget and an Advanced (negative prompt) section."""

    draftRequested = Signal()
    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("panel")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        self.recent = QComboBox()
        self.recent.setToolTip("Recent instructions (Alt+Up / Alt+Down in the editor walk through them)")
        self.recent.setPlaceholderText("Recent…")
        self.recent.setMaximumWidth(150)
        self.recent.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.recent.setMinimumContentsLength(8)
        self.recent.activated.connect(self._pick_recent)
        lay.addLayout(panel_header("Instruction", self.recent))
        self.edit = _InstructionEdit()
        # an example the embedded family draws well (the models' own vocabulary: shapes, colours, textures, motions)
        self.edit.setPlaceholderText("Describe the video, e.g. “a small red striped circle moves to the left. sand "
                                     "checked background.”\nCtrl+Enter renders a draft.")
        self.edit.setToolTip("The instruction for the generators. Ctrl+Enter = Draft")
        self.edit.setMinimumHeight(70)
        self.edit.setMaximumHeight(130)
        self.edit.textChanged.connect(self._text_changed)
        self.edit.submit.connect(self.draftRequested)
        self.edit.historyStep.connect(self._history_step)
        lay.addWidget(self.edit)
        foot = QHBoxLayout()
        self.count = QLabel()
        self.count.setObjectName("hint")
        self.count.setWordWrap(True)  # a longer count wraps instead of widening the column while typing
        self.count.setToolTip(f"Characters used of the {MAX_PROMPT_CHARS} an instruction may have")
        self.more = QToolButton()
        self.more.setText("Advanced")
        self.more.setCheckable(True)
        self.more.setToolTip("Show the negative prompt")
        self.more.toggled.connect(self._toggle_advanced)
        foot.addWidget(self.count, 1)  # all the room there is: a wrapping label would otherwise wrap early
        foot.addWidget(self.more)
        lay.addLayout(foot)
        self.negative = QPlainTextEdit()
        self.negative.setPlaceholderText("Negative prompt: what the video should avoid (optional)")
        self.negative.setToolTip("Things to steer away from (classifier-free guidance's negative prompt)")
        self.negative.setMaximumHeight(60)
        self.negative.setVisible(False)
        self.negative.textChanged.connect(self.changed)
        lay.addWidget(self.negative)
        self.history: list[str] = []
        self._history_pos = -1
        self.token_budget: int | None = None
        self._text_changed()

    def text(self) -> str:
        return self.edit.toPlainText()

    def set_text(self, text: str) -> None:
        self.edit.setPlainText(text)

    def negative_text(self) -> str:
        return self.negative.toPlainText()

    def set_negative(self, text: str) -> None:
        self.negative.setPlainText(text)
        if text:
            self.more.setChecked(True)

    def set_token_budget(self, tokens: int | None) -> None:
        """The text encoder's sequence length (words beyond it are cut off), from the loaded models."""
        self.token_budget = tokens
        self._text_changed()

    def set_history(self, prompts: list[str]) -> None:
        self.history = list(prompts)
        self._history_pos = -1
        self.recent.blockSignals(True)
        self.recent.clear()
        for p in self.history:
            self.recent.addItem(p if len(p) <= 60 else p[:57] + "…", p)
        self.recent.setCurrentIndex(-1)
        self.recent.blockSignals(False)

    def _pick_recent(self, index: int) -> None:
        if index >= 0:
            self.set_text(self.recent.itemData(index))
            self.edit.setFocus()

    def _history_step(self, delta: int) -> None:
        if not self.history:
            return
        # Alt+Up goes back in time (older), Alt+Down forward.
        self._history_pos = max(-1, min(len(self.history) - 1, self._history_pos - delta))
        self.set_text("" if self._history_pos < 0 else self.history[self._history_pos])

    def _toggle_advanced(self, on: bool) -> None:
        self.negative.setVisible(on)

    def _text_changed(self) -> None:
        n = len(self.text())
        text = f"{n} / {MAX_PROMPT_CHARS} chars"
        if self.token_budget:
            words = len(self.text().split())
            # Rough: T5 pieces are about 1.3 per English word; the exact count needs the tokenizer (in the engine).
            text += f" · ~{round(words * 1.3)} / {self.token_budget} tokens"
        self.count.setText(text)
        self.count.setObjectName("inlineError" if n > MAX_PROMPT_CHARS else "hint")
        self.count.style().unpolish(self.count)
        self.count.style().polish(self.count)
        self.changed.emit()


class PlanPanel(QGroupBox):
    """The understanding block's readable plan, editable, with a toggle to condition on it.

    The window owns whose plan it is (app.plan_state); the panel shows it and reports the user's edits apart from
    the text the window puts in."""

    planRequested = Signal()
    changed = Signal()
    edited = Signal(str)  # the user typed in the plan (not emitted for set_plan)

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Plan (understanding block)", parent)
        self.setToolTip("How the understanding block reads your instruction; the light generator is conditioned on it")
        lay = QVBoxLayout(self)
        self.text = QPlainTextEdit()
        self.text.setPlaceholderText("Press “Write plan” to see how the instruction is understood.")
        self.text.setToolTip("Edit the plan to correct the reading before drafting; your edit is kept while the "
                             "instruction stays the same")
        self.text.setMaximumHeight(90)
        self.text.textChanged.connect(self._text_changed)
        self.state = QLabel()
        self.state.setObjectName("hint")
        self.state.setWordWrap(True)
        self.state.setToolTip("Whose plan this is, and whether the next draft uses it")
        row = QHBoxLayout()
        self.use = QCheckBox("Use plan")
        self.use.setChecked(True)
        self.use.setToolTip("Condition the light generator on this plan (off: the instruction alone)")
        self.use.toggled.connect(self.changed)
        self.write = QPushButton(icon("plan"), "Write plan")
        self.write.setToolTip("Ask the understanding block for a plan of this instruction")
        self.write.clicked.connect(self.planRequested)
        row.addWidget(self.use)
        row.addStretch(1)
        row.addWidget(self.write)
        lay.addWidget(self.text)
        lay.addWidget(self.state)
        lay.addLayout(row)
        self._putting = False
        self.status = ""

    def plan(self) -> str | None:
        text = self.text.toPlainText().strip()
        return text or None

    def set_plan(self, text: str) -> None:
        """Show `text` without counting it as the user's edit."""
        if text == self.text.toPlainText():
            return
        self._putting = True
        try:
            self.text.setPlainText(text)
        finally:
            self._putting = False

    def show_status(self, status: str, words: str) -> None:
        """status: one of app.plan_state's EMPTY/WRITTEN/EDITED/STALE; a stale plan is greyed out."""
        was_stale, self.status = self.status == "stale", status
        self.state.setText(words)
        if was_stale != (status == "stale"):
            self.text.setStyleSheet("color: #7d8694; font-style: italic;" if status == "stale" else "")

    def _text_changed(self) -> None:
        if not self._putting:
            self.edited.emit(self.text.toPlainText())
        self.changed.emit()
