"""Left column, below the instruction: the render settings (instruction and plan: widgets/instruction.py)."""

from __future__ import annotations

import random

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QToolButton,
    QWidget,
)

from engine.api import FAST_PRESET, MAX_STEPS, UPFBParams

from ..resources import icon, presets
from ..schema import MAX_SEED


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

