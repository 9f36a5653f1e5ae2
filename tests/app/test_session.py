"""app.session without a window: the take lifecycle driven by plain calls, observed through plain callbacks."""

import ast
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from app.project import Project
from app.session import Session, take_key
from engine.api import RenderRequest


class View:
    def __init__(self):
        self.shown, self.told, self.saves = [], [], 0

    def show_take(self, take_id):
        self.shown.append(take_id)

    def tell(self, text, level, action_text=None, action=None):
        self.told.append((level, text))

    def status(self, text, ms=0):
        pass

    def save_soon(self):
        self.saves += 1

    def save_other(self, project):
        pass

    def jobs_changed(self):
        pass

    def submitted(self):
        pass

    def choose_models(self):
        pass


class Engine:
    def __init__(self):
        self.submitted, self.cancelled = [], []

    def submit(self, req):
        self.submitted.append(req)
        return SimpleNamespace(id=len(self.submitted), state="queued")

    def cancel(self, job_id):
        self.cancelled.append(job_id)


def _take(req):
    return SimpleNamespace(request=req, frames=np.zeros((5, 32, 32, 3), np.uint8), fps=16, metadata={}, elapsed=0.1)


def test_draft_refine_reuse_and_stale_refines(tmp_path):
    view, engine = View(), Engine()
    session = Session(view, lambda: engine, lambda: False)
    session.open(Project(folder=tmp_path))
    req = session.draft(RenderRequest(prompt="a red ball", steps=4, num_frames=5, width=32, height=32, seed=3))
    assert req is not None and session.watch_job == 1
    assert session.project.queue[0]["key"] == take_key(req)  # persisted until it ends
    done = session.on_finished(1, _take(req))
    assert done.new and done.watched and session.watch_job is None
    assert session.project.base_draft == done.record.id and done.record.is_draft and session.project.queue == []
    panel = {"upfb": req.upfb, "guidance_heavy": 5.0}
    session.refine(0.5, panel)
    refine = engine.submitted[-1]
    assert refine.handoff == 0.5 and not refine.is_draft and session.jobs[2].base_id == done.record.id
    session.refine(0.7, panel)  # the slider moved on: the refine at 50 % is stale
    assert engine.cancelled == [2] and engine.submitted[-1].handoff == 0.7
    session.refine(0.0, panel)  # back at the draft: shown, nothing rendered
    assert view.shown[-1] == done.record.id and len(engine.submitted) == 3
    again = session.draft(RenderRequest(prompt="a red ball", steps=4, num_frames=5, width=32, height=32, seed=3))
    assert again == req and len(engine.submitted) == 3 and view.shown[-1] == done.record.id  # the same take


def test_a_bad_request_is_told_not_raised(tmp_path):
    view = View()
    session = Session(view, lambda: Engine(), lambda: False)
    session.open(Project(folder=tmp_path))
    assert session.draft(RenderRequest(prompt="x", steps=0)) is None
    assert view.told and view.told[-1][0] == "error" and "steps" in view.told[-1][1]


def test_the_session_and_gate_view_do_not_import_qt():
    root = Path(__file__).resolve().parents[2] / "app"
    for name in ("session.py", "gate_view.py", "plan_state.py", "project.py"):
        tree = ast.parse((root / name).read_text(encoding="utf-8"))
        modules = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        modules += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not any(m.startswith(("PySide6", "shiboken6")) for m in modules), name
