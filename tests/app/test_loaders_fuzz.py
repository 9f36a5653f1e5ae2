"""Property-based tests (hypothesis): random JSON fed to the project, settings and MP4-metadata loaders, used as the
app uses them. Properties: no exception other than the project's own error types (ProjectError, RequestError), and
no file touched outside the project (or the settings) folder.

Documents are drawn both fully at random and shaped like ours (the known keys, each holding a good value or random
JSON, hostile paths among them), so that the checks deep inside take records and requests are reached too.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import schema
from app.project import Project, Settings
from app.project_open import open_project, restore_from_metadata
from engine.api import ProjectError, RenderRequest, RequestError, check_request

ABS = "@ABSOLUTE@"  # replaced by an absolute path outside the project, per example
FUZZ = settings(max_examples=300, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large, HealthCheck.large_base_example])

GOOD_REQUEST = RenderRequest("a red ball rolls right", width=64, height=64, num_frames=9, steps=6).to_dict()
PATHS = ["../victim.txt", f"{ABS}", "takes/../../victim.txt", "takes/link.mp4", "takes/x.mp4", "takes/x.png",
         "project.json", "takes/.hidden.mp4", "takes\\x.mp4", "C:/x.mp4", "takes/", "", "takes/x.mp4\x00"]
scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=20) | st.sampled_from(PATHS + ["\ud800", "x" * 3000, "t1", "upfb", "unipc", "light"]))
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c,
                                                                                       max_size=4), max_leaves=12)


def mutated(good: dict, values=json_values, keys=None):
    """`good` with up to three keys set to other values (random JSON, hostile paths) and up to two left out."""
    keys = sorted(keys or good)
    return st.builds(lambda changes, dropped: {k: v for k, v in {**good, **dict(changes)}.items() if k not in dropped},
                     st.lists(st.tuples(st.sampled_from(keys), values), max_size=3),
                     st.lists(st.sampled_from(keys), max_size=2))


def good_or_mutated(good: dict, values=json_values):
    return st.one_of(st.just(good), st.just(good), mutated(good, values))


number_ish = json_values | st.integers(-5, 2**40) | st.floats(-1, 1e9) | st.sampled_from(PATHS)
upfb_like = good_or_mutated(GOOD_REQUEST["upfb"], number_ish)
request_like = good_or_mutated(GOOD_REQUEST, number_ish | upfb_like)
GOOD_TAKE = {"id": "t1", "request": GOOD_REQUEST, "file": "takes/x.mp4", "thumbnail": "takes/x.png", "fps": 8,
             "num_frames": 9, "width": 64, "height": 64, "name": "n", "starred": True, "created": 1.0, "elapsed": 1.0,
             "base_id": None, "metadata": {"request": GOOD_REQUEST, "flow_shift": 3.0,
                                           "models": {"light": "l", "heavy": "h"}}}
take_like = st.builds(lambda t, r, i, f, th: {**t, "request": r, "id": i, "file": f, "thumbnail": th},
                      good_or_mutated(GOOD_TAKE, number_ish), request_like,
                      st.sampled_from(["t1", "t2", "t3", "../t", "a/b"]),
                      st.sampled_from(["takes/x.mp4", None] + PATHS), st.sampled_from(["takes/x.png", None] + PATHS))
GOOD_PANEL = {"width": 64, "height": 64, "num_frames": 9, "steps": 6, "guidance_light": 5.0, "guidance_heavy": 5.0,
              "seed": 7, "seed_locked": True, "scheduler": "unipc", "upfb": GOOD_REQUEST["upfb"]}
panel_like = good_or_mutated(GOOD_PANEL, number_ish | upfb_like)
queue_like = st.builds(lambda q, r: {**q, "request": r},
                       good_or_mutated({"key": "k", "kind": "draft", "label": "Draft", "base_id": None}), request_like)
GOOD_PROJECT = {"format": "lumos-studio-project", "version": 1, "name": "p", "prompt": "x", "negative_prompt": "",
                "plan": "", "plan_instruction": None, "plan_edited": False, "use_plan": True, "current_take": "t1",
                "base_draft": "t1", "created": 1.0}
project_like = st.builds(lambda p, takes, queue, panel: {**p, "takes": takes, "queue": queue, "settings": panel},
                         good_or_mutated(GOOD_PROJECT), st.lists(take_like, min_size=1, max_size=4) | json_values,
                         st.lists(queue_like, max_size=3) | json_values, panel_like | json_values)
settings_like = st.builds(lambda s, render: {**s, "render": render},
                          good_or_mutated({k: v for k, v in Settings(last_project="/p", recent_prompts=["a"])
                                           .to_dict().items() if k != "render"}), panel_like | json_values)
metadata_like = st.builds(lambda m, r: {**m, "request": r} if "request" in m else m,
                          good_or_mutated({"request": GOOD_REQUEST, "plan": "1. a plan", "flow_shift": 3.0,
                                           "models": {"light": "l", "heavy": "h"}, "fps": 8, "frames": 9,
                                           "size": [64, 64], "render_seconds": 1.0}),
                          request_like)


def deep(n: int) -> bytes:
    return b'{"format": "lumos-studio-project", "version": 1, "takes": [' + b"[" * n + b"]" * n + b"]}"


raw_extras = st.one_of(st.integers(30, 200_000).map(deep), st.binary(max_size=64),
                       st.just(b'{"format": "lumos-studio-project", "version": 1, "created": 1' + b"0" * 5000 + b"}"))


def encode(doc) -> bytes:
    return doc if isinstance(doc, bytes) else json.dumps(doc, allow_nan=True).encode()


def tree(root: Path, skip=()) -> dict:
    out = {}
    for p in root.rglob("*"):
        if any(p == s or s in p.parents for s in skip):
            continue
        st_ = p.lstat()
        out[str(p)] = (st_.st_size, st_.st_mtime_ns, p.is_dir())
    return out


def hostile_folder(base: Path, raw: bytes) -> tuple[Path, Path]:
    """root/ with files outside the project (victims, a linked file) and root/proj/ holding `raw` as project.json."""
    root = Path(tempfile.mkdtemp(dir=base))
    (root / "victim.txt").write_text("keep")
    (root / "absolute.mp4").write_text("keep")
    (root / "linked.mp4").write_text("keep")
    folder = root / "proj"
    (folder / "takes").mkdir(parents=True)
    (folder / "takes" / "x.mp4").write_bytes(b"x")
    (folder / "takes" / "link.mp4").symlink_to(root / "linked.mp4")
    (folder / "project.json").write_bytes(raw.replace(ABS.encode(), json.dumps(str(root / "absolute.mp4"))[1:-1]
                                                      .encode()))
    return root, folder


COUNTS: dict[str, int] = {}


def use_project_as_the_app_does(p: Project) -> None:
    """What the window does with a loaded project, Qt-free: show takes, build requests, save, copy, delete."""
    schema.PANEL_FIELDS.check(p.settings, "settings")  # exactly what SettingsPanel.set_values may be given
    for t in p.takes:
        p.path_of(t), p.path_of(t, "thumbnail")
        t.label(), t.duration, t.seed, t.is_draft
        check_request(RenderRequest.from_dict(t.request))
    for q in p.queue:
        check_request(RenderRequest.from_dict(q["request"]))
    assert p.current_take is None or p.take(p.current_take) is not None


@pytest.mark.parametrize("source", ["shaped", "random", "raw"])
def test_project_loader_never_raises_nor_touches_outside(tmp_path, source):
    docs = {"shaped": project_like, "random": json_values, "raw": raw_extras}[source]
    COUNTS[f"project/{source}"] = 0

    @FUZZ
    @given(doc=docs)
    def check(doc):
        COUNTS[f"project/{source}"] += 1
        root, folder = hostile_folder(tmp_path, encode(doc))
        outside = tree(root, skip=(folder, root / "copy"))
        try:
            opened = open_project(folder)
        except ProjectError:
            assert tree(root, skip=(folder, root / "copy")) == outside
            shutil.rmtree(root)
            return
        p = opened.project
        try:
            use_project_as_the_app_does(p)
            p.save()
            again = Project.load(folder)  # what was written reads back cleanly
            assert not again.problems and [t.id for t in again.takes] == [t.id for t in p.takes]
            copy = p.save_as(root / "copy")
            use_project_as_the_app_does(copy)
            copy.close()
            for t in list(p.takes):
                p.remove_take(t.id)
            p.save()
        finally:
            p.close()
        assert tree(root, skip=(folder, root / "copy")) == outside
        shutil.rmtree(root)

    check()
    print(f"project loader ({source}): {COUNTS[f'project/{source}']} cases")


@pytest.mark.parametrize("source", ["shaped", "random"])
def test_settings_loader_never_raises_nor_touches_outside(tmp_path, user_dirs, source):
    docs = {"shaped": settings_like, "random": json_values | raw_extras}[source]
    COUNTS[f"settings/{source}"] = 0
    path = Settings.path()
    path.parent.mkdir(parents=True, exist_ok=True)

    @FUZZ
    @given(doc=docs)
    def check(doc):
        COUNTS[f"settings/{source}"] += 1
        for old in path.parent.iterdir():
            old.unlink()
        path.write_bytes(encode(doc))
        outside = tree(tmp_path, skip=(path.parent,))
        s, problem = Settings.load()
        assert isinstance(s, Settings) and (problem is None or isinstance(problem, str))
        values = {k: v for k, v in s.to_dict().items() if k not in ("format", "version")}
        schema.SETTINGS_FIELDS.check(values, "")  # every value in range
        s.save()
        assert Settings.load() == (s, None)  # reported once: the saved file is clean
        assert tree(tmp_path, skip=(path.parent,)) == outside

    check()
    print(f"settings loader ({source}): {COUNTS[f'settings/{source}']} cases")


@pytest.mark.parametrize("source", ["shaped", "random"])
def test_metadata_loader_raises_only_request_errors(source):
    docs = {"shaped": metadata_like, "random": json_values}[source]
    COUNTS[f"metadata/{source}"] = 0

    @FUZZ
    @given(meta=docs)
    def check(meta):
        COUNTS[f"metadata/{source}"] += 1
        try:
            restored = restore_from_metadata(meta)
        except RequestError:
            return
        assert check_request(restored.request) == restored.request
        schema.PANEL_FIELDS.check(restored.panel, "settings")
        assert restored.plan is None or isinstance(restored.plan, str)

    check()
    print(f"metadata loader ({source}): {COUNTS[f'metadata/{source}']} cases")


def test_the_window_takes_random_projects_and_metadata(make_window, qtbot, tmp_path):
    """The same documents through the live window (fewer cases: each opens a project in the window)."""
    win = make_window()
    COUNTS["window"] = 0

    @settings(FUZZ, max_examples=40)
    @given(doc=project_like | raw_extras, meta=metadata_like)
    def check(doc, meta):
        COUNTS["window"] += 1
        root, folder = hostile_folder(tmp_path, encode(doc))
        outside = tree(root, skip=(folder,))
        win.open_project(folder)
        win._apply_metadata("dropped.mp4", meta)
        assert win.banner.level in ("info", "warning", "error")
        for t in list(win.project.takes):
            win.delete_take(t.id)
        win.save_project(sync=True)
        win.new_project()  # lets go of the folder
        assert tree(root, skip=(folder,)) == outside

    check()
    print(f"window: {COUNTS['window']} cases")


def test_the_window_starts_on_random_settings(make_window, qtbot, tmp_path, user_dirs):
    """Random settings files (last_project among them, pointing at random projects) at startup: the window always
    starts, and a problem is told in its banner (fewer cases: each starts a window)."""
    COUNTS["window settings"] = 0
    path = Settings.path()
    path.parent.mkdir(parents=True, exist_ok=True)

    @settings(FUZZ, max_examples=25)
    @given(doc=settings_like | json_values, project=project_like | raw_extras)
    def check(doc, project):
        COUNTS["window settings"] += 1
        root, folder = hostile_folder(tmp_path, encode(project))
        outside = tree(root, skip=(folder,))
        if isinstance(doc, dict) and "last_project" in doc:
            doc = {**doc, "last_project": str(folder)}
        for old in path.parent.iterdir():
            old.unlink()
        path.write_bytes(encode(doc))
        win = make_window()
        assert win.project is not None
        win.close()
        assert tree(root, skip=(folder,)) == outside
        assert Settings.load()[1] is None  # told once: what the window saved reads back cleanly

    check()
    print(f"window settings: {COUNTS['window settings']} cases")
