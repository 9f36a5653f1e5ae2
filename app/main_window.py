"""Lumos Studio's main window: instruction → draft → storyboard → hand-off refine → takes → export.

The state (the project, its jobs and takes and their lifecycle) lives in app.session.Session, which has no Qt; the
window draws it and forwards the user's intents to it. Engine events come from app.bridge.EngineBridge as signals
connected to bound methods of this window (the GUI thread), which hand them to the session and draw the result.
The window's other rooms: app.window_layout (widgets and menus), app.window_projects (open, save, take files),
app.window_export (export and reproduce), app.window_models (models, LoRAs, the picker), app.window_plan (the plan
panel) and app.gate_view (what the hand-off panel shows).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QEvent, QTimer
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QMainWindow

from engine.api import RenderRequest

from . import project as proj
from .bridge import EngineBridge, FinishedTake, StepPreview, Tasks
from .gate_view import GateView
from .project import Project
from .resources import icon
from .session import Session, remaining_seconds
from .settings import Settings
from .widgets.dialogs import ShortcutsDialog
from .window_export import ExportRoom
from .window_layout import WindowLayout
from .window_models import ModelsRoom
from .window_plan import PlanRoom
from .window_projects import ProjectRoom
from .window_takes import TakesRoom

log = logging.getLogger(__name__)

ERROR_HINTS = {
    "OutOfMemory": "",  # the engine's message already says what to do
    "ModelError": " Use the button to choose other models (Models ▸ Choose models…).",
    "RequestError": " Change the setting named above and try again.",
    "InternalError": " The app is still usable; if it happens again, try other settings and report it.",
}


class MainWindow(WindowLayout, ProjectRoom, TakesRoom, ExportRoom, ModelsRoom, PlanRoom, QMainWindow):
    def __init__(self, engine_factory: Callable | None = None, settings: Settings | None = None,
                 project_path: str | Path | None = None, start_engine: bool = True):
        super().__init__()
        self.setWindowTitle("Lumos Studio")
        self.setWindowIcon(icon("app"))
        self.setAcceptDrops(True)
        self.first_paint: float | None = None
        self._start_engine_after_paint = False
        # imageio-ffmpeg otherwise starts ffmpeg with preexec_fn, which forces a full fork() of this big process
        # while holding the GIL: a visible GUI stall each time a take file is written.
        os.environ.setdefault("IMAGEIO_FFMPEG_NO_PREVENT_SIGINT", "1")
        self.torch_at_first_paint: bool | None = None
        self.settings_problem = None
        if settings is None:
            settings, self.settings_problem = Settings.load()
        self.settings = settings
        self.thumbs: dict[str, QImage] = {}
        self.keyframes: dict[str, list] = {}
        self._loading_frames: set[str] = set()
        self._pending_compare: tuple[str, str] | None = None
        self._draft_after_load = False  # Draft pressed before the models (and their default sizes) were known
        self._models_pending = start_engine  # a model load is coming or running
        self._engine_factory = engine_factory
        self.tasks = Tasks(self)  # files: take files, project saves, MP4 reads (in order)
        # The gate's timesteps import diffusers' schedulers (seconds on a busy machine): never ahead of a save.
        self._gate_tasks = Tasks(self)
        self.bridge = EngineBridge(engine_factory, self)
        self.session = Session(self, lambda: self.bridge.engine, lambda: self.bridge.starting)
        self._build_ui()
        self.gate = GateView(self.handoff, self.settings_panel, self.session, self._gate_tasks.run)
        self._build_menus()
        self._connect_bridge()
        self._save_timer = QTimer(self)
        self._save_timer.setSingleShot(True)
        self._save_timer.setInterval(800)
        self._save_timer.timeout.connect(self.save_project)
        self._memory_timer = QTimer(self)
        self._memory_timer.setInterval(2000)
        self._memory_timer.timeout.connect(self._update_memory)
        self._memory_timer.start()
        self._update_memory()
        self.project = self._open_initial_project(project_path)
        self._apply_expected_defaults()
        self._restore_settings()
        self._update_seed_note()  # (a settings problem is told with the project's, in _open_initial_project)
        self._start_engine_after_paint = start_engine

    @property
    def project(self) -> Project:
        return self.session.project

    @project.setter
    def project(self, project: Project) -> None:
        self.session.project = project

    # Read-only views of the session's state, for scripts, benches and tests.
    jobs = property(lambda self: self.session.jobs)
    watch_job = property(lambda self: self.session.watch_job)
    summary = property(lambda self: self.session.summary)
    frames = property(lambda self: self.session.frames)

    def _connect_bridge(self) -> None:
        # Bound methods only: these signals are emitted on the engine's worker thread.
        b = self.bridge
        b.queued.connect(self._on_queued)
        b.started.connect(self._on_started)
        b.loadProgress.connect(self._on_load_progress)
        b.modelsLoaded.connect(self._on_models_loaded)
        b.step.connect(self._on_step)
        b.finished.connect(self._on_finished)
        b.failed.connect(self._on_failed)
        b.cancelled.connect(self._on_cancelled)
        b.planReady.connect(self._on_plan)
        b.ready.connect(self._on_engine_ready)
        b.startFailed.connect(self._on_engine_failed)

    # ------------------------------------------------------------------ startup / shutdown
    def event(self, e) -> bool:
        if e.type() == QEvent.Type.Paint and self.first_paint is None:
            self.first_paint = time.perf_counter()
            self.torch_at_first_paint = "torch" in sys.modules
            if self._start_engine_after_paint:
                # Only once the window is on screen: the worker's torch import competes for the GIL.
                QTimer.singleShot(30, self.start_engine)
        return super().event(e)

    def _update_memory(self) -> None:
        text = f"RAM {process_memory_bytes() / 2**30:.1f} GB" if process_memory_bytes() else ""
        torch = sys.modules.get("torch")  # only if the engine already imported it: never import it here
        summary = self.session.summary
        if torch is not None and summary and str(summary.get("device", "")).startswith("cuda"):
            try:
                used, total = torch.cuda.memory_allocated(), torch.cuda.get_device_properties(0).total_memory
                text += f" · GPU {used / 2**30:.1f}/{total / 2**30:.0f} GB"
            except Exception:
                pass
        self.memory_label.setText(text)

    @property
    def engine(self):
        return self.bridge.engine

    def start_engine(self) -> None:
        if self.engine is not None or self.bridge.starting:
            return
        self.model_label.setText("Models: starting the engine…")
        self.load_bar.setVisible(True)
        self.load_bar.setValue(0)
        self.bridge.start(self.current_spec())

    def _on_engine_ready(self) -> None:
        self.model_label.setText("Models: loading…")
        self.session.engine_ready()

    def _on_engine_failed(self, message: str) -> None:
        self.session.engine_failed()
        self._draft_after_load = self._models_pending = False
        self.load_bar.setVisible(False)
        self.model_label.setText("Models: engine unavailable")
        self.banner.show_message(message, "error")

    def closeEvent(self, event) -> None:
        self.session.closing = True  # jobs cancelled by the shutdown stay in the project's queue for next time
        self.player.transport.pause()
        self.compare.stop()
        self.bridge.shutdown()
        self.tasks.shutdown()  # finish take files and saves already queued
        self._gate_tasks.shutdown()
        QApplication.processEvents()  # deliver their results (and any last engine events) to the project
        self.save_project(sync=True)
        self.project.close()  # the folder's lock: another instance may open it now
        self._store_settings()
        super().closeEvent(event)

    # ------------------------------------------------------------------ what the session tells the window
    def tell(self, text: str, level: str, action_text: str | None = None, action: Callable | None = None) -> None:
        self.banner.show_message(text, level, action_text, action)

    def status(self, text: str, ms: int = 0) -> None:
        self.statusBar().showMessage(text, ms)

    def save_soon(self) -> None:
        self._save_timer.start()

    def save_other(self, project: Project) -> None:
        """Write a project that is not the open one any more (on the helper thread)."""
        self.tasks.run(proj.write_project, project.file, project.to_dict(), on_error=self._save_failed)

    def submitted(self) -> None:
        if self.banner.level == "error":
            self.banner.dismiss()

    def jobs_changed(self) -> None:
        self.queue.set_jobs(self.session.queue_rows())

    def _job_ended(self) -> None:
        self.cancel_button.setEnabled(self.session.rendering())
        self.jobs_changed()

    # ------------------------------------------------------------------ rendering intents
    def _base_request(self) -> RenderRequest:
        prompt = self.prompt.text()  # its plan: a hand edit made for it, else the block's or planner's (window_plan)
        return RenderRequest(prompt=prompt, negative_prompt=self.prompt.negative_text(), mode="upfb", handoff=0.0,
                             **self.plan_request_fields(prompt), **self.settings_panel.request_fields())

    def draft(self) -> None:
        """Render the instruction with the light generator alone (or show the take if it exists)."""
        focused = QApplication.focusWidget()
        if isinstance(focused, QAbstractSpinBox):
            focused.interpretText()  # a number typed but not yet confirmed counts (the boxes apply on Enter)
        if not self.prompt.text().strip():
            self.banner.show_message("Type an instruction first, then press Draft.", "warning")
            self.prompt.edit.setFocus()
            return
        if self.session.summary is None and self._models_pending:
            # The first load may still change the settings to the sizes the models were made for.
            self._draft_after_load = True
            self.statusBar().showMessage("The models are loading; the draft starts as soon as they are ready.")
            return
        if not self.settings_panel.lock.isChecked():
            self.settings_panel.roll_seed()
        req = self.session.draft(self._base_request())
        if req is not None:
            self.settings.add_recent_prompt(req.prompt)
            self.prompt.set_history(self.settings.recent_prompts)
            self.save_soon()

    def refine(self, s: float) -> None:
        """The slider rested at s (HandoffPanel.requested): the session shows or renders that refine."""
        self.session.refine(s, self.settings_panel.request_fields())

    def resume_queue(self) -> None:
        self.session.resume_queue()

    def cancel_running(self) -> None:
        self.session.cancel(None)

    def cancel_all(self) -> None:
        self.session.cancel_all()

    def cancel_job(self, job_id: int) -> None:
        self.session.cancel(job_id)

    def escape(self) -> None:
        if self.stack.currentWidget() is self.compare:
            self.close_compare()
        elif not self.escape_plan():  # Write plan's job, while no render runs (app.window_plan)
            self.cancel_running()

    def refine_official(self) -> None:
        if not self.handoff.isEnabled():
            self.banner.show_message("Render a draft first; the hand-off refines it.", "info")
            return
        self.handoff.set_value(self.handoff.slider.official / 100, fire=True)

    def _nudge_handoff(self, delta: int) -> None:
        if self.handoff.isEnabled():
            self.handoff.slider.setValue(self.handoff.slider.value() + delta)

    # ------------------------------------------------------------------ engine events (GUI thread)
    def _on_queued(self, ev) -> None:
        self.session.on_queued(ev.job_id)

    def _on_started(self, ev) -> None:
        job = self.session.on_started(ev.job_id, ev.kind)
        if job.kind in ("draft", "refine"):
            self.cancel_button.setEnabled(True)
            if ev.job_id == self.session.watch_job:
                self.player.set_progress(0, 1, f"{job.label}: starting…")

    def _on_load_progress(self, ev) -> None:
        self.load_bar.setVisible(True)
        self.load_bar.setValue(round(100 * ev.fraction))
        self.model_label.setText(f"Loading: {ev.message}")

    def _on_models_loaded(self, ev) -> None:
        self.session.on_models_loaded(ev.job_id, ev.summary)
        s = self.session.summary
        self.load_bar.setVisible(False)
        defaults = s.get("defaults") or {}
        self._show_models(s)  # names, and their LoRAs (app.window_models)
        params = ""
        if s.get("light_params") and s.get("heavy_params"):
            params = f" · {s['light_params'] / 1e6:.1f} M + {s['heavy_params'] / 1e6:.1f} M parameters"
        memory = s.get("memory_plan") if isinstance(s.get("memory_plan"), dict) else {}
        plan = f" · memory: {memory['name']}" if memory.get("name") else ""
        self.device_label.setText(f"{s.get('device', '?')} · {s.get('dtype', '?')}{params}{plan}")
        self.device_label.setToolTip("Where the models run, their precision and size"
                                     + (f"\n{memory['line']}" if memory.get("line") else ""))
        self.show_plan_panel(s)  # block, planner, or a family that reads the instruction directly (app.window_plan)
        if isinstance(s.get("max_sequence_length"), int):
            self.prompt.set_token_budget(s["max_sequence_length"])
        if "fps" in defaults:
            self.settings_panel.set_fps(int(defaults["fps"]))
        if isinstance(defaults.get("flow_shift"), (int, float)):
            self.gate.mark_default(float(defaults["flow_shift"]))
        key = self.settings.model_key()
        if defaults and self.settings.defaults_applied_for != key and not self.project.takes:
            # First time with this model pair: start from the sizes it was made for.
            self._apply_family_defaults(defaults)
            self.settings.defaults_applied_for = key
        self.statusBar().showMessage("Models loaded. Type an instruction and press Draft.", 4000)
        self.gate.update()
        self._models_pending = False
        if self._draft_after_load:
            self._draft_after_load = False
            self.draft()
        self._render_pending()  # "Render it" of a restored take pressed while these models loaded

    def _on_step(self, sp: StepPreview) -> None:
        ev = sp.event
        job = self.session.on_step(ev)
        if job is None or ev.job_id != self.session.watch_job:
            return
        if self.stack.currentWidget() is not self.player:
            self.stack.setCurrentWidget(self.player)
        cached = " (from draft cache)" if ev.from_cache else ""
        text = (f"{job.label} · step {ev.step}/{ev.total} · {ev.phase}{cached} · "
                f"{ev.elapsed:.1f} s · ~{remaining_seconds(job, ev):.0f} s left")
        caption = f"step {ev.step}/{ev.total} · {ev.phase} · light share {ev.w_t:.2f}"
        self.player.show_step(sp.images, caption)
        self.player.set_progress(ev.step, ev.total, text)

    def _on_finished(self, ft: FinishedTake) -> None:
        done = self.session.on_finished(ft.job_id, ft.take)
        take, record = ft.take, done.record
        if done.project is not self.project:  # submitted in a project that is no longer open
            self._write_take_file(record, take, ft.thumbnail, project=done.project)
            self._job_ended()
            return
        if done.new:
            self.thumbs[record.id] = ft.thumbnail
            self.takes.add_take(record, ft.thumbnail)
            self._write_take_file(record, take, ft.thumbnail)
        self.keyframes[record.id] = ft.keyframes
        self.take_plan(take.request, take.metadata)  # how the block or planner read it; editable from here
        if done.watched:
            self.show_take(record.id)
            self.player.set_progress(1, 1, f"{record.label()} done in {take.elapsed:.1f} s"
                                           + (" (from cache)" if take.from_cache else ""))
        self._job_ended()

    def _on_failed(self, ev) -> None:
        job = self.session.end(ev.job_id)
        what = {"load": "Loading the models", "draft": "The draft", "refine": "The refine",
                "plan": "Writing the plan"}.get(job.kind if job else "", "A job")
        message = ev.message.strip()
        if message and message[-1] not in ".!?…)":
            message += "."
        action, run = (("Choose models…", self.choose_models) if ev.error_type == "ModelError" else (None, None))
        plan = getattr(ev, "suggested_memory", None)
        if ev.error_type == "OutOfMemory" and plan:
            # one click: reload with the lighter plan; the settings and the queue stay as they are
            action, run = f"Reload with the {plan} memory plan", lambda: self.use_memory_plan(plan)
        self.banner.show_message(f"{what} failed: {message}{ERROR_HINTS.get(ev.error_type, '')}", "error",
                                 action, run)
        if job is not None and job.kind == "load" or (self.session.summary is None and ev.error_type == "ModelError"):
            self._draft_after_load = self._models_pending = False
            self._pending_render = None
            self.load_bar.setVisible(False)
            self.model_label.setText("Models: not loaded")
        self.plan_job_ended(job)
        if self.session.stop_watching(ev.job_id):
            self.player.end_stream()
            self.player.set_progress(0, 1, "Failed: see the message above")
            self._reshow_current()
        self._job_ended()

    def _on_cancelled(self, ev) -> None:
        job = self.session.end(ev.job_id)
        self.plan_job_ended(job, cancelled=True)
        if self.session.stop_watching(ev.job_id):
            self.player.end_stream()
            at = f" at step {ev.at_step}" if ev.at_step else ""
            self.player.set_progress(0, 1, f"{job.label if job else 'Job'} cancelled{at}")
            self._reshow_current()
        self._job_ended()

    # ------------------------------------------------------------------ dialogs
    def show_shortcuts(self) -> None:
        ShortcutsDialog(self).exec()

    def show_about(self) -> None:
        from engine.api import __version__

        self.banner.show_message(f"Lumos Studio {__version__}: draft with a light generator, refine with a heavy one "
                                 "(UPFB hand-off), export MP4.", "info")


def process_memory_bytes() -> int:
    """Resident memory of this process (Linux: now; elsewhere: the peak), 0 if unknown."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024
    except (ImportError, OSError):
        return 0


def run(argv: list[str] | None = None) -> int:
    """Start the app. Options: --demo (a scripted engine, no models), --project FOLDER."""
    import argparse

    t0 = time.perf_counter()
    parser = argparse.ArgumentParser(prog="lumos-studio")
    parser.add_argument("--demo", action="store_true", help="use a scripted engine (no models, for a tour)")
    parser.add_argument("--project", help="open this project folder")
    parser.add_argument("--print-startup", action="store_true", help="print the time to first paint")
    args, qt_args = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app = QApplication.instance() or QApplication([sys.argv[0], *qt_args])
    app.setApplicationName("Lumos Studio")
    app.setStyle("Fusion")
    from .resources import stylesheet

    app.setStyleSheet(stylesheet())
    factory = None
    if args.demo:
        from .fake_engine import FakeEngine

        factory = FakeEngine
    win = MainWindow(engine_factory=factory, project_path=args.project)
    win.show()
    if args.print_startup:
        def report():
            if win.first_paint is None:
                QTimer.singleShot(10, report)
                return
            print(f"time to first paint: {1000 * (win.first_paint - t0):.0f} ms "
                  f"(torch imported before paint: {win.torch_at_first_paint})", flush=True)
        QTimer.singleShot(0, report)
    return app.exec()
