"""The window's project room: open, new, save, save as, the settings file, and the take files on disk.

A mixin of MainWindow (app.main_window): it uses the window's widgets, its Session (`self.session`) and its helper
thread (`self.tasks`). Project files are written on the helper thread, never on the GUI thread during work.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from types import SimpleNamespace

from PySide6.QtCore import QByteArray
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog

from engine.api import ProjectError, export_take, expected_defaults

from . import project as proj
from .project import Project, TakeRecord
from .project_open import open_project, unused_copy_dir
from .settings import default_project_dir


log = logging.getLogger(__name__)


class ProjectRoom:
    """MainWindow's project, settings and take-file methods."""

    # ------------------------------------------------------------------ projects and settings
    def _open_initial_project(self, path) -> Project:
        target = Path(path) if path else Path(self.settings.last_project or default_project_dir())
        failed = None
        try:
            opened = open_project(target, create=True)
        except ProjectError as exc:  # a broken last project never stops the app: a fresh one, and say so
            fresh = proj.unused_project_dir()
            opened, failed = open_project(fresh, create=True), f"{exc} A new project was started in {fresh}."
        self._apply_project(opened.project)
        self._tell_opened(opened, " ".join(m for m in (self.settings_problem, failed) if m),
                          "error" if failed else "warning" if self.settings_problem else None)
        return opened.project

    def _tell_opened(self, opened, before: str | None = None, level: str | None = None) -> None:
        """One banner for what opening a project found, after earlier words (a settings problem, a failed open).
        A read-only project offers a copy; otherwise _apply_project's offer to render a queue again is kept."""
        text = " ".join(m for m in (before, opened.message) if m)
        if not text:
            return
        level = level or opened.level
        if opened.read_only:
            self.banner.show_message(text, "warning", "Open a copy", self.open_copy)
        elif self.project.queue and self.banner.level:
            self.banner.show_message(f"{text} {self.banner.text.text()}", level, "Render again", self.resume_queue)
        else:
            self.banner.show_message(text, level)

    def open_copy(self) -> None:
        """A project open in another window is shown read-only here: copy it beside itself and continue there."""
        if not self.save_as(unused_copy_dir(self.project.folder)):
            return
        for t in self.project.takes:  # takes made while read-only were kept in memory: their files go to the copy
            if t.file is None and t.id in self.session.frames:
                take = SimpleNamespace(frames=self.session.frames[t.id], fps=t.fps, metadata=t.metadata)
                self._write_take_file(t, take, self.thumbs.get(t.id) or QImage())

    def _apply_project(self, project: Project) -> None:
        old = self.session.project
        if old is not None and old is not project:
            old.close()  # its lock goes now: reopening it at once (Open recent) must find it free
        self.session.open(project)
        self.settings.add_recent_project(str(project.folder))
        self.thumbs.clear()
        self.keyframes.clear()
        self.prompt.set_text(project.prompt)
        self.prompt.set_negative(project.negative_prompt)
        self.plan.set_plan(project.plan)
        self.plan.use.setChecked(project.use_plan)
        self._refresh_plan_status()
        self.settings_panel.set_values(project.settings or self.settings.render)
        self._update_seed_note()
        for t in project.takes:
            thumb_path = project.path_of(t, "thumbnail")
            if thumb_path is not None and thumb_path.exists():
                self.thumbs[t.id] = QImage(str(thumb_path))
        self.takes.set_takes(project.takes, self.thumbs)
        self.setWindowTitle(f"{project.name} — Lumos Studio")
        self.gate.update()
        current = self.session.current() or self.session.base()
        self.statusBar().clearMessage()
        if current is not None:
            self.show_take(current.id)
        else:
            self._show_nothing()
        if project.queue:
            n = len(project.queue)
            self.banner.show_message(f"{n} render{'s' if n > 1 else ''} had not finished when Lumos Studio last "
                                     "closed.", "info", "Render again", self.resume_queue)

    def _apply_expected_defaults(self) -> None:
        """Show the settings the configured models were made for from the first paint (read from their family's
        lumos.json, no weights), instead of generic ones that jump once the models have loaded."""
        try:
            expected = expected_defaults(self.current_spec())
        except Exception as exc:  # a bad configured path is reported by the load itself
            log.info("no family defaults before loading: %s", exc)
            return
        if not expected:
            return
        spec = self.current_spec()  # who will write the plan: the block, the planner, or nobody readable
        self.show_plan_panel({**expected, "family": spec.family,
                              "planner": spec.planner if expected.get("has_planner") else None})
        defaults = expected.get("defaults") or {}
        if isinstance(defaults.get("fps"), int):
            self.settings_panel.set_fps(defaults["fps"])
        if defaults and self.settings.defaults_applied_for != self.settings.model_key() and not self.project.takes:
            self._apply_family_defaults(defaults)

    def _apply_family_defaults(self, defaults: dict) -> None:
        values = self.settings_panel.values()
        values.update({k: defaults[k] for k in ("width", "height", "num_frames", "steps", "guidance_light",
                                                "guidance_heavy") if k in defaults})
        self.settings_panel.set_values(values)

    def _restore_settings(self) -> None:
        s = self.settings
        self.prompt.set_history(s.recent_prompts)
        if s.geometry:
            self.restoreGeometry(QByteArray.fromBase64(s.geometry.encode()))
        if s.window_state:
            self.restoreState(QByteArray.fromBase64(s.window_state.encode()))
        if s.splitter:
            self.splitter.restoreState(QByteArray.fromBase64(s.splitter.encode()))

    def _store_settings(self) -> None:
        s = self.settings
        s.geometry = bytes(self.saveGeometry().toBase64()).decode()
        s.window_state = bytes(self.saveState().toBase64()).decode()
        s.splitter = bytes(self.splitter.saveState().toBase64()).decode()
        s.add_recent_project(str(self.project.folder))
        s.render = self.settings_panel.values()
        try:
            s.save()
        except ProjectError as exc:
            self.banner.show_message(str(exc), "warning")

    def _update_seed_note(self) -> None:
        locked = self.settings_panel.lock.isChecked()
        self.seed_note.setText(f"Seed {self.settings_panel.seed.value()} locked: every draft uses it")
        self.seed_note.setVisible(locked)

    def _settings_changed(self) -> None:
        self.save_soon()
        self.gate.update()

    def save_project(self, sync: bool = False) -> bool:
        """Snapshot the project now; write it on the helper thread (or here when `sync`).

        fsync + rename can take tens of milliseconds on a busy disk: never on the GUI thread during work.
        Returns False when a synchronous save failed (the message is in the banner).
        """
        self._save_timer.stop()
        p = self.project
        p.prompt = self.prompt.text()
        p.negative_prompt = self.prompt.negative_text()
        plan = self.session.plan_state
        p.plan, p.plan_instruction, p.plan_edited = plan.text, plan.instruction, plan.edited
        p.use_plan = self.plan.use.isChecked()
        p.settings = self.settings_panel.values()
        data, file = p.to_dict(), p.file
        if not sync:
            self.tasks.run(proj.write_project, file, data, on_error=self._save_failed)
            return True
        try:
            proj.write_project(file, data)
        except ProjectError as exc:
            self._save_failed(exc)
            return False
        return True

    def _save_failed(self, exc: Exception) -> None:
        self.banner.show_message(str(exc), "error")

    def new_project(self) -> None:
        self.save_project()
        folder = proj.unused_project_dir()
        # The settings carry over, a locked seed does not: a new project starts with fresh seeds.
        settings = self.settings_panel.values() | {"seed_locked": False}
        project = Project(folder=folder, name=folder.name, settings=settings)
        problem = project.acquire_lock()  # None, or why it is read-only (a folder that cannot be locked)
        self._apply_project(project)
        self.save_project()
        self.settings.add_recent_project(str(folder))
        if problem:
            self.banner.show_message(problem, "warning")

    def open_project(self, path: str | Path) -> bool:
        try:
            opened = open_project(path, current=self.project)
        except ProjectError as exc:
            self.banner.show_message(str(exc), "error")
            return False
        project = opened.project
        self.save_project()
        self._apply_project(project)
        self.settings.add_recent_project(str(project.folder))
        self._tell_opened(opened, f"Opened {project.folder}.")
        return True

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        folders = [p for p in self.settings.recent_projects if p != str(self.project.folder)]
        for folder in folders:
            a = self.recent_menu.addAction(Path(folder).name, self._open_recent)
            a.setData(folder)
            a.setToolTip(folder)
        if not folders:
            self.recent_menu.addAction("(no other projects yet)").setEnabled(False)

    def _open_recent(self) -> None:
        action = self.sender()
        if action is not None and action.data():
            self.open_project(action.data())

    def open_project_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open project", str(self.project.folder.parent),
                                              "Lumos Studio project (project.json)")
        if path:
            self.open_project(path)

    def save_as(self, folder: str | Path) -> bool:
        self.save_project()
        try:
            copy = self.project.save_as(Path(folder))
        except (ProjectError, OSError) as exc:
            self.banner.show_message(f"Could not save the project to {folder}: {exc}", "error")
            return False
        self.session.project = copy
        self.settings.add_recent_project(str(copy.folder))
        self.setWindowTitle(f"{copy.name} — Lumos Studio")
        self.banner.show_message(f"Project saved to {copy.folder}; autosave continues there.", "info")
        return True

    def save_as_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save project into folder", str(self.project.folder.parent))
        if folder:
            self.save_as(folder)


    def _write_take_file(self, record: TakeRecord, take, thumb: QImage, project: Project | None = None) -> None:
        project = project or self.project
        folder = project.folder
        crf = self.settings.export_crf
        if project.read_only:  # open in another window: the take stays in memory (export it, or open a copy)
            return

        def write():
            (folder / "takes").mkdir(parents=True, exist_ok=True)
            export_take(take, folder / "takes" / f"{record.id}.mp4", crf=crf)
            thumb.save(str(folder / "takes" / f"{record.id}.png"))

        self.tasks.run(write, on_done=lambda _: self._take_file_written(project, record),
                       on_error=lambda e: self._take_file_failed(record, e))

    def _take_file_written(self, project: Project, record: TakeRecord) -> None:
        record.file = f"takes/{record.id}.mp4"
        record.thumbnail = f"takes/{record.id}.png"
        if project is self.project:
            self.save_project()
            return
        # Another project was opened (or this one saved elsewhere) meanwhile: keep the take's own project whole...
        self.save_other(project)
        current = self.project.take(record.id)
        if current is None or current.file is not None:
            return
        # ...and when Save As copied it before this file existed, bring the file along.
        source, target = project.folder, self.project.folder

        def copy():
            (target / "takes").mkdir(parents=True, exist_ok=True)
            for rel in (record.file, record.thumbnail):
                shutil.copy2(source / rel, target / rel)

        def copied(_):
            current.file, current.thumbnail = record.file, record.thumbnail
            if self.project.take(current.id) is current:
                self.save_project()

        self.tasks.run(copy, on_done=copied, on_error=lambda e: self._take_file_failed(record, e))

    def _take_file_failed(self, record: TakeRecord, exc: Exception) -> None:
        self.banner.show_message(f"The take “{record.label()}” could not be saved to the project: {exc}. "
                                 "It stays available until you close the app; export it with Ctrl+E.", "error")

