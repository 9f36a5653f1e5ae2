"""A scripted stand-in for engine.api.Engine: same methods, same event types, no torch, no models.

Used by the app's tests (queue, progress, cancel, errors), the screenshot script and `--demo`. Frames are a
synthetic scene (a disc moving over a gradient) so that previews visibly go from coarse to fine.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections import deque

import numpy as np

from engine.api import (
    Cancelled,
    DraftReady,
    Done,
    Failed,
    JobHandle,
    LoadProgress,
    ModelsLoaded,
    PlanReady,
    Queued,
    Started,
    StepEvent,
    Take,
    check_request,
    handoff_to_gamma_w,
)

DEFAULT_SUMMARY = {
    "light": "fake-light",
    "heavy": "fake-heavy",
    "device": "cpu",
    "dtype": "float32",
    "light_params": 1_000_000,
    "heavy_params": 8_000_000,
    "has_understanding": False,
    "defaults": {"width": 64, "height": 64, "num_frames": 9, "steps": 6, "fps": 8, "flow_shift": 3.0},
}


def synthetic_frames(req, sharpness: float = 1.0, scale: int = 1) -> np.ndarray:
    """[F, H, W, 3] uint8: a disc moving left to right; `sharpness` < 1 blurs it towards its mean."""
    f = req.num_frames if scale == 1 else (req.num_frames - 1) // 4 + 1
    h, w = req.height // scale, req.width // scale
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(req.seed)
    hue = rng.random(3).astype(np.float32)
    out = np.empty((f, h, w, 3), np.float32)
    for i in range(f):
        cx = w * (0.2 + 0.6 * i / max(1, f - 1))
        cy = h * (0.5 + 0.15 * math.sin(i / 2.0 + req.seed))
        disc = ((xx - cx) ** 2 + (yy - cy) ** 2 < (0.18 * min(h, w)) ** 2).astype(np.float32)
        stripes = 0.5 + 0.5 * np.sin(xx * (0.6 + 2 * req.handoff) / max(1, scale))
        bg = np.stack([yy / h, 0.3 + 0.2 * xx / w, 1 - yy / h], -1) * 0.6
        fg = hue[None, None, :] * (0.6 + 0.4 * stripes[..., None])
        out[i] = bg * (1 - disc[..., None]) + fg * disc[..., None]
    mean = out.mean(axis=(1, 2), keepdims=True)
    out = mean + (out - mean) * sharpness
    return np.ascontiguousarray((np.clip(out, 0, 1) * 255).astype(np.uint8))


class FakeEngine:
    """Mimics engine.jobs.Engine's public API. Knobs: `step_delay` (s per step), `fail_next` ((message, type)
    makes the next render fail), `summary` (what ModelsLoaded reports), `plan_text`."""

    def __init__(self, spec=None, *, on_event=None, step_delay: float = 0.02, summary: dict | None = None,
                 load_delay: float = 0.05, **_ignored):
        self._spec = spec
        self._on_event = on_event
        self.step_delay = step_delay
        self.load_delay = load_delay
        self.summary = dict(DEFAULT_SUMMARY if summary is None else summary)
        self.fail_next: tuple[str, str] | None = None
        self.load_error: tuple[str, str] | None = None
        self.plan_text = "1. a disc appears on the left\n2. it rolls to the right"
        self.submitted: list = []  # every request submitted, in order (tests read it)
        self.handles: list[JobHandle] = []  # every job ever queued, with its final state
        self.loaded = False
        self._cache: dict = {}
        self._ids = itertools.count(1)
        self._jobs: deque[JobHandle] = deque()
        self._running: JobHandle | None = None
        self._lock = threading.Condition()
        self._stopping = False
        self._worker = threading.Thread(target=self._work, name="fake-engine", daemon=True)
        self._worker.start()

    # -- public API, as engine.jobs.Engine --
    def load(self, spec=None, on_event=None):
        return self._enqueue("load", spec, on_event)

    def submit(self, request, *, cancel_running=False, on_event=None, replace_pending=False):
        request = check_request(request)
        self.submitted.append(request)
        if replace_pending:
            self._drop_pending("render")
        handle = self._enqueue("render", request, on_event)
        if cancel_running:
            with self._lock:
                running = self._running
            if running is not None and running.kind == "render" and running is not handle:
                running.cancel_flag.set()
        return handle

    def submit_plan(self, instruction, on_event=None):
        return self._enqueue("plan", instruction, on_event)

    def cancel(self, job=None) -> bool:
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

    def cancel_all(self):
        self._drop_pending(None)
        self.cancel(None)

    def pending(self):
        with self._lock:
            return list(self._jobs)

    @property
    def running(self):
        with self._lock:
            return self._running

    def wait_idle(self, timeout=None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._jobs or self._running is not None:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._lock.wait(remaining)
        return True

    def shutdown(self, wait=True, timeout=30.0):
        with self._lock:
            self._stopping = True
            self._jobs.clear()
            if self._running is not None:
                self._running.cancel_flag.set()
            self._lock.notify_all()
        if wait:
            self._worker.join(timeout)

    # -- internals --
    def _enqueue(self, kind, payload, on_event):
        with self._lock:
            handle = JobHandle(next(self._ids), kind, payload, sink=on_event)
            self.handles.append(handle)
            self._jobs.append(handle)
            position = len(self._jobs) - 1 + (self._running is not None)
            self._lock.notify_all()
        self._emit(handle, Queued(handle.id, position))
        return handle

    def _drop_pending(self, kind):
        with self._lock:
            dropped = [j for j in self._jobs if kind is None or j.kind == kind]
            for job in dropped:
                self._jobs.remove(job)
                job.state = "cancelled"
        for job in dropped:
            self._emit(job, Cancelled(job.id, None))

    def _emit(self, job, event):
        sink = job.sink or self._on_event
        if sink is not None:
            sink(event)

    def _work(self):
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

    def _load(self, job):
        for i in range(3):
            time.sleep(self.load_delay)
            self._emit(job, LoadProgress(job.id, ("text encoder", "light generator", "heavy generator")[i], (i + 1) / 3))
        if self.load_error is not None:
            message, kind = self.load_error
            self.load_error = None
            raise _Fail(message, kind)
        self.loaded = True
        self._emit(job, ModelsLoaded(job.id, dict(self.summary)))

    def _run(self, job):
        self._emit(job, Started(job.id, job.kind))
        try:
            if job.kind == "load":
                self._load(job)
                job.state = "done"
                return
            if not self.loaded:
                self._load(job)
            if job.kind == "plan":
                plan = self.plan_text if self.summary.get("has_understanding") else None
                job.state = "done"
                self._emit(job, PlanReady(job.id, job.payload, plan))
                return
            req = job.payload
            key = repr((req.to_dict(), self.summary.get("light"), self.summary.get("heavy")))
            if key in self._cache:
                take = self._cache[key]
                take = Take(take.request, take.frames, take.fps, take.metadata, 0.0, from_cache=True)
            else:
                take = self._render(job, req)
                self._cache[key] = take
            job.state = "done"
            if req.is_draft:
                self._emit(job, DraftReady(job.id, take))
            self._emit(job, Done(job.id, take))
        except _Cancel as stop:
            job.state = "cancelled"
            self._emit(job, Cancelled(job.id, stop.at_step))
        except _Fail as fail:
            job.state = "failed"
            self._emit(job, Failed(job.id, fail.message, fail.kind, "scripted failure"))

    def _render(self, job, req):
        t0 = time.monotonic()
        gamma_w = math.inf if req.is_draft else handoff_to_gamma_w(req.handoff)
        lead = req.steps if req.is_draft else max(1, round(req.steps * (1 - req.handoff)))
        for i in range(req.steps):
            if job.cancel_flag.is_set():
                raise _Cancel(i)
            if self.fail_next is not None:
                message, kind = self.fail_next
                self.fail_next = None
                raise _Fail(message, kind)
            time.sleep(self.step_delay)
            frac = (i + 1) / req.steps
            preview = synthetic_frames(req, sharpness=frac ** 2, scale=8) if req.width >= 16 else None
            phase = "draft" if req.is_draft else ("light lead" if i < req.upfb.light_lead else "bridging")
            w_t = 1.0 if req.is_draft or i < lead else 0.2
            self._emit(job, StepEvent(job.id, i + 1, req.steps, phase, w_t, 1000 * (1 - frac),
                                      time.monotonic() - t0, preview))
        if job.cancel_flag.is_set():
            raise _Cancel(req.steps)
        frames = synthetic_frames(req)
        fps = int(self.summary.get("defaults", {}).get("fps", 16))
        meta = {"request": req.to_dict(), "gamma_w": None if gamma_w == math.inf else gamma_w,
                "models": {"light": self.summary.get("light"), "heavy": self.summary.get("heavy")}, "app": "fake-engine"}
        return Take(req, frames, fps, meta, time.monotonic() - t0)


class _Cancel(Exception):
    def __init__(self, at_step):
        self.at_step = at_step


class _Fail(Exception):
    def __init__(self, message, kind):
        self.message, self.kind = message, kind
