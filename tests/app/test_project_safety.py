"""Issue 19, app side: project files that cannot hurt (1), wrong types never crash (2), one writer per project (5),
no leftovers of a crash (6), crafted MP4 drops explained (7), tests never touch the real user's folders (10)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from app import project as proj
from app import settings as app_settings
from app.project import PROJECT_FILE, Project, Settings
from app.project_lock import LOCK_FILE, ProjectLock, ProjectLocked
from app.project_open import open_project
from engine.api import ProjectError, RenderRequest, export_take
from tests.app.conftest import draft

ROOT = Path(__file__).resolve().parents[2]


def good_request(**changes) -> dict:
    return RenderRequest("a red ball rolls right", width=64, height=64, num_frames=9, steps=6, **changes).to_dict()


def take_doc(take_id: str, **fields) -> dict:
    request = fields.pop("request", None) or good_request()
    return {"id": take_id, "request": request, "fps": 8, "num_frames": 9, "width": 64, "height": 64, **fields}


def project_doc(**fields) -> dict:
    return {"format": "lumos-studio-project", "version": 1, "name": "p", "prompt": "kept prompt", "takes": [],
            **fields}


def write_doc(folder: Path, doc) -> bytes:
    folder.mkdir(parents=True, exist_ok=True)
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    (folder / PROJECT_FILE).write_bytes(raw)
    return raw


def tree(root: Path, skip: tuple[Path, ...] = ()) -> dict:
    """{path: (size, mtime_ns, bytes)} of every file under root, outside `skip`."""
    out = {}
    for p in root.rglob("*"):
        if any(p == s or s in p.parents for s in skip) or p.is_dir():
            continue
        st = p.lstat()
        out[str(p)] = (st.st_size, st.st_mtime_ns, p.read_bytes() if p.is_file() and not p.is_symlink() else None)
    return out


def small_mp4(path: Path, metadata: dict) -> Path:
    frames = np.zeros((5, 16, 16, 3), np.uint8)
    export_take(SimpleNamespace(frames=frames, fps=8, metadata=metadata), path)
    return path


# -- 1. take paths are confined to the project's takes folder ---------------------------------------------------
def hostile_project(tmp_path: Path) -> Path:
    (tmp_path / "victim.txt").write_text("keep me")
    (tmp_path / "absolute.mp4").write_bytes(b"keep me too")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "linked.mp4").write_bytes(b"linked")
    folder = tmp_path / "proj"
    (folder / "takes").mkdir(parents=True)
    (folder / "takes" / "link.mp4").symlink_to(elsewhere / "linked.mp4")
    (folder / "takes" / "good.mp4").write_bytes(b"good")
    write_doc(folder, project_doc(takes=[
        take_doc("a", file="../victim.txt"),
        take_doc("b", file=str(tmp_path / "absolute.mp4")),
        take_doc("c", file="takes/../../victim.txt"),
        take_doc("d", file="takes/link.mp4"),
        take_doc("e", file="takes/good.mp4", thumbnail="../victim.txt"),
        take_doc("f", file="project.json"),
        take_doc("g", file="takes/good.mp4"),
    ]))
    return folder


def test_take_paths_outside_the_project_are_never_touched(tmp_path):
    folder = hostile_project(tmp_path)
    outside = tree(tmp_path, skip=(folder,))
    opened = open_project(folder)
    p = opened.project
    assert [t.id for t in p.takes] == ["g"]
    assert len(p.unreadable_takes) == 6 and "6 take records could not be read" in opened.message
    assert "../victim.txt" in opened.message
    # A path changed in memory after loading is checked again before anything is deleted.
    p.takes[0].file = "../victim.txt"
    assert p.path_of(p.takes[0]) is None
    p.remove_take("g")
    # Save As copies only what is inside the project, and writes only inside its target.
    target = tmp_path / "copy"
    copy = p.save_as(target)
    assert tree(tmp_path, skip=(folder, target)) == outside
    assert (folder / "takes" / "good.mp4").read_bytes() == b"good"
    # The unreadable records travel verbatim with the project file (in the copy, "takes/link.mp4" is no link: that
    # record is read there, and its file, which led out of the first project, was not copied).
    copied = {t["id"]: t for t in json.loads((target / PROJECT_FILE).read_text())["takes"]}
    source = {t["id"]: t for t in json.loads((folder / PROJECT_FILE).read_text())["takes"]}
    assert sorted(copied) == list("abcdef") and all(copied[i] == source[i] for i in "abcef")
    assert copy.take("d") is not None and not (target / "takes" / "link.mp4").exists()
    copy.close()


def test_window_deletes_only_inside_its_project(make_window, qtbot, tmp_path, user_dirs):
    folder = hostile_project(tmp_path)
    outside = tree(tmp_path, skip=(folder, user_dirs))
    win = make_window(project_path=folder)
    assert win.banner.level == "warning" and "could not be read" in win.banner.text.text()
    for t in list(win.project.takes):
        win.delete_take(t.id)
    win.close()
    assert tree(tmp_path, skip=(folder, user_dirs)) == outside  # (user_dirs: the isolated settings)
    kept = json.loads((folder / PROJECT_FILE).read_text())["takes"]
    assert [t["id"] for t in kept] == ["a", "b", "c", "d", "e", "f"]  # never silently dropped


def test_save_as_never_writes_through_a_link_out_of_the_target(tmp_path):
    src = tmp_path / "src"
    (src / "takes").mkdir(parents=True)
    (src / "takes" / "t1.mp4").write_bytes(b"take")
    write_doc(src, project_doc(takes=[take_doc("t1", file="takes/t1.mp4")]))
    trap = tmp_path / "trap"
    trap.mkdir()
    target = tmp_path / "target"
    target.mkdir()
    (target / "takes").symlink_to(trap, target_is_directory=True)
    p = Project.load(src)
    p.save_as(target).close()
    assert list(trap.iterdir()) == []
    # A project whose own takes folder links elsewhere reads none of it.
    assert Project.load(target).takes == [] and len(Project.load(target).unreadable_takes) == 1


# -- 2. wrong types never crash; what fails is reported once and never silently lost ----------------------------
def nested(depth: int) -> bytes:
    return (b'{"format": "lumos-studio-project", "version": 1, "settings": {"x": ' + b"[" * depth + b"]" * depth
            + b"}}")


PARTLY_BAD = {
    "takes is a number": project_doc(takes=5),
    "queue is a number": project_doc(queue=7),
    "current_take is a list": project_doc(current_take=[1]),
    "base_draft is an object": project_doc(base_draft={}),
    "a take's fps is text": project_doc(takes=[take_doc("t1", fps="16")]),
    "a take's handoff is text": project_doc(takes=[take_doc("t1", request=good_request() | {"handoff": "0.3"})]),
    "a take's seed is text": project_doc(takes=[take_doc("t1", request=good_request() | {"seed": "7"})]),
    "a take's id is a number": project_doc(takes=[take_doc("t1") | {"id": 2}]),
    "settings of wrong types": project_doc(settings={"width": "wide", "seed": 2**40, "upfb": 3, "steps": 1.5,
                                                      "guidance_light": 1e308}),
    "queue entries of wrong types": project_doc(queue=[{"request": good_request() | {"steps": "many"}}, 5, None]),
    "created is not a number": project_doc(created="yesterday", name=["x"], use_plan="no"),
}

WHOLLY_BAD = {
    "nested 100000 deep": nested(100_000),
    "nested deeper than the limit": nested(60),
    "a 5000-digit number": b'{"format": "lumos-studio-project", "version": 1, "created": 1' + b"0" * 5000 + b"}",
    "a lone surrogate": b'{"format": "lumos-studio-project", "version": 1, "prompt": "\\ud800"}',
    "a version that is true": b'{"format": "lumos-studio-project", "version": true}',
}


@pytest.mark.parametrize("case", sorted(PARTLY_BAD))
def test_wrong_types_are_reported_and_the_original_kept(make_window, qtbot, tmp_path, case):
    folder = tmp_path / "proj"
    raw = write_doc(folder, PARTLY_BAD[case])
    unreadable = Project.load(folder).unreadable_takes
    win = make_window(project_path=folder)
    assert win.project.folder == folder and win.prompt.text() == "kept prompt"
    text = win.banner.text.text()
    assert win.banner.level == "warning" and "could not be" in text
    kept = sorted(folder.glob(f"{PROJECT_FILE}.damaged-*"))
    if "could not be used" in text:  # a value was replaced: the file as it was is kept aside, and named
        assert len(kept) == 1 and kept[0].read_bytes() == raw and kept[0].name in text
    else:  # only unreadable takes: they stay in project.json as they are, nothing is replaced
        assert kept == []
    win.close()
    # Reported once: the next start finds a clean file (unreadable take records still kept, verbatim).
    again = open_project(folder)
    assert not again.project.problems and again.project.unreadable_takes == unreadable
    again.project.close()


@pytest.mark.parametrize("case", sorted(WHOLLY_BAD))
def test_unusable_project_files_start_a_fresh_project_and_stay_untouched(make_window, qtbot, tmp_path, case):
    folder = tmp_path / "proj"
    raw = write_doc(folder, WHOLLY_BAD[case])
    with pytest.raises(ProjectError):
        Project.load(folder)
    win = make_window(project_path=folder)
    assert win.project.folder != folder and win.banner.level == "error"
    assert "new project was started" in win.banner.text.text()
    win.close()
    assert (folder / PROJECT_FILE).read_bytes() == raw


def test_a_broken_last_project_never_stops_the_app_and_is_reported_once(make_window, qtbot, tmp_path):
    folder = tmp_path / "proj"
    write_doc(folder, nested(100_000))
    settings = Settings(last_project=str(folder))
    settings.save()
    win = make_window()
    assert win.project.folder != folder and "new project was started" in win.banner.text.text()
    win.close()
    win2 = make_window()  # last_project now names the fresh project: nothing to report
    assert win2.banner.level == "" and win2.project.folder == win.project.folder


def test_settings_and_project_problems_share_one_banner(make_window, qtbot, tmp_path):
    folder = tmp_path / "proj"
    write_doc(folder, project_doc(takes=5))
    Settings.path().parent.mkdir(parents=True)
    Settings.path().write_text(json.dumps({"format": "lumos-studio-settings", "last_project": str(folder),
                                           "render": {"seed": -1}, "export_crf": "best"}))
    win = make_window()
    text = win.banner.text.text()
    assert "export_crf" in text and "render.seed" in text and "takes: must be a list" in text
    assert list(Settings.path().parent.glob("settings.json.damaged-*"))


def test_an_unreadable_take_record_survives_autosave_verbatim(make_window, qtbot, tmp_path):
    folder = tmp_path / "proj"
    odd = {"id": 2, "request": {"prompt": 5}, "from": "a future version?"}
    write_doc(folder, project_doc(takes=[odd]))
    win = make_window(project_path=folder)
    t = draft(qtbot, win, "a new take beside it")
    qtbot.waitUntil(lambda: t.file is not None, timeout=10000)
    win.close()
    takes = json.loads((folder / PROJECT_FILE).read_text())["takes"]
    assert odd in takes and t.id in [x.get("id") for x in takes]


# -- 5. one writer per project --------------------------------------------------------------------------------
HOLDER = ("import sys; sys.path.insert(0, sys.argv[2]); from app.project_lock import ProjectLock\n"
          "lock = ProjectLock(sys.argv[1]).acquire(); print('locked', flush=True)\n"
          "if sys.argv[3] == 'kill':\n    import os, signal; os.kill(os.getpid(), signal.SIGKILL)\n"
          "sys.stdin.read()\n")


class Holder:
    """Another process holding a project's lock (until `release`), or killed while holding it."""

    def __init__(self, folder: Path, mode: str = "hold"):
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder), str(ROOT), mode],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.proc.stdout.readline().strip() == "locked"
        if mode == "kill":
            self.proc.wait(timeout=30)

    def release(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


@pytest.fixture(params=["flock", "exclusive-file"])
def lock_mode(request, monkeypatch):
    if request.param == "exclusive-file":
        from app import project_lock

        monkeypatch.setattr(project_lock, "fcntl", None)
    return request.param


def test_a_folder_has_one_lock_at_a_time(tmp_path, lock_mode):
    a, b = ProjectLock(tmp_path / "p"), ProjectLock(tmp_path / "p")
    a.acquire()
    with pytest.raises(ProjectLocked, match=f"process {os.getpid()}"):
        b.acquire()
    a.release()
    assert not (tmp_path / "p" / LOCK_FILE).exists()
    b.acquire()
    assert b.held
    b.release()


def test_a_lock_left_by_a_killed_instance_is_not_held(tmp_path, lock_mode):
    folder = tmp_path / "p"
    folder.mkdir()
    if lock_mode == "flock":
        Holder(folder, "kill")
    else:  # an exclusive lock file naming a process that is gone
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        import socket

        (folder / LOCK_FILE).write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}))
    assert (folder / LOCK_FILE).exists()
    lock = ProjectLock(folder).acquire()
    assert ProjectLock.read_owner(folder).pid == os.getpid()
    lock.release()


def test_a_second_instance_gets_the_project_read_only(tmp_path):
    folder = tmp_path / "proj"
    (folder / "takes").mkdir(parents=True)
    (folder / "takes" / "t1.mp4").write_bytes(b"take")
    raw = write_doc(folder, project_doc(takes=[take_doc("t1", file="takes/t1.mp4")]))
    holder = Holder(folder)
    try:
        opened = open_project(folder)
        p = opened.project
        assert p.read_only and f"process {holder.proc.pid}" in opened.message
        p.prompt = "changed here"
        p.save()
        p.remove_take("t1")
        proj.write_project(p.file, p.to_dict())
        assert (folder / PROJECT_FILE).read_bytes() == raw and (folder / "takes" / "t1.mp4").exists()
    finally:
        holder.release()
    # Once the other instance is gone, the project opens for editing again.
    again = open_project(folder)
    assert not again.project.read_only and again.message is None
    again.project.close()


def test_window_on_a_project_open_elsewhere_offers_a_copy(make_window, qtbot, tmp_path):
    folder = tmp_path / "proj"
    raw = write_doc(folder, project_doc(prompt="shared idea"))
    holder = Holder(folder)
    try:
        win = make_window(project_path=folder)
        assert win.project.read_only and win.banner.action.text() == "Open a copy"
        assert "read-only" in win.banner.text.text()
        t = draft(qtbot, win, "made while read-only")
        win.save_project(sync=True)
        assert (folder / PROJECT_FILE).read_bytes() == raw and not (folder / "takes").exists()
        win.banner.action.click()
        copy = tmp_path / "proj copy"
        assert win.project.folder == copy and not win.project.read_only
        qtbot.waitUntil(lambda: win.project.take(t.id).file is not None, timeout=10000)  # its file follows
        win.save_project(sync=True)
        assert [x.id for x in Project.load(copy).takes] == [t.id]
        assert Project.load(copy).path_of(Project.load(copy).takes[0]).is_file()
        assert (folder / PROJECT_FILE).read_bytes() == raw
    finally:
        holder.release()


def test_two_windows_on_one_project_lose_no_take(make_window, qtbot, tmp_path):
    folder = tmp_path / "proj"
    first = make_window(project_path=folder)
    second = make_window(project_path=folder)
    assert not first.project.read_only and second.project.read_only
    a = draft(qtbot, first, "from the first window")
    draft(qtbot, second, "from the second window")
    qtbot.waitUntil(lambda: a.file is not None, timeout=10000)
    second.close()
    first.close()
    assert [t.id for t in Project.load(folder).takes] == [a.id]


def test_switching_back_at_once_finds_the_project_free(make_window, qtbot):
    import threading

    win = make_window()
    first = win.project.folder
    win.save_project(sync=True)
    gate = threading.Event()
    win.tasks.run(gate.wait)  # the helper thread is busy: nothing queued on it has run yet
    try:
        win.new_project()
        assert win.open_project(first) and not win.project.read_only
    finally:
        gate.set()


def test_reopening_the_open_project_keeps_it_editable(make_window, qtbot):
    win = make_window()
    t = draft(qtbot, win, "kept across the reopen")
    qtbot.waitUntil(lambda: t.file is not None, timeout=10000)
    win.save_project(sync=True)
    folder = win.project.folder
    assert win.open_project(folder) and not win.project.read_only and win.project.lock.held
    assert [x.id for x in win.project.takes] == [t.id]
    with pytest.raises(ProjectLocked):
        ProjectLock(folder).acquire()


def test_takes_on_disk_whose_records_are_missing_are_added_back(make_window, qtbot, tmp_path):
    folder = tmp_path / "proj"
    win = make_window(project_path=folder)
    a = draft(qtbot, win, "the first take")
    b = draft(qtbot, win, "the second take")
    qtbot.waitUntil(lambda: a.file is not None and b.file is not None, timeout=10000)
    win.close()
    # As another writer (or a crash between the take file and the next save) would leave it: one record gone,
    # one saved before its file was written.
    doc = json.loads((folder / PROJECT_FILE).read_text())
    doc["takes"] = [t for t in doc["takes"] if t["id"] != b.id]
    doc["takes"][0]["file"] = doc["takes"][0]["thumbnail"] = None
    write_doc(folder, doc)
    win2 = make_window(project_path=folder)
    assert sorted(t.id for t in win2.project.takes) == sorted([a.id, b.id])
    assert all(t.file and win2.project.path_of(t).exists() for t in win2.project.takes)
    assert "1 take found in the takes folder was added back" in win2.banner.text.text()
    restored = win2.project.take(b.id)
    assert restored.request["prompt"] == "the second take" and restored.num_frames == b.num_frames
    win2.close()
    assert sorted(t.id for t in Project.load(folder).takes) == sorted([a.id, b.id])


# -- 6. no leftovers of a crash -------------------------------------------------------------------------------
def test_leftovers_of_our_own_naming_are_removed_on_open(tmp_path):
    folder = tmp_path / "proj"
    (folder / "takes").mkdir(parents=True)
    write_doc(folder, project_doc())
    ours = [folder / ".project.json.k2x_9a0b.tmp", folder / "takes" / ".20260101-120000-abcdef.0123abcd.partial.mp4",
            folder / "takes" / ".20260101-120000-abcdef.png.abcdefgh.tmp"]
    theirs = [folder / "notes.tmp", folder / ".notes.abcdefgh.tmp", folder / "takes" / "mine.partial.mp4",
              folder / ".project.json.toolong123.tmp"]
    for f in ours + theirs:
        f.write_bytes(b"x")
        os.utime(f, (f.stat().st_atime - 3600,) * 2)  # left an hour ago (an export's partial is aged by the engine)
    holder = Holder(folder)  # read-only: nothing is removed (the other instance may be writing them)
    try:
        assert open_project(folder).project.read_only
        assert all(f.exists() for f in ours)
    finally:
        holder.release()
    opened = open_project(folder)
    assert not any(f.exists() for f in ours) and all(f.exists() for f in theirs)
    opened.project.close()


KILLED_SAVE = r"""
import os, signal, sys
sys.path.insert(0, sys.argv[2])
from app.project import Project
p = Project.load(sys.argv[1])
p.prompt = "never finished"
os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)  # killed between the temp file and the rename
p.save()
"""


def test_kill_9_during_autosave_leaves_nothing_after_the_next_open(tmp_path):
    folder = tmp_path / "proj"
    raw = write_doc(folder, project_doc(prompt="last good"))
    proc = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(folder), str(ROOT)], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert list(folder.glob(".project.json.*.tmp"))
    opened = open_project(folder)
    assert opened.project.prompt == "last good" and (folder / PROJECT_FILE).read_bytes() == raw
    assert not list(folder.glob(".*.tmp"))
    opened.project.close()


# -- 7. crafted MP4 drops -------------------------------------------------------------------------------------
CRAFTED = {
    "upfb is text": {"request": good_request() | {"upfb": "x"}},
    "upfb values are text": {"request": good_request() | {"upfb": {"gamma_hf": "a"}}},
    "handoff is text": {"request": good_request() | {"handoff": "0.5"}},
    "handoff out of range": {"request": good_request() | {"handoff": 7}},
    "plan is a number": {"request": good_request() | {"plan": 5}},
    "negative is a list": {"request": good_request() | {"negative_prompt": ["x"]}},
    "negative is too long": {"request": good_request() | {"negative_prompt": "x" * 100_000}},
    "steps out of range": {"request": good_request() | {"steps": 10_000}},
    "width not a multiple of 16": {"request": good_request() | {"width": 17}},
    "no request": {"plan": "1. a plan"},
    "request is a list": {"request": [1, 2]},
    "use_plan is text": {"request": good_request() | {"use_plan": "no"}},
    "metadata plan is a number": {"request": good_request(), "plan": 5},
    "models is text": {"request": good_request(), "models": "x"},
}


@pytest.mark.parametrize("case", sorted(CRAFTED))
def test_crafted_metadata_is_explained_and_changes_nothing(make_window, qtbot, case):
    win = make_window()
    win.prompt.set_text("my own idea")
    before = win.settings_panel.values()
    win._apply_metadata("crafted.mp4", CRAFTED[case])
    assert win.banner.level == "error" and "crafted.mp4: its settings cannot be used" in win.banner.text.text()
    assert win.prompt.text() == "my own idea" and win.settings_panel.values() == before


@pytest.mark.parametrize("case", ["upfb is text", "negative is a list", "handoff out of range"])
def test_dropping_a_crafted_mp4_shows_a_banner(make_window, qtbot, tmp_path, case):
    path = small_mp4(tmp_path / "crafted.mp4", CRAFTED[case])
    win = make_window()
    win.reproduce_from(path)
    qtbot.waitUntil(lambda: win.banner.level == "error", timeout=10000)
    assert "crafted.mp4: its settings cannot be used" in win.banner.text.text()


def test_one_seed_range_the_largest_seed_is_restored_and_rendered_exactly(make_window, qtbot, tmp_path):
    from engine.api import MAX_SEED

    win = make_window()
    win._apply_metadata("big.mp4", {"request": good_request(seed=MAX_SEED)})
    assert win.banner.level == "info" and win.settings_panel.seed.value() == MAX_SEED
    win.banner.action.click()
    qtbot.waitUntil(lambda: bool(win.engine.submitted), timeout=5000)
    assert win.engine.submitted[-1].seed == MAX_SEED
    win._apply_metadata("bigger.mp4", {"request": good_request(seed=MAX_SEED + 1)})
    assert win.banner.level == "error" and "seed" in win.banner.text.text()


def test_render_it_with_out_of_range_values_says_why(make_window, qtbot):
    win = make_window()
    win.render_request(RenderRequest("x", steps=0))
    assert win.banner.isVisible() and win.banner.level == "error" and "steps" in win.banner.text.text()
    win.banner.dismiss()
    win.render_request(RenderRequest("x", handoff=5.0))
    assert win.banner.level == "error" and "handoff" in win.banner.text.text()


# -- 10. the suite never touches the real user's folders -------------------------------------------------------
def test_isolation_survives_monkeypatch_undo(monkeypatch):
    from tests import conftest

    monkeypatch.setenv("LUMOS_STUDIO_HOME", "/somewhere/else")
    monkeypatch.undo()
    for name, value in conftest.ISOLATED_ENV.items():
        assert os.environ[name] == value
    for d in (app_settings.config_dir(), app_settings.data_dir()):
        assert conftest.SESSION_HOME in d.parents and d not in conftest.REAL_USER_DIRS


def test_real_user_folders_are_unchanged_so_far(make_window, qtbot):
    from tests import conftest

    win = make_window()
    win.close()  # writes settings and the project: into the isolated folders
    assert conftest.changed_real_dirs() == []


WRITES_REAL = """
from tests.conftest import REAL_USER_DIRS

def test_writes_the_real_settings():
    REAL_USER_DIRS[0].mkdir(parents=True, exist_ok=True)
    (REAL_USER_DIRS[0] / "settings.json").write_text("{}")
"""


def test_a_run_that_writes_the_real_folders_fails(tmp_path):
    (tmp_path / "case").mkdir()
    (tmp_path / "case" / "test_writes.py").write_text(WRITES_REAL)
    fake_home = tmp_path / "user"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "LUMOS_", "HF_"))}
    env.update(HOME=str(fake_home), PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider",
                          str(tmp_path / "case")], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "changed the real user's folders" in out.stdout and "1 passed" in out.stdout
    assert (fake_home / ".config" / "LumosStudio" / "settings.json").exists()


def test_schema_limits_match_the_widgets_and_the_engine():
    import engine.api
    from app import schema
    from app.widgets.controls import MAX_SEED

    assert schema.MAX_SEED == MAX_SEED == engine.api.MAX_SEED  # one seed range: the seed box holds every seed
    assert (schema.MAX_NEGATIVE_CHARS, schema.MAX_PLAN_CHARS) == (engine.api.MAX_NEGATIVE_CHARS,
                                                                   engine.api.MAX_PLAN_CHARS)
