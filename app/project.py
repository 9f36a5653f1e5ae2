"""Projects and takes on disk: versioned JSON, atomic writes, clear messages for bad files.

No Qt here: the window binds to these objects and saves them; tests use them directly.

Layout of a project folder:
    project.json           this file's `Project.to_dict()` (format "lumos-studio-project")
    takes/<id>.mp4         every finished take, written by engine.api.export_take (metadata inside)
    takes/<id>.png         its thumbnail, for a fast takes strip on reopen

Every write goes to a temporary file in the same folder, is flushed to disk and then renamed over the old
file (os.replace is atomic), so a crash or kill -9 mid-save leaves the last good file in place; such leftovers
(`.project.json.<random>.tmp`, `takes/.<id>.<hex>.partial.mp4`) are removed the next time the project is opened.

Everything read from a file goes through app.schema first (types, ranges, lengths, take paths confined to the
project's takes folder). What fails is reported, never silently dropped: a take record that cannot be read is kept in
project.json as it is (and written back by every save), and when a bad value had to be replaced the original file is
kept aside as `project.json.damaged-<time>` before the next save rewrites it.

A project folder is locked by the instance that has it open (app.project_lock); a second one opens it read-only.
Opening one as the window does (lock, crash leftovers, recovered takes) is app.project_open.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field, fields
from pathlib import Path

from engine.api import ProjectError, RenderRequest, RequestError

from . import schema
from .project_lock import LockOwner, ProjectLock, ProjectLocked
from .schema import Invalid
from .settings import Settings  # noqa: F401  (re-exported: scripts and benches import it from here)
from .settings import atomic_write_json, default_project_dir, read_json_object

log = logging.getLogger(__name__)

PROJECT_FORMAT = "lumos-studio-project"
PROJECT_VERSION = 1
PROJECT_FILE = "project.json"
MAX_PROJECT_BYTES = 64 << 20
# Leftovers of our own atomic writes (engine.atomic_files: ".<name>.<8 random>.tmp"); partial MP4 exports are the
# engine's to recognise (engine.api.remove_stale_partials).
STALE_TMP_RE = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp")


# -- takes ---------------------------------------------------------------------------------------------------
def new_take_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


@dataclass
class TakeRecord:
    """One finished render as the project remembers it (frames live in the MP4 file, not here)."""

    id: str
    request: dict  # RenderRequest.to_dict()
    name: str = ""
    starred: bool = False
    created: float = 0.0  # epoch seconds
    elapsed: float = 0.0  # render seconds
    fps: int = 16
    num_frames: int = 0
    width: int = 0
    height: int = 0
    file: str | None = None  # relative to the project folder
    thumbnail: str | None = None
    metadata: dict = field(default_factory=dict)
    base_id: str | None = None  # the draft a refine was made from

    @property
    def handoff(self) -> float:
        return float(self.request.get("handoff", 0.0) or 0.0)

    @property
    def is_draft(self) -> bool:
        """The engine's draft rule (RenderRequest.is_draft) on the stored request; one it cannot read is no draft."""
        try:
            return RenderRequest.from_dict(self.request).is_draft
        except (RequestError, TypeError, ValueError):
            return False

    @property
    def seed(self) -> int:
        return int(self.request.get("seed", 0))

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps if self.fps else 0.0

    def kind_label(self) -> str:
        """What the take is: "Draft", "Refine 30 %", …"""
        if self.is_draft:
            return "Draft"
        mode = self.request.get("mode", "upfb")
        if mode == "upfb":
            return f"Refine {round(self.handoff * 100)} %"
        return mode.capitalize()

    def label(self) -> str:
        """The user's name, if any, and what the take is: a renamed refine still says it is one."""
        return f"{self.name} · {self.kind_label()}" if self.name else self.kind_label()

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict, folder: Path | None = None, where: str = "take",
                  problems: list[str] | None = None) -> "TakeRecord":
        """A record from project.json. Raises schema.Invalid (a ValueError) when the take cannot be used at all: no
        valid id or request, or a file/thumbnail that is not inside `folder`'s takes folder. A bad optional field
        keeps its default; its problem goes to `problems` (or raises Invalid when `problems` is None)."""
        if not isinstance(data, dict):
            raise Invalid(where, f"must be an object, got {schema.show(data)}")
        if "id" not in data:
            raise Invalid(f"{where}.id", "is missing")
        take_id = schema.TAKE_ID.check(data["id"], f"{where}.id")
        request = schema.Request().check(data.get("request"), f"{where}.request")
        paths = {}
        for attr, suffix in (("file", ".mp4"), ("thumbnail", ".png")):
            value = data.get(attr)
            if folder is not None:
                paths[attr] = schema.check_take_path(folder, value, f"{where}.{attr}", suffix)
            else:
                paths[attr] = schema.Str(schema.MAX_NAME_CHARS, nullable=True, no_nul=True).check(
                    value, f"{where}.{attr}")
        if problems is None:
            optional = schema.TAKE_FIELDS.check(data, where)
        else:
            optional = schema.TAKE_FIELDS.read(data, where, problems)
        return cls(id=take_id, request=dict(request), **paths, **optional)


# -- projects ------------------------------------------------------------------------------------------------
# from_dict upgrades older files step by step: _MIGRATIONS[v] turns a version-v dict into version v+1.
_MIGRATIONS: dict[int, callable] = {}


@dataclass
class Project:
    """The session a creator works in: the instruction, the settings and every finished take."""

    folder: Path
    name: str = "Untitled"
    prompt: str = ""
    negative_prompt: str = ""
    plan: str = ""
    plan_instruction: str | None = None  # the instruction the plan was written or edited for (app.plan_state)
    plan_edited: bool = False
    use_plan: bool = True
    settings: dict = field(default_factory=dict)  # the settings panel's values
    takes: list[TakeRecord] = field(default_factory=list)
    current_take: str | None = None
    base_draft: str | None = None
    created: float = field(default_factory=time.time)
    # Renders queued or running at the last save: {"request", "kind", "label", "base_id"}. Offered again on reopen,
    # so that a queue survives closing the app or a crash.
    queue: list[dict] = field(default_factory=list)
    # Not saved: what loading found, and this instance's hold on the folder.
    unreadable_takes: list = field(default_factory=list, repr=False, compare=False)  # kept verbatim, written back
    problems: list[str] = field(default_factory=list, repr=False, compare=False)  # values replaced by defaults
    unreadable_problems: list[str] = field(default_factory=list, repr=False, compare=False)
    read_only: bool = field(default=False, compare=False)  # another instance has it open: nothing is written
    lock: ProjectLock | None = field(default=None, repr=False, compare=False)
    source_bytes: bytes | None = field(default=None, repr=False, compare=False)  # project.json as it was read

    @property
    def file(self) -> Path:
        return self.folder / PROJECT_FILE

    @property
    def takes_dir(self) -> Path:
        return self.folder / "takes"

    def take(self, take_id: str | None) -> TakeRecord | None:
        for t in self.takes:
            if t.id == take_id:
                return t
        return None

    def path_of(self, take: TakeRecord, attr: str = "file") -> Path | None:
        """The take's file or thumbnail, checked again now: None unless it is inside this project's takes folder
        (symlinks resolved), so that nothing outside the project is ever read, copied or deleted."""
        rel = getattr(take, attr)
        if not rel:
            return None
        path = schema.confined_take_path(self.folder, rel, ".png" if attr == "thumbnail" else ".mp4")
        if path is None:
            log.warning("ignoring %s %r of take %s: not inside %s", attr, rel, take.id, self.takes_dir)
        return path

    def add_take(self, take: TakeRecord) -> None:
        self.takes.append(take)

    def remove_take(self, take_id: str) -> TakeRecord | None:
        take = self.take(take_id)
        if take is None:
            return None
        self.takes.remove(take)
        for attr in ("file", "thumbnail"):
            p = None if self.read_only else self.path_of(take, attr)
            if p is not None:
                try:
                    p.unlink()
                except OSError:
                    pass
        if self.current_take == take_id:
            self.current_take = None
        if self.base_draft == take_id:
            self.base_draft = None
        return take

    # -- serialisation --
    def to_dict(self) -> "ProjectSnapshot":
        """The file's contents (unreadable take records included, as they were). A read-only project's snapshot
        says so, and write_project leaves its file alone."""
        snapshot = ProjectSnapshot({
            "format": PROJECT_FORMAT,
            "version": PROJECT_VERSION,
            "name": self.name,
            "created": self.created,
            "saved": time.time(),
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt,
            "plan": self.plan,
            "plan_instruction": self.plan_instruction,
            "plan_edited": self.plan_edited,
            "use_plan": self.use_plan,
            "settings": self.settings,
            "takes": [t.to_dict() for t in self.takes] + list(self.unreadable_takes),
            "current_take": self.current_take,
            "base_draft": self.base_draft,
            "queue": self.queue,
        })
        snapshot.read_only = self.read_only
        return snapshot

    @classmethod
    def from_dict(cls, data: dict, folder: Path) -> "Project":
        """Build a project from any supported version of the file; raise ProjectError when it cannot be used at all.

        Every value goes through app.schema. A bad value keeps its default and is listed in `problems`; a take
        record that cannot be used is kept verbatim in `unreadable_takes` (and listed in `unreadable_problems`)."""
        folder = Path(folder)
        where_file = folder / PROJECT_FILE
        if not isinstance(data, dict) or data.get("format") != PROJECT_FORMAT:
            raise ProjectError(f"{where_file} is not a Lumos Studio project (no '{PROJECT_FORMAT}' "
                               f"marker). It was left untouched.")
        version = data.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ProjectError(f"{where_file} has no valid version number. It was left untouched.")
        if version > PROJECT_VERSION:
            raise ProjectError(f"{where_file} was written by a newer Lumos Studio (project version "
                               f"{version}, this one reads up to {PROJECT_VERSION}). Update the app to open it.")
        try:
            schema.check_document(data, "it")
        except Invalid as exc:
            raise ProjectError(f"{where_file} is damaged: {exc}. It was left untouched.") from None
        while version < PROJECT_VERSION:
            data = _MIGRATIONS[version](dict(data))
            version += 1
        problems: list[str] = []
        p = cls(folder=folder)
        for name, value in schema.PROJECT_FIELDS.read(data, "", problems).items():
            setattr(p, name, value)
        if "settings" in data:
            p.settings = schema.PANEL_FIELDS.read(data["settings"], "settings", problems)
        raw_takes = data.get("takes", [])
        if not isinstance(raw_takes, list):
            problems.append(f"takes: must be a list, got {schema.show(raw_takes)}")
            raw_takes = []
        elif len(raw_takes) > schema.MAX_TAKES:
            raise ProjectError(f"{where_file} lists {len(raw_takes)} takes; the limit is {schema.MAX_TAKES}. "
                               f"It was left untouched.")
        ids: set[str] = set()
        for i, raw in enumerate(raw_takes):
            where, take_problems = f"takes[{i}]", []
            try:
                take = TakeRecord.from_dict(raw, folder, where, take_problems)
                if take.id in ids:
                    raise Invalid(f"{where}.id", f"{take.id!r} is used by an earlier take")
            except Invalid as exc:  # kept verbatim: its replaced values are no problem of the project's
                p.unreadable_takes.append(raw)
                p.unreadable_problems.append(str(exc))
                continue
            problems.extend(take_problems)
            ids.add(take.id)
            p.takes.append(take)
        if "queue" in data:
            p.queue = schema.ListOf(schema.QUEUE_ENTRY, schema.MAX_QUEUE).read(data["queue"], "queue", problems)
        for name in ("current_take", "base_draft"):
            if getattr(p, name) not in ids:
                setattr(p, name, None)  # a take that is gone (or unreadable): nothing to show
        p.problems = problems
        return p

    def save(self) -> None:
        """Atomic save of project.json (the take files are written as takes finish). Nothing when read-only."""
        write_project(self.file, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "Project":
        """Read a project folder (or its project.json), without locking it or changing anything on disk.
        Raises ProjectError with a message for a person."""
        path = Path(path)
        folder, file = (path, path / PROJECT_FILE) if path.suffix != ".json" else (path.parent, path)
        raw: list[bytes] = []
        project = cls.from_dict(read_json_object(file, "project", MAX_PROJECT_BYTES, raw_out=raw), folder)
        project.source_bytes = raw[0]
        return project

    @classmethod
    def open_or_create(cls, folder: Path) -> "Project":
        """The project in `folder`, or a fresh one there when the folder holds none yet (not locked: see open)."""
        if Path(folder).exists() and not Path(folder).is_dir():
            raise ProjectError(f"{folder} is a file, not a project folder.")
        if (Path(folder) / PROJECT_FILE).exists():
            return cls.load(folder)
        return cls(folder=Path(folder), name=Path(folder).name)

    # -- the lock: one writer per folder --
    def acquire_lock(self) -> str | None:
        """Lock the folder for this instance. When another instance has it (or it cannot be locked), the project
        becomes read-only and the reason is returned (None when locked)."""
        if self.lock is not None and self.lock.held:
            return None
        lock = ProjectLock(self.folder)
        try:
            lock.acquire()
        except ProjectLocked as exc:
            self.read_only = True
            return read_only_message(exc.owner)
        except ProjectError as exc:
            self.read_only = True
            return f"{exc}. It is shown read-only: nothing changed here is saved."
        self.lock, self.read_only = lock, False
        return None

    def close(self) -> None:
        """Release this instance's lock (the window closed the project)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def save_as(self, folder: Path) -> "Project":
        """Copy this project (file and takes) into `folder` and return the copy, which becomes the one to edit:
        it holds the lock of `folder`, and this project's lock is released. Only files inside this project's takes
        folder are read, and only files inside `folder` are written."""
        folder = Path(folder)
        try:
            if folder.exists() and not folder.is_dir():
                raise ProjectError(f"{folder} is a file, not a folder.")
        except (OSError, ValueError) as exc:
            raise ProjectError(f"cannot use the folder {folder}: {getattr(exc, 'strerror', None) or exc}") from None
        if folder.resolve() == self.folder.resolve():
            self.save()
            return self
        if (folder / PROJECT_FILE).exists():
            Project.load(folder)  # refuse to overwrite something that is not a project of ours
        lock = ProjectLock(folder)
        lock.acquire()  # ProjectLocked: another window has that project open
        try:
            copy = Project.from_dict(self.to_dict(), folder)
            copy.name = folder.name
            copy.lock = lock
            for take in copy.takes:
                for attr in ("file", "thumbnail"):
                    src, dst = self.path_of(take, attr), copy.path_of(take, attr)
                    if src is not None and dst is not None and src.is_file():
                        dst.parent.mkdir(parents=True, exist_ok=True)
                        if copy.path_of(take, attr) is None:  # the takes folder just made is a link out
                            continue
                        shutil.copy2(src, dst)
            copy.save()
        except BaseException:
            lock.release()
            raise
        if copy.folder.resolve() != self.folder.resolve():
            self.close()
        return copy


class ProjectSnapshot(dict):
    """Project.to_dict(): a plain dict to json, plus whether it came from a read-only project."""

    read_only = False


def read_only_message(owner: LockOwner) -> str:
    return (f"This project is open in another Lumos Studio window ({owner.describe()}). It is shown read-only: "
            f"nothing changed here is saved. Use “Open a copy” to keep working on it.")


def write_project(file: Path, data: dict) -> Path:
    """Atomically write a `Project.to_dict()` snapshot (safe on any thread: it touches no live object).
    A read-only project's snapshot is not written."""
    if getattr(data, "read_only", False):
        return Path(file)
    try:
        atomic_write_json(file, data)
    except (ValueError, TypeError) as exc:  # a value json cannot write (caught before the file is touched)
        raise ProjectError(f"could not save the project to {file}: {exc}. Your takes are still in memory.") from None
    except OSError as exc:
        raise ProjectError(f"could not save the project to {file}: {exc.strerror or exc}. "
                           f"Check the disk and folder permissions; your takes are still in memory.") from None
    return file


def unused_project_dir(base: Path | None = None) -> Path:
    """A fresh 'Untitled', 'Untitled 2', ... folder next to the default project."""
    root = (base or default_project_dir()).parent
    for i in range(1, 10_000):
        candidate = root / ("Untitled" if i == 1 else f"Untitled {i}")
        # Any existing folder counts as taken: its project.json may still be on its way to disk.
        if not candidate.exists():
            return candidate
    return root / f"Untitled {uuid.uuid4().hex[:6]}"
