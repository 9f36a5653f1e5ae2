"""A generator's LoRAs in the model picker: a short list of .safetensors files, each with its strength.

`lora_problem` (no Qt) says why a file cannot be a LoRA: the engine's own check (an existing .safetensors file,
engine.api.check_lora_file) and a look at the safetensors header (8-byte length, then a JSON object naming tensors),
so that a renamed or damaged file is explained in the dialog rather than when the models load.
"""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.api import ModelError, check_lora_file

MIN_STRENGTH, MAX_STRENGTH, STRENGTH_STEP = -4.0, 4.0, 0.05
MAX_HEADER_BYTES = 100 << 20  # safetensors' own limit on the JSON header
MAX_ENTRIES = 16  # per generator (app.schema.MAX_LORAS keeps the same bound in the settings)
STRENGTH_TIP = ("How strongly this LoRA acts: 1 = as trained, 0 = off, between = weaker, above 1 = stronger, "
                "negative = the opposite direction")


def lora_problem(path: str) -> str:
    """"" when `path` can be offered to the engine as a LoRA, else one sentence saying why not. Reads only the
    file's header (no tensors); whether its keys fit the generator is checked when the models load."""
    try:
        p = check_lora_file(path)
    except ModelError as exc:
        return str(exc)
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            head = fh.read(8)
            length = int.from_bytes(head, "little") if len(head) == 8 else -1
            if length <= 1 or length > min(MAX_HEADER_BYTES, size - 8):
                return f"LoRA {p.name} is not a safetensors file (its header is missing or damaged)"
            header = json.loads(fh.read(length).decode("utf-8"))
    except OSError as exc:
        return f"LoRA {p.name} cannot be read: {exc.strerror or exc}"
    except (UnicodeDecodeError, ValueError, RecursionError):
        return f"LoRA {p.name} is not a safetensors file (its header is not readable)"
    if not isinstance(header, dict) or not any(k != "__metadata__" for k in header):
        return f"LoRA {p.name} holds no tensors"
    return ""


def loras_problem(entries) -> str:
    """The first problem among (path, strength) entries, "" when every file can be offered."""
    return next((why for why in (lora_problem(path) for path, _ in entries) if why), "")


class LoraList(QWidget):
    """The LoRAs of one generator (`role`: "light" or "heavy"): Add… (a .safetensors file), Remove, and a strength
    per entry. `entries()` is what ModelSpec.lora_<role> takes; a problem shows in red under the list."""

    changed = Signal()

    def __init__(self, role: str, entries=(), parent: QWidget | None = None):
        super().__init__(parent)
        self.role = role
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        row = QHBoxLayout()
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["LoRA file", "Strength"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setMaximumHeight(110)
        self.table.setToolTip(f"LoRAs attached to the {role} generator, in this order, each with its strength "
                              "(none: the generator as it is)")
        self.table.itemSelectionChanged.connect(self._selection)
        row.addWidget(self.table, 1)
        buttons = QVBoxLayout()
        self.add_button = QPushButton("Add…")
        self.add_button.setToolTip(f"Add a LoRA (.safetensors file) to the {role} generator")
        self.add_button.clicked.connect(self.browse)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Remove the selected LoRA from the list (the file stays where it is)")
        self.remove_button.clicked.connect(self.remove_selected)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        row.addLayout(buttons)
        lay.addLayout(row)
        self.error = QLabel("")
        self.error.setObjectName("inlineError")
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error.setVisible(False)
        lay.addWidget(self.error)
        self.set_entries(entries)

    # ------------------------------------------------------------------ entries
    def entries(self) -> tuple[tuple[str, float], ...]:
        t = self.table
        return tuple((t.item(r, 0).data(Qt.ItemDataRole.UserRole), round(t.cellWidget(r, 1).value(), 4))
                     for r in range(t.rowCount()))

    def set_entries(self, entries) -> None:
        self.table.setRowCount(0)
        for path, scale in entries:
            self._append(str(path), 1.0 if scale is None else float(scale))
        self._selection()

    def _append(self, path: str, scale: float) -> None:
        r = self.table.rowCount()
        self.table.insertRow(r)
        item = QTableWidgetItem(Path(path).name or path)
        item.setData(Qt.ItemDataRole.UserRole, path)
        item.setToolTip(path)
        self.table.setItem(r, 0, item)
        spin = QDoubleSpinBox()
        spin.setRange(min(MIN_STRENGTH, scale), max(MAX_STRENGTH, scale))  # a stronger saved value is kept as it is
        spin.setSingleStep(STRENGTH_STEP)
        spin.setDecimals(2)
        spin.setValue(scale)
        spin.setToolTip(STRENGTH_TIP)
        spin.setAccessibleName(f"Strength of {item.text()}")
        spin.valueChanged.connect(self._edited)
        self.table.setCellWidget(r, 1, spin)

    def add_file(self, path: str, scale: float = 1.0) -> bool:
        """Add `path` when it can be a LoRA (else say why under the list and leave the list as it was)."""
        why = lora_problem(path)
        if not why and len(self.entries()) >= MAX_ENTRIES:
            why = f"At most {MAX_ENTRIES} LoRAs per generator."
        if why:
            self.show_error(why)
            return False
        self._append(str(path), scale)
        self.table.selectRow(self.table.rowCount() - 1)
        self._edited()
        return True

    def browse(self) -> None:
        start = self.entries()[-1][0] if self.entries() else ""
        path, _ = QFileDialog.getOpenFileName(self, f"Add a LoRA to the {self.role} generator",
                                              str(Path(start).parent) if start else "",
                                              "LoRA (*.safetensors)")
        if path:
            self.add_file(path)

    def remove_selected(self) -> None:
        rows = sorted({i.row() for i in self.table.selectedIndexes()}, reverse=True)
        for r in rows:
            self.table.removeRow(r)
        if rows:
            self._edited()

    def _selection(self) -> None:
        self.remove_button.setEnabled(bool(self.table.selectedIndexes()))

    def _edited(self) -> None:
        self.changed.emit()  # the picker clears its marks (show_error("")) and forgets its last check

    # ------------------------------------------------------------------ problems
    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(bool(text))
        if self.table.property("invalid") != bool(text):
            self.table.setProperty("invalid", bool(text))
            self.table.style().unpolish(self.table)
            self.table.style().polish(self.table)
        if text:
            for r, (path, _) in enumerate(self.entries()):
                if Path(path).name and Path(path).name in text:
                    self.table.selectRow(r)  # the entry the message is about
                    break
