"""Projects, takes and settings on disk: versioned JSON, atomic writes, clear messages for bad files.

No Qt here: the window binds to these objects and saves them; tests use them directly.

Layout of a project folder:
    project.json           this file's `Project.to_dict()` (format "lumos-studio-project")
    takes/<id>.mp4         every finished take, written by engine.api.export_take (metadata inside)
    takes/<id>.png         its thumbnail, for a fast takes strip on reopen

Every write goes to a temporary file in the same folder, is flushed to disk and then renamed over the old
file (os.replace is atomic), so a crash or kill -9 mid-save leaves the last good file in place.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field, fields
from pathlib import Path

from engine.api import ProjectError
from engine.api import atomic_write_json as _atomic_write_json

log = logging.getLogger(__name__)

APP_NAME = "LumosStudio"
PROJECT_FORMAT = "lumos-studio-project"
PROJECT_VERSION = 1
PROJECT_FILE = "project.json"
SETTINGS_FORMAT = "lumos-studio-settings"
SETTINGS_VERSION = 1
MAX_RECENT_PROMPTS = 50


# -- where things live -------------------------------------------------------------------------------------
def data_dir() -> Path:
    """Per-user data folder (projects). LUMOS_STUDIO_HOME overrides it (tests, portable installs)."""
    home = os.environ.get("LUMOS_STUDIO_HOME")
    if home:
        return Path(home) / "data"
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, False))


def config_dir() -> Path:
    """Per-user config folder (settings.json). LUMOS_STUDIO_HOME overrides it."""
    home = os.environ.get("LUMOS_STUDIO_HOME")
    if home:
        return Path(home) / "config"
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, False))


def videos_dir() -> Path:
    """Where exports go by default: the platform's videos folder. LUMOS_STUDIO_HOME overrides it."""
    home = os.environ.get("LUMOS_STUDIO_HOME")
    if home:
        return Path(home) / "videos"
    import platformdirs

    return Path(platformdirs.user_videos_dir())


def export_folder(last: str = "") -> Path:
    """The folder an export dialog opens in: the last one used while it exists, else the videos folder (created
    when missing), else the home folder when that cannot be created."""
    if last and Path(last).is_dir():
        return Path(last)
    folder = videos_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.warning("cannot create %s (%s); exports start in the home folder", folder, exc)
        return Path.home()
    return folder


def default_project_dir() -> Path:
    return data_dir() / "projects" / "Untitled"


# -- atomic files: engine.atomic_files, through engine.api -------------------------------------------------


def atomic_write_json(path: Path, obj: dict) -> None:
    _atomic_write_json(path, obj, indent=1)


def _read_json_object(path: Path, what: str) -> dict:
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ProjectError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise ProjectError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProjectError(f"{path} is damaged or not a Lumos Studio {what} ({exc.__class__.__name__}: {exc}). "
                           f"It was left untouched.") from None
    if not isinstance(data, dict):
        raise ProjectError(f"{path} is not a Lumos Studio {what} (it holds a JSON {type(data).__name__}). "
                           f"It was left untouched.")
    return data


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
        mode = self.request.get("mode", "upfb")
        return mode == "light" or (mode == "upfb" and self.handoff <= 0.0 and self.request.get("gamma_w") is None)

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
    def from_dict(cls, data: dict) -> "TakeRecord":
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not isinstance(data.get("request"), dict):
            raise ValueError("a take needs an 'id' and a 'request'")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


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
        rel = getattr(take, attr)
        return self.folder / rel if rel else None

    def add_take(self, take: TakeRecord) -> None:
        self.takes.append(take)

    def remove_take(self, take_id: str) -> TakeRecord | None:
        take = self.take(take_id)
        if take is None:
            return None
        self.takes.remove(take)
        for attr in ("file", "thumbnail"):
            p = self.path_of(take, attr)
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
    def to_dict(self) -> dict:
        return {
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
            "takes": [t.to_dict() for t in self.takes],
            "current_take": self.current_take,
            "base_draft": self.base_draft,
            "queue": self.queue,
        }

    @classmethod
    def from_dict(cls, data: dict, folder: Path) -> "Project":
        """Build a project from any supported version of the file; raise ProjectError for anything else."""
        if data.get("format") != PROJECT_FORMAT:
            raise ProjectError(f"{folder / PROJECT_FILE} is not a Lumos Studio project (no '{PROJECT_FORMAT}' "
                               f"marker). It was left untouched.")
        version = data.get("version")
        if not isinstance(version, int) or version < 1:
            raise ProjectError(f"{folder / PROJECT_FILE} has no valid version number. It was left untouched.")
        if version > PROJECT_VERSION:
            raise ProjectError(f"{folder / PROJECT_FILE} was written by a newer Lumos Studio (project version "
                               f"{version}, this one reads up to {PROJECT_VERSION}). Update the app to open it.")
        while version < PROJECT_VERSION:
            data = _MIGRATIONS[version](dict(data))
            version += 1
        takes = []
        for raw in data.get("takes") or []:
            try:
                takes.append(TakeRecord.from_dict(raw))
            except (TypeError, ValueError) as exc:
                log.warning("skipping an unreadable take in %s: %s", folder, exc)
        p = cls(folder=Path(folder), takes=takes)
        for name, kind in (("name", str), ("prompt", str), ("negative_prompt", str), ("plan", str),
                           ("plan_instruction", str), ("plan_edited", bool), ("use_plan", bool), ("settings", dict),
                           ("created", (int, float))):
            value = data.get(name)
            if isinstance(value, kind):
                setattr(p, name, value)
        p.queue = [q for q in data.get("queue") or [] if isinstance(q, dict) and isinstance(q.get("request"), dict)]
        ids = {t.id for t in takes}
        p.current_take = data.get("current_take") if data.get("current_take") in ids else None
        p.base_draft = data.get("base_draft") if data.get("base_draft") in ids else None
        return p

    def save(self) -> None:
        """Atomic save of project.json (the take files are written as takes finish)."""
        write_project(self.file, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> "Project":
        """Open a project folder (or its project.json). Raises ProjectError with a message for a person."""
        path = Path(path)
        folder, file = (path, path / PROJECT_FILE) if path.suffix != ".json" else (path.parent, path)
        return cls.from_dict(_read_json_object(file, "project"), folder)

    @classmethod
    def open_or_create(cls, folder: Path) -> "Project":
        """The project in `folder`, or a fresh one there when the folder holds none yet."""
        if (Path(folder) / PROJECT_FILE).exists():
            return cls.load(folder)
        return cls(folder=Path(folder), name=Path(folder).name)

    def save_as(self, folder: Path) -> "Project":
        """Copy this project (file and takes) into `folder` and return the copy, which becomes the one to edit."""
        folder = Path(folder)
        if folder.resolve() == self.folder.resolve():
            self.save()
            return self
        if (folder / PROJECT_FILE).exists():
            Project.load(folder)  # refuse to overwrite something that is not a project of ours
        folder.mkdir(parents=True, exist_ok=True)
        copy = Project.from_dict(self.to_dict(), folder)
        copy.name = folder.name
        for take in copy.takes:
            for attr in ("file", "thumbnail"):
                src = self.path_of(take, attr)
                if src is not None and src.exists():
                    dst = copy.folder / getattr(take, attr)
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, dst)
        copy.save()
        return copy


def write_project(file: Path, data: dict) -> Path:
    """Atomically write a `Project.to_dict()` snapshot (safe on any thread: it touches no live object)."""
    try:
        atomic_write_json(file, data)
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


# -- settings ------------------------------------------------------------------------------------------------
@dataclass
class Settings:
    """Typed app settings with defaults; a bad value falls back to its default (and is logged)."""

    geometry: str = ""  # base64 of QMainWindow.saveGeometry()
    window_state: str = ""
    splitter: str = ""
    last_project: str = ""
    recent_projects: list = field(default_factory=list)
    last_export_dir: str = ""
    export_crf: int = 18
    recent_prompts: list = field(default_factory=list)
    model_light: str = ""  # "" = the embedded default family
    model_heavy: str = ""
    model_understanding: str = ""
    model_device: str = "auto"
    model_offload: bool = False
    render: dict = field(default_factory=dict)  # last settings-panel values, for new projects
    defaults_applied_for: str = ""  # which model pair's family defaults were copied into `render`
    debounce_ms: int = 350

    def add_recent_prompt(self, prompt: str) -> None:
        prompt = prompt.strip()
        if not prompt:
            return
        self.recent_prompts = [p for p in self.recent_prompts if p != prompt]
        self.recent_prompts.insert(0, prompt)
        del self.recent_prompts[MAX_RECENT_PROMPTS:]

    def add_recent_project(self, folder: str) -> None:
        self.last_project = folder
        self.recent_projects = [folder] + [p for p in self.recent_projects if p != folder][:9]

    def model_key(self) -> str:
        return f"{self.model_light}|{self.model_heavy}"

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["format"] = SETTINGS_FORMAT
        d["version"] = SETTINGS_VERSION
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "Settings":
        s = cls()
        if data.get("format") not in (None, SETTINGS_FORMAT):
            log.warning("settings file has format %r; using defaults", data.get("format"))
            return s
        for f in fields(cls):
            if f.name not in data:
                continue
            value, default = data[f.name], getattr(s, f.name)
            ok = isinstance(value, type(default)) and not (isinstance(value, bool) and not isinstance(default, bool))
            if f.name in ("recent_prompts", "recent_projects") and ok:
                value = [p for p in value if isinstance(p, str)][:MAX_RECENT_PROMPTS]
            if f.name == "debounce_ms" and ok and not 50 <= value <= 5000:
                ok = False
            if f.name == "export_crf" and ok and not 0 <= value <= 51:
                ok = False
            if ok:
                setattr(s, f.name, value)
            else:
                log.warning("setting %s has a bad value %r; using the default %r", f.name, value, default)
        return s

    @staticmethod
    def path() -> Path:
        return config_dir() / "settings.json"

    @classmethod
    def load(cls) -> tuple["Settings", str | None]:
        """(settings, problem): a missing file gives defaults silently; a damaged one gives defaults + a message."""
        path = cls.path()
        if not path.exists():
            return cls(), None
        try:
            return cls.from_dict(_read_json_object(path, "settings file")), None
        except ProjectError as exc:
            return cls(), f"Settings could not be read, defaults are used: {exc}"

    def save(self) -> None:
        try:
            atomic_write_json(self.path(), self.to_dict())
        except OSError as exc:
            raise ProjectError(f"could not save settings to {self.path()}: {exc.strerror or exc}") from None
