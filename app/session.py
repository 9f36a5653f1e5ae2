"""The studio session, without Qt: the open project, its jobs and takes, and their lifecycle.

The window owns one Session. It forwards user intents (draft, refine at s, resume the queue, cancel, show, delete)
and engine events (delivered on the GUI thread by app.bridge) to it; the session changes the project and the jobs
table and tells the window what to draw through the plain callbacks of `SessionView`. Nothing here imports Qt, so
the lifecycle reads (and can be tested) without a window.

A request is checked once (engine.api.check_request) where it enters the session; after that it and its key are
trusted. A take's identity is `take_key`: the one place to change it.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from engine.api import RenderRequest, RequestError, check_request, take_identity

from . import project as proj
from .plan_state import PlanState
from .project import Project, TakeRecord

log = logging.getLogger(__name__)

FRAME_CACHE_BYTES = 1_500_000_000
ACTIVE = ("queued", "running")


def take_key(req: RenderRequest) -> str:
    """Identity of a take (the engine's: a digest of every field of the checked request). The one use in the app."""
    return take_identity(req)


def take_models(metadata: dict) -> tuple | None:
    """(light, heavy, LoRAs) that made a take, from its metadata, if it records its models."""
    m = metadata.get("models") if isinstance(metadata, dict) else None
    return (m.get("light"), m.get("heavy"), lora_identity(metadata.get("loras"))) if isinstance(m, dict) else None


def lora_identity(loras) -> str:
    """The LoRAs part of a take's models ({"light": [{"sha256", "scale", ...}], "heavy": [...]}, as the engine
    records them and reports them when it loads): "" for none, also for takes from before LoRAs."""
    if not isinstance(loras, dict):
        return ""
    parts = []
    for role in ("light", "heavy"):
        records = loras.get(role)
        for r in records if isinstance(records, list) else ():
            if isinstance(r, dict):
                parts.append(f"{role}:{r.get('sha256')}:{r.get('scale')}")
    return "|".join(parts)


@dataclass
class JobInfo:
    id: int
    kind: str  # "load", "draft", "refine", "plan"
    label: str
    state: str = "queued"
    key: str | None = None
    base_id: str | None = None
    step: int = 0
    total: int = 0
    project: object = None  # the Project it was submitted in (its take goes there even if another is open)
    live_from: tuple[int, float] | None = None  # (step, elapsed) at the end of the first computed step


def remaining_seconds(job: JobInfo, ev) -> float:
    """Seconds left, from the pace of the steps actually computed: steps resumed from the draft cache come back
    almost free, and the first computed step also carries the conditioning. Until a second computed step
    arrives, elapsed / step is all there is."""
    left = ev.total - ev.step
    if job.live_from is not None and ev.step > job.live_from[0]:
        s0, e0 = job.live_from
        return (ev.elapsed - e0) / (ev.step - s0) * left
    return ev.elapsed / max(1, ev.step) * left


class FrameCache(OrderedDict):
    """Decoded frames of recent takes by take id, least recently used first; kept under a byte budget."""

    def __init__(self, budget: int = FRAME_CACHE_BYTES):
        super().__init__()
        self.budget = budget

    def keep(self, take_id: str, frames: np.ndarray) -> None:
        self[take_id] = frames
        self.move_to_end(take_id)
        while sum(f.nbytes for f in self.values()) > self.budget and len(self) > 2:
            self.popitem(last=False)


@dataclass
class Finished:
    """What a finished render changed: its record, the project it went to, whether it is new and on screen."""

    job: JobInfo
    record: TakeRecord
    project: Project
    new: bool
    watched: bool


class SessionView(Protocol):
    """The callbacks a session calls on its window (all on the GUI thread)."""

    def show_take(self, take_id: str) -> None: ...
    def tell(self, text: str, level: str, action_text: str | None = None, action: Callable | None = None) -> None: ...
    def status(self, text: str, ms: int = 0) -> None: ...
    def save_soon(self) -> None: ...
    def save_other(self, project: Project) -> None: ...  # a project that is not open any more
    def jobs_changed(self) -> None: ...
    def submitted(self) -> None: ...
    def choose_models(self) -> None: ...


class Session:
    """The open project, the jobs table and which job the player follows (`watch_job`)."""

    def __init__(self, view: SessionView, engine: Callable[[], object], starting: Callable[[], bool]):
        self.view = view
        self._engine, self._starting = engine, starting
        self.project: Project | None = None
        self.jobs: dict[int, JobInfo] = {}
        self.watch_job: int | None = None
        self.summary: dict | None = None  # the loaded models' summary (None until loaded)
        self.plan_state = PlanState()
        self.frames = FrameCache()
        self.closing = False  # jobs cancelled by the shutdown stay in the project's queue for next time
        self._deferred: list[Callable[[], None]] = []  # intents that arrived while the engine was starting
        self._keys: dict[str, str] = {}  # take id → take_key of its stored request

    @property
    def engine(self):
        return self._engine()

    def open(self, project: Project) -> None:
        """Make `project` the open one (the caller closes the old one)."""
        self.project = project
        self.frames.clear()
        self._keys.clear()
        self.plan_state = PlanState(project.plan, project.plan_instruction, project.plan_edited)
        self.watch_job = None  # a job still streaming belongs to the project it was started in

    # -- takes
    def take(self, take_id: str | None) -> TakeRecord | None:
        return self.project.take(take_id)

    def current(self) -> TakeRecord | None:
        return self.project.take(self.project.current_take)

    def base(self) -> TakeRecord | None:
        """The draft the slider refines."""
        return self.project.take(self.project.base_draft)

    def models(self) -> tuple | None:
        s = self.summary
        return (s.get("light"), s.get("heavy"), lora_identity(s.get("loras"))) if s else None

    def key_of(self, record: TakeRecord) -> str | None:
        """The take_key of a stored take (checked once, then remembered); None when its request is unusable."""
        key = self._keys.get(record.id)
        if key is None:
            try:
                key = self._keys[record.id] = take_key(check_request(RenderRequest.from_dict(record.request)))
            except RequestError:
                return None
        return key

    def take_by_key(self, key: str, models: tuple | None = None) -> TakeRecord | None:
        """The take made from exactly this request (and, when `models` is given, by these models)."""
        for t in self.project.takes:
            made_by = take_models(t.metadata)
            if models is not None and made_by is not None and made_by != models:
                continue
            if self.key_of(t) == key:
                return t
        return None

    def select(self, take_id: str) -> TakeRecord | None:
        """Make the take current; a draft (or a refine's draft) becomes what the slider refines."""
        t = self.project.take(take_id)
        if t is None:
            return None
        self.project.current_take = t.id
        if t.is_draft:
            self.project.base_draft = t.id
        elif t.base_id and self.project.take(t.base_id):
            self.project.base_draft = t.base_id
        return t

    def delete(self, take_id: str) -> TakeRecord | None:
        """Remove the take (and its files). Returns the take to show instead when the shown one went, else None."""
        if self.project.remove_take(take_id) is None:
            return None
        self.frames.pop(take_id, None)
        if self.project.current_take is not None:
            return None
        # The take on screen is gone: its draft (a refine's) or the newest take left.
        return self.base() or (self.project.takes[-1] if self.project.takes else None)

    def rendered_handoffs(self, base: TakeRecord) -> set[float]:
        return {t.handoff for t in self.project.takes if t.base_id == base.id and not t.is_draft} | {0.0}

    # -- intents
    def draft(self, req: RenderRequest) -> RenderRequest | None:
        """Render `req` (built from the panel, not yet checked) as a draft. Returns it checked, or None."""
        try:
            req = check_request(req)
        except RequestError as exc:
            self.view.tell(f"Cannot draft: {exc}.", "error")
            return None
        self.submit(req, "draft", f"Draft · seed {req.seed}")
        return req

    @staticmethod
    def refine_request(base: TakeRecord, s: float, panel: dict) -> RenderRequest:
        """The draft's own request at hand-off s. UPFB knobs and the heavy guidance do not change the draft, so
        they follow the panel's request fields."""
        req = RenderRequest.from_dict(base.request)
        return req.replace(mode="upfb", handoff=round(s, 4), gamma_w=None, upfb=panel["upfb"],
                           guidance_heavy=panel["guidance_heavy"])

    def refine(self, s: float, panel: dict) -> None:
        """The slider rested at s: show the take if rendered, else (re)start a refine of the current draft."""
        base = self.base()
        if base is None:
            return
        req = key = None
        if s > 0.0:
            try:
                req = check_request(self.refine_request(base, s, panel))
            except RequestError as exc:
                self.view.tell(f"Cannot refine: {exc}.", "error")
                return
            key = take_key(req)
        # A refine still running for another value is now stale: cancel it (and any queued ones).
        for job in list(self.jobs.values()):
            if job.kind == "refine" and job.key != key and job.state in ACTIVE and self.engine:
                self.engine.cancel(job.id)
        if req is None:  # back at 0 %: the draft itself
            self.watch_job = None
            self.view.show_take(base.id)
            return
        self.submit(req, "refine", f"Refine {round(s * 100)} % · seed {req.seed}", base.id, key)

    def render(self, req: RenderRequest) -> None:
        """Render exactly `req` (drop-to-reproduce): a draft, or a refine of the draft already in the project."""
        try:
            req = check_request(req)
            draft = None if req.is_draft else take_key(check_request(req.replace(handoff=0.0, gamma_w=None,
                                                                                 mode="upfb")))
        except RequestError as exc:  # said in the banner (whose button was just pressed), never raised
            self.view.tell(f"Cannot render it: {exc}.", "error")
            return
        if draft is None:
            self.submit(req, "draft", f"Draft · seed {req.seed}")
        else:
            base = self.take_by_key(draft, self.models())
            self.submit(req, "refine", f"Refine {round(req.handoff * 100)} % · seed {req.seed}",
                        base.id if base else None)

    def submit(self, req: RenderRequest, kind: str, label: str, base_id: str | None = None,
               key: str | None = None) -> None:
        """Queue a checked request, unless its take exists (shown at once) or the same render is queued."""
        key = key or take_key(req)
        existing = self.take_by_key(key, self.models())
        if existing is not None:
            self.watch_job = None  # whatever still runs must not take the player away from this take
            self.view.show_take(existing.id)
            self.view.status("Already rendered: shown at once.", 3000)
            return
        for job in self.jobs.values():
            if job.key == key and job.state in ACTIVE:
                self.watch_job = job.id
                return
        engine = self.engine
        if engine is None and self._starting():
            self._deferred.append(lambda: self.submit(req, kind, label, base_id, key))
            self.view.status("The engine is starting; the job will be queued in a moment.", 4000)
            return
        if engine is None:
            self.view.tell("The engine is not running, so nothing can be rendered. Choose models in Models ▸ "
                           "Choose models….", "error", "Choose models…", self.view.choose_models)
            return
        try:
            handle = engine.submit(req)
        except RequestError as exc:
            self.view.tell(f"Cannot render: {exc}.", "error")
            return
        except Exception as exc:
            self.view.tell(f"The engine refused the job: {exc}", "error")
            return
        info = self.jobs.get(handle.id) or JobInfo(handle.id, kind, label)
        info.kind, info.label, info.key, info.base_id = kind, label, key, base_id
        info.project = self.project
        if handle.state != "queued" and info.state == "queued":
            info.state = handle.state
        self.jobs[handle.id] = info
        self.watch_job = handle.id
        if not any(q.get("key") == key for q in self.project.queue):
            self.project.queue.append({"key": key, "request": req.to_dict(), "kind": kind, "label": label,
                                       "base_id": base_id})
            self.view.save_soon()
        self.view.submitted()
        self.view.jobs_changed()

    def resume_queue(self) -> None:
        """Submit again the renders that were queued or running when the project was last saved."""
        entries, self.project.queue = self.project.queue, []
        for e in entries:
            try:
                req = check_request(RenderRequest.from_dict(e["request"]))
            except RequestError as exc:
                log.warning("dropping an unreadable queued render: %s", exc)
                continue
            self.submit(req, e.get("kind", "draft"), e.get("label", "Render"), e.get("base_id"))
        self.view.save_soon()

    def engine_ready(self) -> None:
        deferred, self._deferred = self._deferred, []
        for call in deferred:
            call()

    def engine_failed(self) -> None:
        self._deferred = []

    def track(self, handle, kind: str, label: str) -> None:
        """A job submitted outside `submit` (a plan, a model load)."""
        self.jobs[handle.id] = JobInfo(handle.id, kind, label, state=handle.state)
        self.view.jobs_changed()

    def cancel(self, job_id: int | None = None) -> None:
        """Cancel one job (None: the running one)."""
        if self.engine is not None:
            self.engine.cancel(job_id)

    def cancel_all(self) -> None:
        if self.engine is not None:
            self.engine.cancel_all()

    # -- engine events (GUI thread)
    def on_queued(self, job_id: int) -> None:
        if job_id not in self.jobs:
            self.jobs[job_id] = JobInfo(job_id, "load", "Load models")
        self.view.jobs_changed()

    def on_started(self, job_id: int, kind: str) -> JobInfo:
        job = self.jobs.setdefault(job_id, JobInfo(job_id, kind, kind.capitalize()))
        job.state = "running"
        self.view.jobs_changed()
        return job

    def on_models_loaded(self, job_id: int, summary: dict) -> None:
        job = self.jobs.get(job_id)
        if job is not None and job.kind == "load":
            del self.jobs[job_id]
        self.summary = dict(summary)
        self.view.jobs_changed()

    def on_step(self, ev) -> JobInfo | None:
        """A step of an active job: its progress, or None when the job is not active any more."""
        job = self.jobs.get(ev.job_id)
        if job is None or job.state not in ACTIVE:
            return None
        job.step, job.total, job.state = ev.step, ev.total, "running"
        if not ev.from_cache and job.live_from is None:
            job.live_from = (ev.step, ev.elapsed)  # the pace is measured from the end of this step on
        self.view.jobs_changed()
        return job

    def on_finished(self, job_id: int, take) -> Finished:
        """Keep a finished render as a take of the project it was submitted in (reusing an identical one)."""
        job = self.end(job_id) or JobInfo(job_id, "draft", "Take")
        req = take.request
        if job.project is not None and job.project is not self.project:
            # Submitted in a project that is no longer open: the take still belongs there.
            record = self._new_record(take, job)
            job.project.add_take(record)
            return Finished(job, record, job.project, True, False)
        record = self.take_by_key(take_key(req), take_models(take.metadata))
        new = record is None
        if new:
            record = self._new_record(take, job)
            self.project.add_take(record)
        self.frames.keep(record.id, take.frames)
        watched = job_id == self.watch_job
        if watched:
            self.watch_job = None
            if req.is_draft:
                self.project.base_draft = record.id
        return Finished(job, record, self.project, new, watched)

    @staticmethod
    def _new_record(take, job: JobInfo) -> TakeRecord:
        req = take.request
        return TakeRecord(id=proj.new_take_id(), request=req.to_dict(), created=time.time(),
                          elapsed=float(take.elapsed), fps=int(take.fps), num_frames=int(len(take.frames)),
                          width=int(take.frames.shape[2]), height=int(take.frames.shape[1]),
                          metadata=dict(take.metadata), base_id=None if req.is_draft else job.base_id)

    def end(self, job_id: int) -> JobInfo | None:
        """A job ended (finished, failed, cancelled): out of the table and of the project's saved queue."""
        job = self.jobs.pop(job_id, None)
        if job is not None and job.key is not None and not self.closing:
            project = job.project or self.project
            before = len(project.queue)
            project.queue = [q for q in project.queue if q.get("key") != job.key]
            if len(project.queue) != before:
                if project is self.project:
                    self.view.save_soon()
                else:
                    self.view.save_other(project)
        return job

    def stop_watching(self, job_id: int) -> bool:
        """True when the player was following this job (it follows none from now on)."""
        if job_id != self.watch_job:
            return False
        self.watch_job = None
        return True

    def rendering(self) -> bool:
        """A draft or refine is queued or running (the Cancel button is live)."""
        return any(j.kind in ("draft", "refine") and j.state in ACTIVE for j in self.jobs.values())

    def queue_rows(self) -> list[tuple[int, str, str]]:
        """(id, text, state) of the active jobs, the running one first."""
        return [(j.id, j.label if j.state != "running" or not j.total else f"{j.label} ({j.step}/{j.total})",
                 j.state)
                for j in sorted(self.jobs.values(), key=lambda j: (j.state != "running", j.id)) if j.state in ACTIVE]
