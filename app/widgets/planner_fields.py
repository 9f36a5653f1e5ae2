"""The model picker's planner row, for a plain light + heavy pair (engine/planner.py): an instruction LLM that
rewrites the instruction into an explicit shot description, and what the heavy generator reads.

`PlannerFields` holds the planner's folder or repo id (Browse…, the line under it that explains a folder that is not
an instruction LLM) and the "Heavy generator reads" choice. `planner_problem` is the picker's check of that field
(no Qt, runs on the helper thread): engine.api.check_planner reads the folder's files only, no weights. The embedded
family and the Lumos-Nexus release have their own understanding block, so the picker shows this row for a pair only.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from engine.api import HEAVY_READS, LumosError, ModelSpec, check_planner, expected_defaults

PLANNER_TIP = ("An instruction LLM that rewrites your instruction into an explicit shot description (who or what, "
               "where, how it moves) for the light generator, e.g. Qwen2.5-1.5B-Instruct from the local Hugging Face "
               "cache (Qwen/Qwen2.5-1.5B-Instruct) or its folder. It loads when first asked and leaves the GPU after "
               "each plan. Leave empty for none.")
HEAVY_READS_LABELS = {"instruction": "the instruction as typed", "plan": "the plan"}
HEAVY_READS_TIP = ("What the heavy generator is conditioned on when the pair has a planner: the instruction as typed "
                   "(the paper's frozen heavy generator), or the planner's plan, like the light one")


def planner_problem(spec: ModelSpec) -> str | None:
    """Why the spec's planner cannot be used (None: no planner, or a usable folder). Files only, nothing loaded."""
    if not spec.planner:
        return None
    try:
        check_planner(spec.planner)
        if expected_defaults(spec).get("has_understanding"):
            return ("These generators have their own understanding block, which writes the plan: a planner is for a "
                    "plain pair. Leave this empty.")
    except LumosError as exc:
        return str(exc)
    except Exception as exc:  # an unreadable folder must become a message, not a crash
        return f"Could not check this planner ({type(exc).__name__}: {exc})"
    return None


class PlannerFields(QWidget):
    """The planner's folder or repo id (with Browse… and its inline error) and what the heavy generator reads."""

    changed = Signal()

    def __init__(self, spec: ModelSpec, browse, parent: QWidget | None = None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        self.planner = QLineEdit("" if spec.family else spec.planner or "")
        self.planner.setPlaceholderText("optional: folder or repo id, e.g. Qwen/Qwen2.5-1.5B-Instruct")
        self.planner.setToolTip(PLANNER_TIP)
        self.planner.textChanged.connect(self._planner_changed)
        row = QWidget()
        v = QVBoxLayout(row)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(2)
        h = QHBoxLayout()
        self.browse = QPushButton("Browse…")
        self.browse.setToolTip("Choose the planner's folder (config.json, tokenizer with a chat template, weights)")
        self.browse.clicked.connect(lambda: browse(self.planner))
        h.addWidget(self.planner, 1)
        h.addWidget(self.browse)
        v.addLayout(h)
        self.error = QLabel("")
        self.error.setObjectName("inlineError")
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error.setVisible(False)
        v.addWidget(self.error)
        form.addRow("Planner (instruction LLM)", row)
        self.heavy_reads = QComboBox()
        for value in HEAVY_READS:
            self.heavy_reads.addItem(HEAVY_READS_LABELS.get(value, value), value)
        self.heavy_reads.setCurrentIndex(max(0, self.heavy_reads.findData(spec.heavy_reads)))
        self.heavy_reads.setToolTip(HEAVY_READS_TIP)
        self.heavy_reads.currentIndexChanged.connect(self.changed)
        form.addRow("Heavy generator reads", self.heavy_reads)
        lay.addLayout(form)
        self._planner_changed()

    def source(self) -> str | None:
        return self.planner.text().strip() or None

    def spec_fields(self) -> dict:
        """ModelSpec's planner fields: no planner reads the instruction (the engine's default)."""
        source = self.source()
        return {"planner": source, "heavy_reads": self.heavy_reads.currentData() if source else "instruction"}

    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(bool(text))
        if self.planner.property("invalid") != bool(text):
            self.planner.setProperty("invalid", bool(text))
            self.planner.style().unpolish(self.planner)  # re-read the stylesheet's [invalid="true"] border
            self.planner.style().polish(self.planner)

    def _planner_changed(self) -> None:
        self.heavy_reads.setEnabled(bool(self.source()))  # without a planner the heavy reads the instruction
        self.changed.emit()
