"""Top of the left column: the instruction editor and the understanding block's plan panel."""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QTextEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.api import MAX_PROMPT_CHARS, instruction_words

from ..resources import icon
from .common import panel_header


NEGATIVE_PLACEHOLDER = "Negative prompt: what the video should avoid (optional)"
NEGATIVE_TIP = "Things to steer away from (classifier-free guidance's negative prompt)"

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


# Instructions the embedded family draws well: its own concepts (colours red/yellow/green/cyan/blue/magenta, kinds
# circle/square/triangle/star, sizes, textures, places, motions, one rule) in plain words. The first is the placeholder.
EXAMPLES = (
    "a big red circle moves right",
    "a small yellow star grows",
    "a blue square at the bottom moves up",
    "a green triangle bounces",
    "a big red circle at the left. a small blue square at the right. the larger shape moves toward the smaller one.",
    "a red ball on the left and a blue box on the right; the blue box gets pushed by the red ball",
    "a green star at the top, a red circle at the bottom left and a blue square at the bottom right. everything "
    "except the star shrinks",
)
WORD_CHECK_MS = 250  # how long typing pauses before the unknown words are looked up again


def _ask(checker: Callable[[str], list[str]] | None, text: str) -> list[str]:
    """A checker's answer for ``text`` ([] for no checker or no text); a damaged family file gives no marks or
    notes rather than an error while typing."""
    try:
        return list(checker(text)) if checker and text.strip() else []
    except Exception:
        return []


class PromptEditor(QFrame):
    """Multi-line instruction with history, character budget, examples and an Advanced (negative prompt) section.

    `word_checker` (text -> the words the family does not know) is asked once typing pauses; those words are
    underlined in the editor and `unknownWords` tells them to whoever says so (the plan panel). `limits_checker`
    (text -> sentences on what the family's plans cannot hold, e.g. two shapes of one colour) is asked then too,
    and `worldLimits` tells them."""

    draftRequested = Signal()
    changed = Signal()
    unknownWords = Signal(list)
    worldLimits = Signal(list)

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
        self.examples = QToolButton()
        self.examples.setText("Examples ▾")
        self.examples.setToolTip("Instructions this family draws well: pick one to start from")
        self.examples.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.examples)
        for text in EXAMPLES:
            menu.addAction(text, lambda text=text: self._use_example(text))
        self.examples.setMenu(menu)
        lay.addLayout(panel_header("Instruction", self.examples, self.recent))
        self.edit = _InstructionEdit()
        # an example the embedded family draws well (its own concepts, in plain words)
        self.edit.setPlaceholderText(f"Describe the video, e.g. “{EXAMPLES[0]}”\nCtrl+Enter renders a draft.")
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
        self.negative.setPlaceholderText(NEGATIVE_PLACEHOLDER)
        self.negative.setToolTip(NEGATIVE_TIP)
        self.negative.setMaximumHeight(60)
        self.negative.setVisible(False)
        self.negative.textChanged.connect(self.changed)
        lay.addWidget(self.negative)
        self.history: list[str] = []
        self._history_pos = -1
        self.token_budget: int | None = None
        self.word_checker: Callable[[str], list[str]] | None = None
        self.unknown: list[str] = []
        self.limits_checker: Callable[[str], list[str]] | None = None
        self.limits: list[str] = []
        self._word_timer = QTimer(self)
        self._word_timer.setSingleShot(True)
        self._word_timer.setInterval(WORD_CHECK_MS)
        self._word_timer.timeout.connect(self.check_words)
        self._text_changed()

    def text(self) -> str:
        return self.edit.toPlainText()

    def set_text(self, text: str) -> None:
        self.edit.setPlainText(text)

    def negative_text(self) -> str:
        return self.negative.toPlainText()

    def set_negative_unused(self, note: str | None) -> None:
        """`note`: why the loaded models do not use a negative prompt (the box is disabled and says so in its
        placeholder and tooltip; its text is kept); None: they use it (the box is editable again)."""
        self.negative.setEnabled(note is None)
        self.negative.setPlaceholderText("Not used by these models (hover for why)" if note else NEGATIVE_PLACEHOLDER)
        self.negative.setToolTip(note or NEGATIVE_TIP)
        self.more.setToolTip("Show the negative prompt" + (" (not used by these models)" if note else ""))

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

    def _use_example(self, text: str) -> None:
        self.set_text(text)
        self.edit.setFocus()

    def check_words_soon(self, *_args) -> None:
        """Look the words up again once typing pauses (also when the models change)."""
        self._word_timer.start()

    def check_words(self) -> None:
        """Underline the words the family does not know and tell them (unknownWords)."""
        self._word_timer.stop()
        text = self.text()
        unknown = _ask(self.word_checker, text)
        marks = []
        style = QTextCharFormat()
        style.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
        style.setUnderlineColor(QColor("#f0b050"))
        style.setToolTip("This family does not know this word")
        for word, start, end in instruction_words(text):
            if word in unknown:
                mark = QTextEdit.ExtraSelection()
                mark.cursor = QTextCursor(self.edit.document())
                mark.cursor.setPosition(start)
                mark.cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
                mark.format = style
                marks.append(mark)
        self.edit.setExtraSelections(marks)
        if unknown != self.unknown:
            self.unknown = unknown
            self.unknownWords.emit(unknown)
        limits = _ask(self.limits_checker, text)
        if limits != self.limits:
            self.limits = limits
            self.worldLimits.emit(limits)

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
        self._word_timer.start()
        self.changed.emit()


BLOCK_TITLE = "Plan (understanding block)"
BLOCK_TIP = "How the understanding block reads your instruction; the light generator is conditioned on it"
DIRECT_NOTE = ("The {family} reads the instruction directly: its understanding block writes no readable plan, so "
               "there is nothing to show or edit here. The light generator gets the block's own context.")


class PlanPanel(QGroupBox):
    """The understanding block's (or a pair's planner's) readable plan, editable, with a toggle to condition on it.

    The window owns whose plan it is (app.plan_state); the panel shows it and reports the user's edits apart from
    the text the window puts in. `set_source` says who writes it: "block", "planner" (a plain pair's instruction
    LLM, app.window_plan), or "direct" (a family whose block writes no readable plan: the panel says so, no editor).
    While a plan is written, Cancel (and Esc) stop it."""

    planRequested = Signal()
    cancelRequested = Signal()
    changed = Signal()
    edited = Signal(str)  # the user typed in the plan (not emitted for set_plan)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(BLOCK_TITLE, parent)
        self.setToolTip(BLOCK_TIP)
        self.source, self.who = "block", "the understanding block"
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
        self.unknown = QLabel()
        self.unknown.setWordWrap(True)
        self.unknown.setStyleSheet("color: #f0b050;")
        self.unknown.setToolTip("Words of the instruction this family was never trained on (underlined there)")
        self.unknown.setVisible(False)
        self.limits = QLabel()  # what the instruction asks that this family's plans cannot hold
        self.limits.setWordWrap(True)
        self.limits.setStyleSheet("color: #f0b050;")
        self.limits.setToolTip("Parts of the instruction this family cannot draw as asked")
        self.limits.setVisible(False)
        self.fallback = QLabel()  # the planner could not write a plan for this instruction: why
        self.fallback.setObjectName("inlineError")
        self.fallback.setWordWrap(True)
        self.fallback.setVisible(False)
        self.direct = QLabel()  # a family that reads the instruction directly
        self.direct.setObjectName("hint")
        self.direct.setWordWrap(True)
        self.direct.setVisible(False)
        row = QHBoxLayout()
        self.use = QCheckBox("Use plan")
        self.use.setChecked(True)
        self.use.setToolTip("Condition the light generator on this plan (off: the instruction alone)")
        self.use.toggled.connect(self.changed)
        self.write = QPushButton(icon("plan"), "Write plan")
        self.write.setToolTip("Ask the understanding block for a plan of this instruction")
        self.write.clicked.connect(self.planRequested)
        self.cancel = QPushButton("Cancel")
        self.cancel.setToolTip("Stop writing the plan (Esc)")
        self.cancel.clicked.connect(self.cancelRequested)
        self.cancel.setVisible(False)
        row.addWidget(self.use)
        row.addStretch(1)
        row.addWidget(self.cancel)
        row.addWidget(self.write)
        lay.addWidget(self.direct)
        lay.addWidget(self.text)
        lay.addWidget(self.state)
        lay.addWidget(self.fallback)
        lay.addWidget(self.unknown)
        lay.addWidget(self.limits)
        lay.addLayout(row)
        self._putting = False
        self.status = ""
        self.writing = False

    def set_source(self, source: str | None, planner: str | None = None, family: str | None = None) -> None:
        """Who writes the plan: "block", "planner" (named `planner`), "direct" (the `family` reads the instruction
        directly: no plan to show) or None (no plan at all: the window hides the panel)."""
        self.source = source
        direct = source == "direct"
        if source == "planner":
            name = str(planner or "the planner")
            self.who = "the planner"
            self.setTitle(f"Plan (planner: {name.rstrip('/').rsplit('/', 1)[-1]})")
            self.setToolTip(f"How the planner {name} rewrites your instruction into a shot description; the light "
                            "generator is conditioned on it (Models ▸ Choose models… says what the heavy one reads)")
            self.write.setToolTip("Ask the planner for a plan of this instruction (Esc or Cancel stops it)")
        elif direct:
            self.setTitle(f"Understanding ({family or 'this family'})")
            self.setToolTip("This family's understanding block reads the instruction itself and writes no plan")
            self.direct.setText(DIRECT_NOTE.format(family=family or "this family"))
        else:
            self.who = "the understanding block"
            self.setTitle(BLOCK_TITLE)
            self.setToolTip(BLOCK_TIP)
            self.write.setToolTip("Ask the understanding block for a plan of this instruction")
        self.direct.setVisible(direct)
        for widget in (self.text, self.state, self.use, self.write):
            widget.setVisible(not direct)
        self.cancel.setVisible(self.writing and not direct)
        if direct:
            self.fallback.setVisible(False)

    def set_writing(self, writing: bool) -> None:
        """A plan is being written: Write plan waits, Cancel stops it."""
        self.writing = writing
        self.write.setEnabled(not writing)
        self.cancel.setVisible(writing and self.source != "direct")
        self.cancel.setEnabled(writing)
        if writing:
            self.state.setText(f"{self.who[:1].upper()}{self.who[1:]} is writing the plan… (Esc or Cancel stops it)")

    def show_fallback(self, reason: str | None) -> None:
        """The planner could not write a plan for the shown instruction (`reason`), or None: it could."""
        self.fallback.setText(f"The planner could not write a plan: {reason}. The light generator reads the "
                              "instruction as typed." if reason else "")
        self.fallback.setVisible(bool(reason) and self.source != "direct")

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

    def show_unknown(self, words: list) -> None:
        """One line naming the instruction's words this family does not know (hidden when there are none)."""
        self.unknown.setText(f"This family does not know: {', '.join(words)} — it may ignore them." if words else "")
        self.unknown.setVisible(bool(words))

    def show_limits(self, notes: list) -> None:
        """What the instruction asks that this family's plans cannot hold, one line each (hidden when nothing)."""
        self.limits.setText("\n".join(notes))
        self.limits.setVisible(bool(notes))

    def show_status(self, status: str, words: str) -> None:
        """status: one of app.plan_state's EMPTY/WRITTEN/EDITED/STALE; a stale plan is greyed out."""
        was_stale, self.status = self.status == "stale", status
        if not self.writing:  # while a plan is written the line says so (and how to stop it)
            self.state.setText(words)
        if was_stale != (status == "stale"):
            self.text.setStyleSheet("color: #7d8694; font-style: italic;" if status == "stale" else "")

    def _text_changed(self) -> None:
        if not self._putting:
            self.edited.emit(self.text.toPlainText())
        self.changed.emit()
