"""Left column: the instruction editor, the plan panel and the render settings."""

from __future__ import annotations

import random

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.api import FAST_PRESET, MAX_PROMPT_CHARS, MAX_STEPS, UPFBParams

from ..resources import icon, presets
from ..schema import MAX_SEED
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


def _spin(lo, hi, value, step=1, tip="", decimals=None):
    box = QSpinBox() if decimals is None else QDoubleSpinBox()
    if decimals is not None:
        box.setDecimals(decimals)
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setValue(value)
    box.setToolTip(tip)
    box.setKeyboardTracking(False)
    return box


class FramesSpin(QSpinBox):
    """Frame counts are 4k + 1 (Wan's VAE packs 4 frames per latent after the first): anything else is rounded."""

    def __init__(self):
        super().__init__()
        self.setRange(1, 241)
        self.setSingleStep(4)

    def fixup(self, text):
        try:
            v = int(text)
        except ValueError:
            return super().fixup(text)
        return str(max(1, 4 * round((v - 1) / 4) + 1))

    def stepBy(self, steps):
        v = self.value()
        base = 4 * round((v - 1) / 4) + 1
        self.setValue(max(1, min(241, base + 4 * steps)))


class SettingsPanel(QGroupBox):
    """Render settings. Only valid values can be entered; anything repaired is explained in the hint line."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Settings", parent)
        self._fps = 16
        form = QFormLayout(self)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        p = presets()
        self.size = QComboBox()
        for s in p["sizes"]:
            self.size.addItem(f"{s['name']}  ({s['width']}×{s['height']})", f"{s['width']}x{s['height']}")
        self.size.addItem("Custom…", "")
        self.size.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.size.setMinimumContentsLength(14)
        self.size.setToolTip("Video size. Wan models need both sides to be multiples of 16")
        self.size.currentIndexChanged.connect(self._size_preset)
        self.width = _spin(16, 2048, 832, 16, "Width in pixels (a multiple of 16)")
        self.height = _spin(16, 2048, 480, 16, "Height in pixels (a multiple of 16)")
        for box in (self.width, self.height):
            box.editingFinished.connect(self._snap_size)
            box.valueChanged.connect(self._emit)
        wh = QHBoxLayout()
        wh.addWidget(self.width)
        wh.addWidget(QLabel("×"))
        wh.addWidget(self.height)
        self.frames = FramesSpin()
        self.frames.setValue(81)
        self.frames.setToolTip("Number of frames: 4k + 1 (5, 9, 17, … 81); other values are rounded")
        self.frames.setKeyboardTracking(False)
        self.frames.valueChanged.connect(self._frames_changed)
        self.seconds = QLabel()
        self.seconds.setObjectName("hint")
        fr = QHBoxLayout()
        fr.addWidget(self.frames)
        fr.addWidget(self.seconds, 1)
        self.steps = _spin(1, MAX_STEPS, 50, 1, "Denoising steps: more is slower and finer")
        self.steps.valueChanged.connect(self._steps_changed)
        self.guidance_light = _spin(0.0, 20.0, 5.0, 0.5, "Guidance of the light generator (1 or less disables CFG)", 1)
        self.guidance_heavy = _spin(0.0, 20.0, 5.0, 0.5, "Guidance of the heavy generator (1 or less disables CFG)", 1)
        for box in (self.guidance_light, self.guidance_heavy):
            box.valueChanged.connect(self._emit)
        self.seed = _spin(0, MAX_SEED, 0, 1, "Random seed: the same seed and settings give the same video")
        self.seed.valueChanged.connect(self._emit)
        self.lock = QToolButton()
        self.lock.setCheckable(True)
        self.lock.setToolTip("Locked: every draft uses this seed. Unlocked: each draft rolls a new seed")
        self.lock.toggled.connect(self._lock_toggled)
        self.dice = QToolButton()
        self.dice.setIcon(icon("dice"))
        self.dice.setToolTip("Roll a new random seed")
        self.dice.clicked.connect(self.roll_seed)
        self.fast = QToolButton()
        self.fast.setText("Fast")
        self.fast.setToolTip(f"Fast preset, for step- and CFG-distilled generators (e.g. the 4-step Wan2.1 "
                             f"distillations): the few-step sampler, {FAST_PRESET['steps']} steps, no CFG")
        self.fast.clicked.connect(self.apply_fast_preset)
        st = QHBoxLayout()
        st.addWidget(self.steps, 1)
        st.addWidget(self.fast)
        sd = QHBoxLayout()
        sd.addWidget(self.seed, 1)
        sd.addWidget(self.dice)
        sd.addWidget(self.lock)
        form.addRow("Size", self.size)
        form.addRow("", wh)
        form.addRow("Frames", fr)
        form.addRow("Steps", st)
        form.addRow("Guidance light", self.guidance_light)
        form.addRow("Guidance heavy", self.guidance_heavy)
        form.addRow("Seed", sd)
        # Advanced UPFB knobs, folded away.
        self.adv_toggle = QToolButton()
        self.adv_toggle.setText("Advanced hand-off (UPFB)")
        self.adv_toggle.setCheckable(True)
        self.adv_toggle.setToolTip("Show the frequency-bridging parameters (the authors' defaults are preset)")
        form.addRow(self.adv_toggle)
        self.adv = QWidget()
        af = QFormLayout(self.adv)
        af.setContentsMargins(0, 0, 0, 0)
        d = UPFBParams()
        self.gamma_hf = _spin(0.0, 2.0, d.gamma_hf, 0.05, "γ_hf: how much of the light generator's high "
                              "frequencies survive while it leads (official 0.7)", 2)
        self.sigma_min = _spin(0.0, 5.0, d.sigma_min, 0.05, "σ_min: blur width of the low/high split at the end "
                               "(official 0.35)", 2)
        self.sigma_max = _spin(0.0, 5.0, d.sigma_max, 0.05, "σ_max: blur width at pure noise (official 0.7)", 2)
        self.light_lead = _spin(0, MAX_STEPS, d.light_lead, 1, "Light lead: steps the light generator runs alone "
                                "before bridging; they are reused from the draft, so refines are faster")
        self.scheduler = QComboBox()
        self.scheduler.addItem("UniPC (Wan default)", "unipc")
        self.scheduler.addItem("Euler", "euler")
        self.scheduler.addItem("Few-step (distilled generators)", "fewstep")
        self.scheduler.setToolTip("Sampler; a new draft is needed after changing it")
        for w in (self.gamma_hf, self.sigma_min, self.sigma_max, self.light_lead):
            w.valueChanged.connect(self._upfb_changed)
        self.scheduler.currentIndexChanged.connect(self._emit)
        af.addRow("γ_hf", self.gamma_hf)
        af.addRow("σ min", self.sigma_min)
        af.addRow("σ max", self.sigma_max)
        af.addRow("Light lead", self.light_lead)
        af.addRow("Sampler", self.scheduler)
        self.adv.setVisible(False)
        self.adv_toggle.toggled.connect(self.adv.setVisible)
        form.addRow(self.adv)
        self.hint = QLabel()
        self.hint.setObjectName("inlineError")
        self.hint.setWordWrap(True)
        self.hint.setVisible(False)
        form.addRow(self.hint)
        self._lock_toggled(False)
        self._sync_preset()
        self._frames_changed()

    # -- values --
    def values(self) -> dict:
        return {
            "width": self.width.value(), "height": self.height.value(), "num_frames": self.frames.value(),
            "steps": self.steps.value(), "guidance_light": round(self.guidance_light.value(), 3),
            "guidance_heavy": round(self.guidance_heavy.value(), 3), "seed": self.seed.value(),
            "seed_locked": self.lock.isChecked(), "scheduler": self.scheduler.currentData(),
            "upfb": {"gamma_hf": round(self.gamma_hf.value(), 4), "sigma_min": round(self.sigma_min.value(), 4),
                     "sigma_max": round(self.sigma_max.value(), 4), "light_lead": self.light_lead.value()},
        }

    def set_values(self, v: dict) -> None:
        """Apply stored values; anything missing or out of range keeps the widget's current value."""
        self.blockSignals(True)
        try:
            def put(box, key, src=v):
                if isinstance(src.get(key), (int, float)) and not isinstance(src.get(key), bool):
                    box.setValue(src[key])
            for key in ("width", "height"):
                if isinstance(v.get(key), int) and v[key] % 16 == 0:
                    getattr(self, key).setValue(v[key])
            put(self.frames, "num_frames")
            self.frames.setValue(int(self.frames.fixup(str(self.frames.value()))))
            put(self.steps, "steps")
            put(self.guidance_light, "guidance_light")
            put(self.guidance_heavy, "guidance_heavy")
            put(self.seed, "seed")
            if isinstance(v.get("seed_locked"), bool):
                self.lock.setChecked(v["seed_locked"])
            i = self.scheduler.findData(v.get("scheduler"))
            if i >= 0:
                self.scheduler.setCurrentIndex(i)
            u = v.get("upfb") if isinstance(v.get("upfb"), dict) else {}
            put(self.gamma_hf, "gamma_hf", u)
            put(self.sigma_min, "sigma_min", u)
            put(self.sigma_max, "sigma_max", u)
            put(self.light_lead, "light_lead", u)
        finally:
            self.blockSignals(False)
        self._sync_preset()
        self._frames_changed()
        self._upfb_changed()

    def request_fields(self) -> dict:
        """The RenderRequest keyword arguments these settings stand for."""
        v = self.values()
        return {k: v[k] for k in ("width", "height", "num_frames", "steps", "guidance_light", "guidance_heavy",
                                  "seed", "scheduler")} | {"upfb": UPFBParams(**v["upfb"])}

    def apply_fast_preset(self) -> None:
        """The Fast preset (engine.api.FAST_PRESET): few-step sampler, 4 steps, guidance 1 for both generators."""
        self.set_values(dict(FAST_PRESET))
        self.changed.emit()

    def set_fps(self, fps: int) -> None:
        self._fps = max(1, int(fps))
        self._frames_changed()

    def roll_seed(self) -> None:
        self.seed.setValue(random.randint(0, MAX_SEED))

    # -- slots --
    def _emit(self, *_):
        self.changed.emit()

    def _lock_toggled(self, on: bool) -> None:
        self.lock.setIcon(icon("lock" if on else "unlock"))
        self.changed.emit()

    def _size_preset(self, index: int) -> None:
        wh = self.size.itemData(index)
        custom = not wh
        self.width.setEnabled(custom)
        self.height.setEnabled(custom)
        if not custom:
            w, h = (int(x) for x in wh.split("x"))
            self.width.blockSignals(True)
            self.width.setValue(w)
            self.width.blockSignals(False)
            self.height.setValue(h)
        self.changed.emit()

    def _sync_preset(self) -> None:
        i = self.size.findData(f"{self.width.value()}x{self.height.value()}")
        self.size.blockSignals(True)
        self.size.setCurrentIndex(i if i >= 0 else self.size.count() - 1)
        self.size.blockSignals(False)
        custom = not self.size.currentData()
        self.width.setEnabled(custom)
        self.height.setEnabled(custom)

    def _snap_size(self) -> None:
        notes = []
        for name, box in (("width", self.width), ("height", self.height)):
            v = box.value()
            if v % 16:
                fixed = max(16, 16 * round(v / 16))
                box.setValue(fixed)
                notes.append(f"{name} {v} → {fixed} (must be a multiple of 16)")
        self._show_hint("; ".join(notes))

    def _frames_changed(self, *_):
        f = self.frames.value()
        if (f - 1) % 4:
            fixed = max(1, 4 * round((f - 1) / 4) + 1)
            self.frames.setValue(fixed)
            self._show_hint(f"frames {f} → {fixed} (must be 4k + 1)")
            return
        self.seconds.setText(f"= {f / self._fps:.2f} s at {self._fps} fps")
        self.changed.emit()

    def _steps_changed(self, *_):
        self.light_lead.setMaximum(self.steps.value())
        self.changed.emit()

    def _upfb_changed(self, *_):
        if self.sigma_min.value() > self.sigma_max.value():
            self._show_hint("σ min must not exceed σ max: σ max was raised to match")
            self.sigma_max.setValue(self.sigma_min.value())
        self.changed.emit()

    def _show_hint(self, text: str) -> None:
        self.hint.setText(text)
        self.hint.setVisible(bool(text))

