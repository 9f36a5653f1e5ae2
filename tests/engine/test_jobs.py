"""The Engine object: queue order, cancel within one step, errors as events, a worker that survives."""

import threading
import time

import pytest

from engine.api import (
    Cancelled,
    DraftReady,
    Done,
    Engine,
    Failed,
    ModelSpec,
    ModelsLoaded,
    RenderRequest,
    RequestError,
    StepEvent,
)


class Recorder:
    def __init__(self):
        self.events = []
        self.lock = threading.Lock()

    def __call__(self, event):
        with self.lock:
            self.events.append(event)

    def of(self, job_id, kind=None):
        with self.lock:
            return [e for e in self.events if e.job_id == job_id and (kind is None or isinstance(e, kind))]

    def wait_for(self, job_id, kinds, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [e for e in self.of(job_id) if isinstance(e, kinds)]
            if found:
                return found[0]
            time.sleep(0.01)
        raise AssertionError(f"no {kinds} for job {job_id}")


@pytest.fixture(scope="module")
def engine(tiny_spec):
    rec = Recorder()
    eng = Engine(tiny_spec, on_event=rec, cache_bytes=32 << 20)
    job = eng.load()
    rec.wait_for(job.id, (ModelsLoaded, Failed))
    eng.recorder = rec
    yield eng
    eng.shutdown()


def _req(**kw):
    base = dict(prompt="a blue square moves up", steps=5, num_frames=5, width=32, height=32, seed=1)
    base.update(kw)
    return RenderRequest(**base)


def test_draft_streams_steps_then_draft_ready_and_done(engine):
    rec = engine.recorder
    job = engine.submit(_req(handoff=0.0, seed=11))
    done = rec.wait_for(job.id, (Done, Failed))
    assert isinstance(done, Done), done
    steps = rec.of(job.id, StepEvent)
    assert [e.step for e in steps] == [1, 2, 3, 4, 5]
    assert all(e.total == 5 and e.phase == "draft" and e.w_t == 1.0 for e in steps)
    assert steps[0].preview.shape == (2, 4, 4, 3) and steps[0].preview.dtype.name == "uint8"
    assert len(rec.of(job.id, DraftReady)) == 1
    assert done.take.frames.shape == (5, 32, 32, 3)


def test_cancel_stops_within_one_step_and_next_job_runs(engine):
    rec = engine.recorder
    gate = threading.Event()

    def slow_listener(event):  # hold the worker at step 2 so the cancel lands mid-run
        rec(event)
        if isinstance(event, StepEvent) and event.step == 2:
            gate.wait(5)

    job = engine.submit(_req(steps=40, seed=12, mode="upfb", handoff=0.5), on_event=slow_listener)
    deadline = time.monotonic() + 60
    while not any(e.step == 2 for e in rec.of(job.id, StepEvent)) and time.monotonic() < deadline:
        time.sleep(0.005)
    engine.cancel(job)
    gate.set()
    cancelled = rec.wait_for(job.id, (Cancelled, Done, Failed))
    assert isinstance(cancelled, Cancelled)
    assert cancelled.at_step is not None and cancelled.at_step <= 3
    assert max(e.step for e in rec.of(job.id, StepEvent)) <= 3
    assert not rec.of(job.id, Done)
    nxt = engine.submit(_req(seed=13))
    assert isinstance(rec.wait_for(nxt.id, (Done, Failed)), Done)


def test_jobs_run_in_order_and_pending_can_be_cancelled(engine):
    rec = engine.recorder
    first = engine.submit(_req(seed=21, steps=8))
    second = engine.submit(_req(seed=22))
    third = engine.submit(_req(seed=23))
    assert engine.cancel(third)
    for job in (first, second):
        assert isinstance(rec.wait_for(job.id, (Done, Failed)), Done)
    assert isinstance(rec.wait_for(third.id, (Cancelled,)), Cancelled)
    started = [e.job_id for e in rec.events if type(e).__name__ == "Started"]
    assert started.index(first.id) < started.index(second.id) and third.id not in started


def test_cancel_running_on_submit_replaces_the_refine(engine):
    rec = engine.recorder
    old = engine.submit(_req(seed=31, steps=40, handoff=0.3))
    rec.wait_for(old.id, (StepEvent,))
    new = engine.submit(_req(seed=31, steps=5, handoff=0.8), cancel_running=True)
    assert isinstance(rec.wait_for(old.id, (Cancelled, Done)), Cancelled)
    assert isinstance(rec.wait_for(new.id, (Done, Failed)), Done)


def test_bad_request_raises_at_the_door(engine):
    with pytest.raises(RequestError, match="multiple of 16"):
        engine.submit(_req(width=30))
    with pytest.raises(RequestError, match="prompt"):
        engine.submit(_req(prompt="   "))


def test_failures_become_events_and_the_worker_lives(tmp_path):
    rec = Recorder()
    eng = Engine(ModelSpec(light=str(tmp_path / "nowhere"), heavy=str(tmp_path / "nowhere")), on_event=rec)
    try:
        job = eng.submit(_req())
        failed = rec.wait_for(job.id, (Failed, Done))
        assert isinstance(failed, Failed) and failed.error_type == "ModelError"
        assert "not found" in failed.message and "Traceback" not in failed.message
        again = eng.submit(_req())
        assert isinstance(rec.wait_for(again.id, (Failed, Done)), Failed)
    finally:
        eng.shutdown()
