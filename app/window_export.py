"""The window's export and reproduce room: Export take…, drop or open an exported MP4, Render it.

A mixin of MainWindow (app.main_window). Files are written and read on the helper thread (`self.tasks`); a dropped
MP4 is untrusted, so its settings go through project_open.restore_from_metadata before anything uses them.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from engine.api import RenderRequest, RequestError, export_take, read_take_metadata

from .media import read_mp4_frames
from .plan_state import PlanState
from .project_open import restore_from_metadata
from .settings import export_folder
from .widgets.dialogs import ExportDialog


class ExportRoom:
    """MainWindow's export, drag-and-drop and reproduce methods."""

    def export_dialog(self) -> None:
        t = self.session.current()
        if t is None:
            self.banner.show_message("There is no take to export yet: render a draft first.", "info")
            return
        # a file name from the take's name: a typed name may hold "/" or other characters a file name cannot
        stem = re.sub(r"[^\w.-]+", "_", (t.name or t.kind_label()).replace("%", "pct")).strip("._") or "take"
        name = f"{stem[:80]}-seed{t.seed}.mp4"
        start = export_folder(self.settings.last_export_dir) / name
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
        frames = self.session.frames.get(t.id)
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
        start = export_folder(self.settings.last_export_dir)
        path, _ = QFileDialog.getOpenFileName(self, "Open take from MP4", str(start), "MP4 video (*.mp4)")
        if path:
            self.reproduce_from(path)

    def reproduce_from(self, path: str | Path) -> None:
        """Restore the instruction and settings stored in an exported MP4."""
        self.tasks.run(read_take_metadata, str(path), on_done=lambda meta: self._apply_metadata(path, meta),
                       on_error=lambda e: self.banner.show_message(
                           f"{Path(path).name} holds no Lumos Studio settings ({e}).", "error"))

    def _apply_metadata(self, path, meta: dict) -> None:
        try:  # an MP4 is untrusted: every value is checked (restore_from_metadata) before it is used
            restored = restore_from_metadata(meta)
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
            self.session.plan_state = PlanState(req.plan, req.prompt, True)  # drafted from a hand-edited plan
            self.plan.set_plan(req.plan)
        elif restored.plan:
            self.session.plan_state = PlanState(restored.plan, req.prompt, False)
            self.plan.set_plan(restored.plan)
        self._refresh_plan_status()
        self.save_soon()
        what = "draft" if req.is_draft else f"refine at {round(req.handoff * 100)} %"
        # The seed lock is left as it was: a restored take must not change what the next draft does unsaid.
        lock = ("" if self.settings_panel.lock.isChecked()
                else " New drafts still roll their own seed; lock the seed to keep this one.")
        # the banner, with "Render it", once the take's LoRAs are found (app.window_models)
        self.restore_loras(path, restored, f"Settings restored from {Path(path).name} ({what}, seed {req.seed}).{lock}")

    def render_request(self, req: RenderRequest) -> None:
        """Render exactly `req` (used by drop-to-reproduce), with the models being loaded when they are."""
        if not self.render_when_loaded(req):
            self.session.render(req)
