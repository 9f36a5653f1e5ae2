"""The engine object callers hold: a queue of jobs run in order by one worker thread that owns the device."""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from .errors import Cancelled as CancelledError
from .errors import LumosError, describe_exception
from .events import (
    Cancelled,
    DraftReady,
    Done,
    Event,
    Failed,
    LoadProgress,
    ModelsLoaded,
    PlanReady,
    Queued,
    Started,
)
from .request import RenderRequest, check_request

log = logging.getLogger(__name__)

EventSink = Callable[[Event], None]


@dataclass
class JobHandle:
    """What `submit` returns: the job's id and kind; `state` moves queued → running → done/failed/cancelled."""

    id: int
    kind: str  # "load", "render", "plan"
    payload: object = None
    state: str = "queued"
    cancel_flag: threading.Event = field(default_factory=threading.Event, repr=False)
    sink: EventSink | None = field(default=None, repr=False)

    @property
    def request(self) -> RenderRequest | None:
        return self.payload if self.kind == "render" else None


class Engine:
    """Thread-safe front door of the engine.

    Every result comes back as events (engine.events): through `on_event` (called on the worker thread) or,
    when no callback is given, through the `events` queue. Errors become `Failed` events with a human
    message; the worker never dies.
    """

    def __init__(
        self,
        spec=None,
        *,
        on_event: EventSink | None = None,
        cache_bytes: int = 2 << 30,
        preview: bool = True,
        num_threads: int | None = None,
        runtime=None,
    ):
        """runtime: what the worker runs (default: the real `Runtime`); anything with `loaded`,
        `load(spec, progress)`, `plan(instruction)` and `render(request, job_id=, emit=, cancel_flag=)`."""
        if runtime is None:
            from .runtime import Runtime  # torch-free import of this module; torch loads lazily in the worker

            runtime = Runtime(cache_bytes=cache_bytes, preview=preview)
        self._runtime = runtime
        self._spec = spec
        self._on_event = on_event
        self.events: "queue.Queue[Event]" = queue.Queue()
        self._num_threads = num_threads
        self._ids = itertools.count(1)
        self._jobs: deque[JobHandle] = deque()
        self._running: JobHandle | None = None
        self._lock = threading.Condition()
        self._stopping = False
        self._worker = threading.Thread(target=self._work, name="lumos-engine", daemon=True)
        self._worker.start()

    # -- public API -------------------------------------------------------------------------------------
    @property
    def runtime(self):
        """The models and caches (read-only use from other threads: summary, caches' sizes)."""
        return self._runtime

    def load(self, spec=None, on_event: EventSink | None = None) -> JobHandle:
        """Queue loading a model pair (a `ModelSpec`; None = the embedded default family)."""
        return self._enqueue("load", spec, on_event)

    def submit(self, request: RenderRequest, *, cancel_running: bool = False, on_event: EventSink | None = None,
               replace_pending: bool = False) -> JobHandle:
        """Queue a render. The request is checked now: a bad one raises RequestError at once, including one the
        loaded models cannot render (size, frames; their text-token windows are checked on the worker, before any
        model reads the texts, and fail the job with the same RequestError message). The checked request is what
        the worker renders, and it is not checked again (engine.request: checked once, at the door).

        cancel_running: cancel the render running now (the app's slider instead cancels its stale refines by id).
        replace_pending: drop renders still waiting in the queue (they are reported Cancelled).
        """
        request = self.check(request)
        if replace_pending:
            self._drop_pending("render")
        handle = self._enqueue("render", request, on_event)
        if cancel_running:
            with self._lock:
                running = self._running
            if running is not None and running.kind == "render" and running is not handle:
                running.cancel_flag.set()
        return handle

    def check(self, request: RenderRequest) -> RenderRequest:
        """`check_request`, and against the loaded models' limits when models are loaded (RequestError)."""
        return check_request(request, limits=self.limits)

    @property
    def limits(self):
        """What the loaded models can render (`engine.request.ModelLimits`), or None before they are loaded."""
        return getattr(self._runtime, "limits", None)

    def submit_plan(self, instruction: str, on_event: EventSink | None = None) -> JobHandle:
        """Queue asking the understanding block for a readable plan (a `PlanReady` event answers)."""
        return self._enqueue("plan", instruction, on_event)

    def cancel(self, job: JobHandle | int | None = None) -> bool:
        """Cancel one job (by handle or id), or the running one when `job` is None. Takes effect within one step."""
        job_id = job.id if isinstance(job, JobHandle) else job
        with self._lock:
            if job_id is None or (self._running is not None and self._running.id == job_id):
                if self._running is None:
                    return False
                self._running.cancel_flag.set()
                return True
            for pending in list(self._jobs):
                if pending.id == job_id:
                    self._jobs.remove(pending)
                    pending.state = "cancelled"
                    self._emit(pending, Cancelled(pending.id, None))
                    return True
        return False

    def cancel_all(self) -> None:
        self._drop_pending(None)
        self.cancel(None)

    def pending(self) -> list[JobHandle]:
        """Jobs waiting in the queue, in order (the running one excluded)."""
        with self._lock:
            return list(self._jobs)

    @property
    def running(self) -> JobHandle | None:
        with self._lock:
            return self._running

    def shutdown(self, wait: bool = True, timeout: float | None = 30.0) -> bool:
        """Cancel everything and stop the worker; True once the worker has ended. A process must not exit while the
        worker is inside torch: its threads are torn down under it and the C++ runtime aborts (SIGABRT)."""
        with self._lock:
            self._stopping = True
            for pending in self._jobs:
                pending.state = "cancelled"
            self._jobs.clear()
            if self._running is not None:
                self._running.cancel_flag.set()
            self._lock.notify_all()
        if wait:
            self._worker.join(timeout)
        return not self._worker.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker to end (after `shutdown`); True once it has."""
        self._worker.join(timeout)
        return not self._worker.is_alive()

    # -- internals --------------------------------------------------------------------------------------
    def _enqueue(self, kind: str, payload, on_event: EventSink | None) -> JobHandle:
        with self._lock:
            if self._stopping:
                raise LumosError("the engine has been shut down")
            handle = JobHandle(next(self._ids), kind, payload, sink=on_event)
            self._jobs.append(handle)
            position = len(self._jobs) - 1 + (self._running is not None)
            self._lock.notify_all()
        self._emit(handle, Queued(handle.id, position))
        return handle

    def _drop_pending(self, kind: str | None) -> None:
        with self._lock:
            dropped = [j for j in self._jobs if kind is None or j.kind == kind]
            for job in dropped:
                self._jobs.remove(job)
                job.state = "cancelled"
        for job in dropped:
            self._emit(job, Cancelled(job.id, None))

    def _emit(self, job: JobHandle, event: Event) -> None:
        sink = job.sink or self._on_event
        if sink is None:
            self.events.put(event)
            return
        try:
            sink(event)
        except Exception:  # a broken listener must not kill the worker
            log.exception("event listener raised on %s", type(event).__name__)

    def _work(self) -> None:
        if self._num_threads:
            import torch

            torch.set_num_threads(self._num_threads)
        while True:
            with self._lock:
                while not self._jobs and not self._stopping:
                    self._lock.wait()
                if self._stopping:
                    self._lock.notify_all()
                    return
                job = self._jobs.popleft()
                job.state = "running"
                self._running = job
            try:
                self._run(job)
            finally:
                with self._lock:
                    self._running = None
                    self._lock.notify_all()

    def _run(self, job: JobHandle) -> None:
        emit = lambda event: self._emit(job, event)  # noqa: E731 - worker-local, never crosses threads
        emit(Started(job.id, job.kind))
        try:
            if job.cancel_flag.is_set():
                raise CancelledError(None)
            if job.kind == "load":
                summary = self._runtime.load(
                    job.payload if job.payload is not None else self._spec,
                    progress=lambda msg, frac: emit(LoadProgress(job.id, msg, frac)),
                )
                job.state = "done"
                emit(ModelsLoaded(job.id, summary))
            elif job.kind == "plan":
                self._ensure_loaded(job, emit)
                ask = getattr(self._runtime, "plan_result", None)  # a scripted runtime has plan() only
                result = ask(job.payload, cancel_flag=job.cancel_flag) if ask is not None else None
                plan = result.text if result is not None else (None if ask else self._runtime.plan(job.payload))
                job.state = "done"
                emit(PlanReady(job.id, job.payload, plan, fell_back=bool(result and result.fell_back),
                               reason=result.reason if result is not None else None))
            else:
                self._ensure_loaded(job, emit)
                take = self._runtime.render(job.payload, job_id=job.id, emit=emit, cancel_flag=job.cancel_flag)
                job.state = "done"
                if job.payload.is_draft:
                    emit(DraftReady(job.id, take))
                emit(Done(job.id, take))
        except CancelledError as stop:
            job.state = "cancelled"
            emit(Cancelled(job.id, stop.at_step))
        except Exception as exc:  # every failure becomes data; the worker lives on
            job.state = "failed"
            message, error_type = describe_exception(exc)
            log.error("job %d failed: %s", job.id, message)
            emit(Failed(job.id, message, error_type, traceback.format_exc(),
                        suggested_memory=getattr(exc, "suggested_plan", None)))

    def _ensure_loaded(self, job: JobHandle, emit) -> None:
        if not self._runtime.loaded:
            summary = self._runtime.load(self._spec, progress=lambda m, f: emit(LoadProgress(job.id, m, f)))
            emit(ModelsLoaded(job.id, summary))
