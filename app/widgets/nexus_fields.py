"""The model picker's Lumos-Nexus release choice: the authors' released system (docs/nexus_release.md), two folders.

`NexusFields` holds the Omni-Video bundle and the original-format Wan2.1-T2V-14B folders, each with its Browse…
button and the line under it that explains a wrong or incomplete folder, and the license note. `check_family_folders`
is the picker's check for a family spec (no Qt, runs on the helper thread): the engine's file-presence check per
folder (engine.api.family_folder_problems names every missing file), then its config-level check of the whole.
`memory_line` is the estimate line the picker shows for a usable choice of any kind.
"""

from __future__ import annotations

from PySide6.QtWidgets import QFormLayout, QLabel, QLineEdit, QVBoxLayout, QWidget

from engine.api import LumosError, ModelSpec, estimate_memory, family_folder_problems, family_info, validate_spec

from .common import folder_field

FAMILY = "lumos-nexus"
LICENSE_NOTE = ("License: the Omni-Video bundle comes with no stated license and is built on VILA1.5 (CC-BY-NC-SA-4.0): "
                "use it for research only, non-commercially. Wan2.1 is Apache-2.0. Lumos Studio downloads and ships "
                "none of these weights (docs/nexus_release.md).")
BUNDLE_TIP = ("The Omni-Video bundle, downloaded from Hugging Face howellyoung1/OmniVideo11B: the folder holding wan/, "
              "transformer/, adapter/, vision_head/, ar_model/, special_tokens/ and unconditioned_context/ (the "
              "release's model_ckpts/; its parent folder is accepted too). Run `python main.py convert-nexus "
              "FOLDER` once for its two plain pickles.")
HEAVY_TIP = ("Wan-AI/Wan2.1-T2V-14B in its original format (config.json and diffusion_pytorch_model-*.safetensors), "
             "not the -Diffusers repository")


def check_family_folders(spec: ModelSpec) -> tuple[bool, str, dict[str, str]]:
    """(usable, message, {"light" / "heavy": why that folder cannot be used}) for a spec with a family: configs,
    tensor headers and the two small pickles only, no weights loaded."""
    try:
        problems = family_folder_problems(spec.family, spec.light, spec.heavy)
    except LumosError as exc:
        return False, str(exc), {}
    if problems:
        fields = " and ".join(("the bundle" if k == "light" else "the 14B folder") for k in ("light", "heavy")
                              if k in problems)
        return False, f"Fix {fields} (marked in red): every missing file is named.", problems
    try:
        report = validate_spec(spec)
    except LumosError as exc:  # e.g. the bundle's plain pickles, not converted yet: the message names the command
        return False, "The Omni-Video bundle cannot be used yet.", {"light": str(exc)}
    except Exception as exc:  # an unreadable file must become a message, not a crash
        return False, f"Could not check these folders ({type(exc).__name__}: {exc})", {}
    if not report.ok:
        return False, report.message(), {}
    return True, f"The {family_info(spec.family)['label']}'s folders are complete; {report.message()[0].lower()}" \
        f"{report.message()[1:]}", {}


def memory_line(spec: ModelSpec) -> str:
    """The memory plan loading `spec` would apply and its estimated peak, at the models' own size (configs only)."""
    estimate, plan = estimate_memory(spec)
    weights = getattr(estimate, "weights_bytes", None)
    return "Estimated " + plan.describe() + (f"; weights {weights / 1e9:.1f} GB" if weights else "")


class NexusFields(QWidget):
    """The two folders of the release, each with Browse… and its inline error; the license note under them."""

    def __init__(self, spec: ModelSpec, browse, parent: QWidget | None = None):
        super().__init__(parent)
        ours = spec.family == FAMILY
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        form = QFormLayout()
        self.bundle = QLineEdit((spec.light or "") if ours else "")
        self.bundle.setPlaceholderText("folder of howellyoung1/OmniVideo11B (or its model_ckpts/)")
        self.bundle.setToolTip(BUNDLE_TIP)
        self.heavy = QLineEdit((spec.heavy or "") if ours else "")
        self.heavy.setPlaceholderText("folder of Wan-AI/Wan2.1-T2V-14B (original format)")
        self.heavy.setToolTip(HEAVY_TIP)
        self.errors: dict[str, QLabel] = {}
        form.addRow("Omni-Video bundle", self._row(self.bundle, "light", browse))
        form.addRow("Wan2.1-T2V-14B", self._row(self.heavy, "heavy", browse))
        lay.addLayout(form)
        self.note = QLabel(LICENSE_NOTE)
        self.note.setObjectName("hint")
        self.note.setWordWrap(True)
        self.note.setToolTip("See docs/nexus_release.md, “License: read this before you use it”")
        lay.addWidget(self.note)

    def _row(self, edit: QLineEdit, name: str, browse) -> QWidget:
        row, self.errors[name] = folder_field(edit, browse, "Choose the folder")
        return row

    def edits(self) -> dict[str, QLineEdit]:
        return {"light": self.bundle, "heavy": self.heavy}
