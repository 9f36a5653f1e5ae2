"""Dialogs: the model picker (with validation), export options and Help ▸ Shortcuts."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.api import LumosError, ModelSpec, embedded_family_available, family_info, validate_spec

from .common import folder_field
from .lora_list import LoraList, loras_problem
from .nexus_fields import FAMILY as NEXUS, NexusFields, check_family_folders, memory_line
from .planner_fields import PlannerFields, planner_problem

SHORTCUTS = [
    ("Ctrl+Enter", "Render a draft of the instruction (from anywhere in the window)"),
    ("Esc", "Cancel the running job (or close the compare view)"),
    ("Ctrl+E", "Export the shown take as MP4"),
    ("Ctrl+K", "Compare the two selected takes"),
    ("Alt+Up / Alt+Down", "Previous / next recent instruction (in the editor)"),
    ("Space", "Play / pause (player focused)"),
    ("Left / Right", "Previous / next frame (player focused)"),
    ("Left / Right", "Move the wipe split (compare view in Wipe mode, picture clicked)"),
    ("Home / End", "First / last frame (player focused)"),
    ("Ctrl+R", "Refine at the default hand-off (amber mark)"),
    ("Ctrl+[ / Ctrl+]", "Hand-off 5 % less / more"),
    ("Ctrl+N", "New project"),
    ("Ctrl+O", "Open a project"),
    ("Ctrl+Shift+O", "Open a take from an exported MP4 (restores its instruction and settings)"),
    ("Ctrl+Shift+S", "Save the project as…"),
    ("F1", "This list"),
    ("Ctrl+Q", "Quit"),
]


class ShortcutsDialog(QDialog):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        lay = QVBoxLayout(self)
        table = QTableWidget(len(SHORTCUTS), 2)
        table.setHorizontalHeaderLabels(["Keys", "Action"])
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for row, (keys, what) in enumerate(SHORTCUTS):
            table.setItem(row, 0, QTableWidgetItem(keys))
            table.setItem(row, 1, QTableWidgetItem(what))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        lay.addWidget(table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.resize(520, 460)


def check_spec(spec: ModelSpec) -> tuple[bool, str]:
    """(usable, message) for the picker: config-only, no weights loaded."""
    try:
        report = validate_spec(spec)
    except LumosError as exc:
        return False, str(exc)
    except Exception as exc:  # an unreadable folder must become a message, not a crash
        return False, f"Could not check these models ({type(exc).__name__}: {exc})"
    return report.ok, report.message()


def check_models(spec: ModelSpec) -> tuple[bool, str, dict[str, str]]:
    """(usable, message, {"light" / "heavy" / "lora_light" / "lora_heavy" / "planner": why that choice cannot be
    used}): config-only and safetensors headers, no weights loaded. A family's spec (the Lumos-Nexus release): its two
    folders, each explained (app.widgets.nexus_fields); a pair's planner (app.widgets.planner_fields)."""
    if spec.family is not None:
        ok, message, field_errors = check_family_folders(spec)
        loras = {name: why for name in ("lora_light", "lora_heavy") if (why := loras_problem(getattr(spec, name)))}
        return (False, "Fix what is marked in red.", {**field_errors, **loras}) if loras else (ok, message,
                                                                                             field_errors)
    field_errors = {}
    for name in ("light", "heavy"):
        source = getattr(spec, name)
        if not source:
            continue  # empty: the embedded family's model, checked with the pair
        # A spec naming this source twice: validate_spec raises only for an unusable source, so any error is this
        # field's (the pair report it returns otherwise is about the source with itself and is ignored).
        try:
            validate_spec(replace(spec, light=source, heavy=source))
        except LumosError as exc:
            field_errors[name] = str(exc)
        except Exception as exc:  # an unreadable folder must become a message, not a crash
            field_errors[name] = f"Could not check this model ({type(exc).__name__}: {exc})"
    for name in ("lora_light", "lora_heavy"):
        why = loras_problem(getattr(spec, name))
        if why:
            field_errors[name] = why
    if why := planner_problem(spec):
        field_errors["planner"] = why
    if field_errors:
        models = [name for name in field_errors if not name.startswith("lora_")]
        plural = "s" if len(models) > 1 else ""
        message = f"Fix the model{plural} marked in red." if len(models) == len(field_errors) else \
            "Fix what is marked in red."
        return False, message, field_errors
    ok, message = check_spec(spec)
    return ok, message, {}


class ModelPickerDialog(QDialog):
    """Embedded default family, a light + heavy pair from folders or local Hugging Face repo ids, or the authors'
    released Lumos-Nexus system from its two folders (app.widgets.nexus_fields); each generator's LoRAs
    (app.widgets.lora_list).

    "Load these models" checks the choice first (configs only, on a helper thread) and closes only when it is usable;
    a field that does not name a usable model gets its reason in red under it."""

    def __init__(self, spec: ModelSpec, tasks, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.tasks = tasks
        self.valid: bool | None = None
        self._check_id = 0  # results of a check started before the latest edit are dropped
        self._accept_when_valid = False
        lay = QVBoxLayout(self)
        self.embedded = QRadioButton("Embedded Lumos mini family (runs on any CPU, seconds per take)")
        self.custom = QRadioButton("Choose a light and a heavy generator")
        self.nexus_choice = QRadioButton(family_info(NEXUS)["title"])
        self.nexus_choice.setToolTip("The paper's own setting as the authors released it: their understanding block "
                                     "with the fine-tuned Wan 1.3B, and Wan2.1-T2V-14B as the heavy generator. About "
                                     "31 B parameters; research-only, non-commercial (docs/nexus_release.md)")
        group = QButtonGroup(self)
        for button in (self.embedded, self.custom, self.nexus_choice):
            group.addButton(button)
        if not embedded_family_available():
            self.embedded.setText(self.embedded.text() + " — not installed")
        lay.addWidget(self.embedded)
        lay.addWidget(self.custom)
        lay.addWidget(self.nexus_choice)
        form = self.form = QFormLayout()
        self.light = QLineEdit("" if spec.family else spec.light or "")  # a family's folders: its own fields
        self.light.setPlaceholderText("folder or repo id, e.g. Wan-AI/Wan2.1-T2V-1.3B-Diffusers")
        self.light.setToolTip("The light generator: a diffusers Wan pipeline folder or a repo id in the local cache")
        self.heavy = QLineEdit("" if spec.family else spec.heavy or "")  # a family's folders: its own fields
        self.heavy.setPlaceholderText("folder or repo id, e.g. Wan-AI/Wan2.1-T2V-14B-Diffusers")
        self.heavy.setToolTip("The heavy generator: a pipeline or transformer folder, or a repo id in the local cache")
        self.field_errors: dict[str, QLabel] = {}
        form.addRow("Light", self._with_browse(self.light, "light"))
        form.addRow("Heavy", self._with_browse(self.heavy, "heavy"))
        self.nexus = NexusFields(spec, self._browse)
        for edit in self.nexus.edits().values():
            edit.textChanged.connect(self._edited)
        form.addRow(self.nexus)
        self.planner = PlannerFields(spec, self._browse)  # a plain pair's planner; the families have their own block
        self.planner.changed.connect(self._edited)
        form.addRow(self.planner)
        self.loras = {role: LoraList(role, getattr(spec, f"lora_{role}", ())) for role in ("light", "heavy")}
        for role, widget in self.loras.items():
            widget.changed.connect(self._edited)
            form.addRow(f"{role.capitalize()} LoRAs", widget)
        self.device = QComboBox()
        for label, value in (("Automatic (GPU if present)", "auto"), ("CPU", "cpu"), ("CUDA GPU", "cuda"),
                             ("Apple GPU (MPS)", "mps")):
            self.device.addItem(label, value)
        self.device.setCurrentIndex(max(0, self.device.findData(spec.device)))
        self.device.setToolTip("Where the generators run")
        self.offload = QCheckBox("CPU offload (for GPUs with less memory than both generators need)")
        self.offload.setChecked(spec.offload)
        self.offload.setToolTip("Keep only the active generator on the GPU: slower, but avoids out-of-memory")
        self.memory = QComboBox()
        for value, label in (("auto", "Auto (chosen from the card's free memory)"),
                             ("resident", "Resident: everything on the GPU (fastest)"),
                             ("balanced", "Balanced: text encoder off the GPU, heavy generator offloaded"),
                             ("low", "Low: both generators offloaded, tiled VAE decode")):
            self.memory.addItem(label, value)
        self.memory.setCurrentIndex(max(0, self.memory.findData(getattr(spec, "memory", "auto"))))
        self.memory.setToolTip("How the models share GPU memory; the plan in use and its estimated peak are in the "
                               "status bar (hover the device)")
        form.addRow("Device", self.device)
        form.addRow("Memory", self.memory)
        form.addRow("", self.offload)
        lay.addLayout(form)
        row = QHBoxLayout()
        self.validate_button = QPushButton("Check pair")
        self.validate_button.setToolTip("Check, without loading weights, that the two generators share a latent space")
        self.validate_button.clicked.connect(self.validate)
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        row.addWidget(self.validate_button)
        row.addWidget(self.result_label, 1)
        lay.addLayout(row)
        self.memory_label = QLabel("")
        self.memory_label.setObjectName("hint")
        self.memory_label.setWordWrap(True)
        self.memory_label.setToolTip("Estimated from the models' configs (nothing loaded) at their own video size; the "
                                     "Memory choice above decides the plan")
        lay.addWidget(self.memory_label)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.load_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.load_button.setText("Load these models")
        self.load_button.setToolTip("Check the models (no weights are read) and load them if they can work together")
        self.buttons.accepted.connect(self._accept)
        self.buttons.rejected.connect(self.reject)
        lay.addWidget(self.buttons)
        (self.nexus_choice if spec.family == NEXUS else self.custom if (spec.light or spec.heavy)
         else self.embedded).setChecked(True)
        group.buttonToggled.connect(self._mode)
        self._mode()
        self.resize(640, 520)

    def _with_browse(self, edit: QLineEdit, name: str) -> QWidget:
        row, self.field_errors[name] = folder_field(edit, self._browse, "Choose a model folder")
        edit.textChanged.connect(self._edited)
        return row

    def _browse(self, edit: QLineEdit) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose a model folder", edit.text())
        if path:
            edit.setText(path)

    def _edited(self) -> None:
        self._check_id += 1
        self._accept_when_valid = False
        self.valid = None
        self.result_label.setText("")
        self.memory_label.setText("")
        self.validate_button.setEnabled(True)
        self.load_button.setEnabled(True)
        self._show_field_errors({})

    def _mode(self, *_) -> None:
        custom, nexus = self.custom.isChecked(), self.nexus_choice.isChecked()
        self.light.setEnabled(custom)
        self.heavy.setEnabled(custom)
        for edit in (self.light, self.heavy):
            self.form.setRowVisible(edit.parentWidget(), not nexus)
        self.form.setRowVisible(self.nexus, nexus)
        self.form.setRowVisible(self.planner, custom)
        self.validate_button.setText("Check folders" if nexus else "Check pair")
        self._edited()

    def _model_edits(self) -> dict[str, QLineEdit]:
        """The light / heavy fields of the chosen kind (the release's two folders, or the pair's)."""
        return self.nexus.edits() if self.nexus_choice.isChecked() else {"light": self.light, "heavy": self.heavy}

    def spec(self) -> ModelSpec:
        loras = {"lora_light": self.loras["light"].entries(), "lora_heavy": self.loras["heavy"].entries()}
        if self.embedded.isChecked():
            return ModelSpec(device=self.device.currentData(), offload=self.offload.isChecked(),
                             memory=self.memory.currentData(), **loras)
        if self.nexus_choice.isChecked():
            return ModelSpec(family=NEXUS, light=self.nexus.bundle.text().strip() or None,
                             heavy=self.nexus.heavy.text().strip() or None, device=self.device.currentData(),
                             offload=self.offload.isChecked(), memory=self.memory.currentData(), **loras)
        return ModelSpec(light=self.light.text().strip() or None, heavy=self.heavy.text().strip() or None,
                         device=self.device.currentData(), offload=self.offload.isChecked(),
                         memory=self.memory.currentData(), **loras, **self.planner.spec_fields())

    def validate(self) -> None:
        """Check the choice and show the result (the "Check pair" button)."""
        self._check_id += 1
        check_id = self._check_id
        self.validate_button.setEnabled(False)
        self.load_button.setEnabled(False)
        self.result_label.setStyleSheet("")
        self.result_label.setText("Checking…")
        self.tasks.run(check_models, self.spec(), on_done=lambda result: self._validated(result, check_id),
                       on_error=lambda exc: self._validated((False, str(exc), {}), check_id))

    def _validated(self, result: tuple[bool, str, dict[str, str]], check_id: int | None = None) -> None:
        if check_id is not None and check_id != self._check_id:
            return  # the fields changed while this check ran
        ok, message, field_errors = result
        self.valid = ok
        self.validate_button.setEnabled(True)
        self.load_button.setEnabled(True)
        self.result_label.setText(("✔ " if ok else "✖ ") + message)
        self.result_label.setStyleSheet(f"color: {'#6fdc8c' if ok else '#ff9a8a'};")
        self._show_field_errors(field_errors)
        accept, self._accept_when_valid = self._accept_when_valid, False
        if ok and accept:
            self.accept()
        elif ok:
            self.memory_label.setText("Estimating the memory needed…")
            self.tasks.run(memory_line, self.spec(), on_done=lambda line: self._memory_estimated(line, check_id),
                           on_error=lambda exc: self._memory_estimated(
                               f"Memory not estimated ({type(exc).__name__}: {exc})"[:300], check_id))

    def _memory_estimated(self, line: str, check_id: int | None) -> None:
        if check_id is None or check_id == self._check_id:
            self.memory_label.setText(line)

    def _show_field_errors(self, errors: dict[str, str]) -> None:
        labels = self.nexus.errors if self.nexus_choice.isChecked() else self.field_errors
        for other in (self.field_errors if labels is self.nexus.errors else self.nexus.errors).values():
            other.setVisible(False)
        edits = self._model_edits()
        for name, edit in edits.items():
            label, text = labels[name], errors.get(name, "")
            label.setText(text)
            label.setVisible(bool(text))
            if edit.property("invalid") != bool(text):
                edit.setProperty("invalid", bool(text))
                edit.style().unpolish(edit)  # re-read the stylesheet's [invalid="true"] border
                edit.style().polish(edit)
        for role, widget in self.loras.items():
            widget.show_error(errors.get(f"lora_{role}", ""))
        self.planner.show_error(errors.get("planner", ""))
        fields = (("light", edits["light"]), ("heavy", edits["heavy"]), ("planner", self.planner.planner),
                  ("lora_light", self.loras["light"].table), ("lora_heavy", self.loras["heavy"].table))
        first_bad = next((e for n, e in fields if errors.get(n)), None)
        if first_bad is not None:
            first_bad.setFocus()
        self._fit_height()

    def _fit_height(self) -> None:
        """Grow to show every wrapped message in full (a list of missing files takes several lines)."""
        self.layout().activate()
        wanted = self.layout().totalHeightForWidth(self.width()) if self.layout().hasHeightForWidth() else -1
        wanted = max(wanted, self.sizeHint().height())
        if wanted > self.height():
            self.resize(self.width(), wanted)

    def _accept(self) -> None:
        """"Load these models": close only once the check says the choice is usable (its reason shows otherwise)."""
        if self.valid:
            self.accept()
            return
        self._accept_when_valid = True
        self.validate()

    def reject(self) -> None:
        self._accept_when_valid = False
        self._check_id += 1
        super().reject()


QUALITIES = (("Best (CRF 12)", 12), ("High (CRF 18)", 18), ("Medium (CRF 23)", 23), ("Small file (CRF 28)", 28))


def default_scale(width: int, height: int) -> int:
    """Upscale small takes (the embedded models render 64 px) so the exported video is at least ~256 px."""
    scale = 1
    while min(width, height) * scale < 256 and scale < 8:
        scale *= 2
    return scale


class ExportDialog(QDialog):
    """Where to write the MP4, at which frame rate, quality and size."""

    def __init__(self, path: str, fps: int, width: int, height: int, crf: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export take")
        self._size = (width, height)
        lay = QVBoxLayout(self)
        form = QFormLayout()
        self.path = QLineEdit(path)
        self.path.setToolTip("The MP4 file to write; its settings are stored inside (drop it back to reproduce)")
        browse = QPushButton("Browse…")
        browse.setToolTip("Choose where to save")
        browse.clicked.connect(self._browse)
        row = QWidget()
        h = QHBoxLayout(row)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(self.path, 1)
        h.addWidget(browse)
        form.addRow("File", row)
        from PySide6.QtWidgets import QSpinBox

        self.fps = QSpinBox()
        self.fps.setRange(1, 120)
        self.fps.setValue(fps)
        self.fps.setToolTip("Frames per second of the video (the take was made for "
                            f"{fps} fps; other values play it faster or slower)")
        form.addRow("Frame rate", self.fps)
        self.quality = QComboBox()
        for label, value in QUALITIES:
            self.quality.addItem(label, value)
        self.quality.setCurrentIndex(max(0, self.quality.findData(crf)))
        self.quality.setToolTip("x264 quality: lower CRF is better and larger")
        form.addRow("Quality", self.quality)
        self.scale = QComboBox()
        for s in (1, 2, 4, 8):
            self.scale.addItem(f"{s}×  ({width * s}×{height * s})", s)
        self.scale.setCurrentIndex(max(0, self.scale.findData(default_scale(width, height))))
        self.scale.setToolTip("Enlarge the frames before encoding (sharp pixel upscaling)")
        form.addRow("Size", self.scale)
        lay.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.resize(560, 200)

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export take as MP4", self.path.text(), "MP4 video (*.mp4)")
        if path:
            self.path.setText(path)

    def options(self) -> dict:
        return {"path": self.path.text().strip(), "fps": self.fps.value(), "crf": self.quality.currentData(),
                "scale": self.scale.currentData()}
