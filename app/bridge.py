"""The one place where engine threads meet Qt.

EngineBridge owns the Engine. The engine calls `_on_event` on its worker thread; the bridge re-emits each event
as a Qt signal. Those signals must be connected to *bound methods of GUI-thread QObjects* only: in PySide6 6.12 a
lambda or plain function slot runs in the emitting (worker) thread (DESIGN §7).

Work that would cost the GUI thread time (numpy → QImage, thumbnails, keyframes) is done here, on the worker
thread, before the signal is emitted.

Tasks runs small blocking calls (file export, MP4 reading, config validation) on a helper thread and hands the
result to a callback on the GUI thread.
"""

from __future__ import annotations

import logging
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QImage

from engine.api import (
    Cancelled,
    DraftReady,
    Done,
    Failed,
    LoadProgress,
    ModelsLoaded,
    PlanReady,
    Queued,
    Started,
    StepEvent,
)

log = logging.getLogger(__name__)

THUMB_SIZE = (160, 96)
KEYFRAMES = 8


def frame_to_qimage(frame: np.ndarray) -> QImage:
    """One [H, W, 3] uint8 frame as an owned QImage (safe to create on any thread)."""
    frame = np.ascontiguousarray(frame)
    h, w = frame.shape[:2]
    return QImage(frame.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def keyframe_indices(num_frames: int, count: int = KEYFRAMES) -> list[int]:
    if num_frames <= count:
        return list(range(num_frames))
    return sorted({round(i * (num_frames - 1) / (count - 1)) for i in range(count)})


@dataclass
class StepPreview:
    """A StepEvent with its preview already turned into QImages."""

    event: StepEvent
    images: list[QImage] = field(default_factory=list)


@dataclass
class FinishedTake:
    """A Done event's take plus what the UI shows of it, prepared off the GUI thread."""

    job_id: int
    take: Any  # engine Take
    thumbnail: QImage
    keyframes: list[tuple[int, QImage]]


def prepare_take(job_id: int, take) -> FinishedTake:
    frames = take.frames
    mid = frames[len(frames) // 2]
    thumb = frame_to_qimage(mid).scaled(*THUMB_SIZE, Qt.AspectRatioMode.KeepAspectRatio,
                                        Qt.TransformationMode.SmoothTransformation)
    keys = [(i, frame_to_qimage(frames[i]).scaled(192, 128, Qt.AspectRatioMode.KeepAspectRatio,
                                                  Qt.TransformationMode.SmoothTransformation))
            for i in keyframe_indices(len(frames))]
    return FinishedTake(job_id, take, thumb, keys)


class EngineBridge(QObject):
    """Owns the engine; turns its events into Qt signals (payload: the engine event, or a prepared wrapper)."""

    queued = Signal(object)  # Queued
    started = Signal(object)  # Started
    loadProgress = Signal(object)  # LoadProgress
    modelsLoaded = Signal(object)  # ModelsLoaded
    step = Signal(object)  # StepPreview
    finished = Signal(object)  # FinishedTake (from Done)
    failed = Signal(object)  # Failed
    cancelled = Signal(object)  # Cancelled
    planReady = Signal(object)  # PlanReady
    ready = Signal()  # the engine exists (its load job is queued next)
    startFailed = Signal(str)
    _created = Signal(object, object)

    def __init__(self, engine_factory: Callable[..., Any] | None = None, parent: QObject | None = None):
        super().__init__(parent)
        self._factory = engine_factory
        self.engine = None
        self.starting = False
        self._closed = False
        self._created.connect(self._engine_created)  # bound method: delivered on the GUI thread

    def start(self, spec=None) -> None:
        """Create the engine on a helper thread, then queue loading `spec`.

        Off the GUI thread because constructing engine.api.Engine currently imports torch (engine.runtime →
        engine.cache), which would freeze the window for seconds. `ready` or `startFailed` answers.
        """
        self.starting = True
        threading.Thread(target=self._create, args=(spec,), name="lumos-engine-start", daemon=True).start()

    def _create(self, spec) -> None:
        try:
            if self._factory is None:
                from engine.api import Engine

                engine = Engine(spec, on_event=self._on_event)
            else:
                engine = self._factory(spec, on_event=self._on_event)
        except Exception as exc:  # a missing engine part must not keep the window from working
            log.error("engine could not start: %s", traceback.format_exc())
            self._created.emit(None, f"The engine could not start ({type(exc).__name__}: {exc}). "
                                     "Reinstall Lumos Studio or check the log.")
            return
        self._created.emit(engine, spec)

    def _engine_created(self, engine, spec_or_error) -> None:  # GUI thread
        self.starting = False
        if engine is None:
            self.startFailed.emit(spec_or_error)
            return
        if self._closed:
            engine.shutdown(wait=False)
            return
        self.engine = engine
        self.ready.emit()
        engine.load(spec_or_error)

    def shutdown(self) -> None:
        self._closed = True
        if self.engine is not None:
            try:
                self.engine.shutdown(wait=True, timeout=10.0)
            except Exception:
                log.exception("engine shutdown failed")

    # Runs on the engine's worker thread.
    def _on_event(self, event) -> None:
        try:
            self._dispatch(event)
        except Exception as exc:  # never lose a job's end: a listener error would leave the UI waiting forever
            log.exception("could not forward %s", type(event).__name__)
            if isinstance(event, (Done, Failed, Cancelled)):
                self.failed.emit(Failed(event.job_id, f"The finished take could not be shown ({type(exc).__name__}: "
                                                      f"{exc}).", "InternalError"))

    def _dispatch(self, event) -> None:
        if isinstance(event, StepEvent):
            images = []
            if event.preview is not None:
                images = [frame_to_qimage(f) for f in event.preview]
            self.step.emit(StepPreview(event, images))
        elif isinstance(event, Done):
            self.finished.emit(prepare_take(event.job_id, event.take))
        elif isinstance(event, DraftReady):
            pass  # a Done for the same job follows at once and carries the same take
        elif isinstance(event, Queued):
            self.queued.emit(event)
        elif isinstance(event, Started):
            self.started.emit(event)
        elif isinstance(event, LoadProgress):
            self.loadProgress.emit(event)
        elif isinstance(event, ModelsLoaded):
            self.modelsLoaded.emit(event)
        elif isinstance(event, Failed):
            self.failed.emit(event)
        elif isinstance(event, Cancelled):
            self.cancelled.emit(event)
        elif isinstance(event, PlanReady):
            self.planReady.emit(event)


class Tasks(QObject):
    """Run `fn(*args)` on a helper thread; `on_done(result)` / `on_error(message)` run on the GUI thread."""

    _finished = Signal(int, object, object)

    def __init__(self, parent: QObject | None = None, workers: int = 1):
        super().__init__(parent)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lumos-task")
        self._callbacks: dict[int, tuple[Callable | None, Callable | None]] = {}
        self._next = 0
        self.closed = False
        self._finished.connect(self._deliver)  # bound method of a GUI-thread object: queued delivery

    def run(self, fn: Callable, *args, on_done: Callable | None = None, on_error: Callable | None = None) -> None:
        self._next += 1
        token = self._next
        self._callbacks[token] = (on_done, on_error)
        if self.closed:  # shutting down: finish the work now rather than drop it
            try:
                result = fn(*args)
            except Exception as exc:
                self._deliver(token, None, exc)
            else:
                self._deliver(token, result, None)
            return
        self._pool.submit(self._call, token, fn, args)

    @property
    def busy(self) -> bool:
        return bool(self._callbacks)

    def _call(self, token, fn, args):
        try:
            result = fn(*args)
        except Exception as exc:
            log.info("background task failed: %s", traceback.format_exc())
            self._finished.emit(token, None, exc)
        else:
            self._finished.emit(token, result, None)

    def _deliver(self, token, result, error):
        on_done, on_error = self._callbacks.pop(token, (None, None))
        if error is not None:
            if on_error is not None:
                on_error(error)
            else:
                log.error("background task failed: %s", error)
        elif on_done is not None:
            on_done(result)

    def shutdown(self) -> None:
        """Wait for queued work (take files, saves); later `run` calls execute inline."""
        self.closed = True
        self._pool.shutdown(wait=True)
