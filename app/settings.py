"""The user's folders, the app's settings file, and the JSON file helpers projects share. No Qt here.

Settings are typed with defaults; a bad value falls back to its default and is reported. JSON files are read with a
size limit and checked by app.schema before use, written atomically (engine.atomic_files, through engine.api), and a
damaged one is kept aside before it is rewritten.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

from engine.api import ProjectError
from engine.api import atomic_write_bytes as _atomic_write_bytes
from engine.api import atomic_write_json as _atomic_write_json

from . import schema
from .schema import Invalid

log = logging.getLogger(__name__)

APP_NAME = "LumosStudio"
SETTINGS_FORMAT = "lumos-studio-settings"
SETTINGS_VERSION = 1
MAX_RECENT_PROMPTS = 50
MAX_SETTINGS_BYTES = 4 << 20
MAX_LISTED_PROBLEMS = 3


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


def read_json_object(path: Path, what: str, max_bytes: int, raw_out: list | None = None) -> dict:
    """The JSON object in `path`, its whole document checked by schema.check_document; ProjectError otherwise."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise ProjectError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise ProjectError(f"{path} is a folder, not a Lumos Studio {what}.") from None
    except (OSError, ValueError) as exc:
        raise ProjectError(f"cannot read {what} {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if len(raw) > max_bytes:
        raise ProjectError(f"{path} is larger than {max_bytes >> 20} MB: it is not a Lumos Studio {what}. "
                           f"It was left untouched.")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # ValueError: JSON, or a 5000-digit number
        reason = "nested too deeply" if isinstance(exc, RecursionError) else f"{exc.__class__.__name__}: {exc}"
        raise ProjectError(f"{path} is damaged or not a Lumos Studio {what} ({reason}). "
                           f"It was left untouched.") from None
    if not isinstance(data, dict):
        raise ProjectError(f"{path} is not a Lumos Studio {what} (it holds a JSON {type(data).__name__}). "
                           f"It was left untouched.")
    try:
        schema.check_document(data, "it")
    except Invalid as exc:
        raise ProjectError(f"{path} is damaged or not a Lumos Studio {what}: {exc}. It was left untouched.") from None
    if raw_out is not None:
        raw_out.append(raw)
    return data


def keep_damaged_copy(file: Path, raw: bytes) -> Path:
    """Write `raw` (the file as it was read) beside `file` as `<name>.damaged-<time>` and return that path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = file.with_name(f"{file.name}.damaged-{stamp}")
    n = 2
    while target.exists():
        target = file.with_name(f"{file.name}.damaged-{stamp}-{n}")
        n += 1
    _atomic_write_bytes(target, raw)
    return target


def summarize(problems: list[str], limit: int = MAX_LISTED_PROBLEMS) -> str:
    """"a; b; c (and 4 more)" for a banner."""
    shown = "; ".join(problems[:limit])
    return shown + (f" (and {len(problems) - limit} more)" if len(problems) > limit else "")


# -- settings ------------------------------------------------------------------------------------------------
@dataclass
class Settings:
    """Typed app settings with defaults; a bad value falls back to its default (and is reported by `load`)."""

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
    model_family: str = ""  # "" = the pair above; "lumos-nexus": light/heavy are the release's two folders
    model_understanding: str = ""
    model_planner: str = ""  # a plain pair's planner (instruction LLM folder or cached repo id); "" = none
    model_heavy_reads: str = "instruction"  # with a planner: what the heavy generator reads, instruction or plan
    model_device: str = "auto"
    model_offload: bool = False
    model_memory: str = "auto"  # GPU memory plan: auto (chosen from the card), resident, balanced or low
    model_lora_light: list = field(default_factory=list)  # LoRAs on the light generator: [[file, strength], ...]
    model_lora_heavy: list = field(default_factory=list)
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
        pair = f"{self.model_light}|{self.model_heavy}"
        return f"{self.model_family}:{pair}" if self.model_family else pair

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["format"] = SETTINGS_FORMAT
        d["version"] = SETTINGS_VERSION
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "Settings":
        return cls.read(data)[0]

    @classmethod
    def read(cls, data: dict) -> tuple["Settings", list[str]]:
        """(settings, problems): every value goes through schema.SETTINGS_FIELDS; a bad one keeps its default."""
        s, problems = cls(), []
        if not isinstance(data, dict):
            return s, [f"it holds a JSON {type(data).__name__}, not settings"]
        if data.get("format") not in (None, SETTINGS_FORMAT):
            return s, [f"it is not a Lumos Studio settings file (format {schema.show(data.get('format'))})"]
        try:
            schema.check_document(data, "it")
        except Invalid as exc:
            return s, [str(exc)]
        for name in ("recent_prompts", "recent_projects"):
            if isinstance(data.get(name), list) and len(data[name]) > MAX_RECENT_PROMPTS:
                data = dict(data, **{name: data[name][:MAX_RECENT_PROMPTS]})  # a longer history is just cut
        for name, value in schema.SETTINGS_FIELDS.read(data, "", problems).items():
            setattr(s, name, value)
        s.recent_projects = s.recent_projects[:10]
        for problem in problems:
            log.warning("setting %s", problem)
        return s, problems

    @staticmethod
    def path() -> Path:
        return config_dir() / "settings.json"

    @classmethod
    def load(cls) -> tuple["Settings", str | None]:
        """(settings, problem): a missing file gives defaults silently. A damaged file, or bad values in it, give
        defaults (for those values) and one message; the file as it was is kept aside as
        `settings.json.damaged-<time>`, since the next save rewrites it."""
        path = cls.path()
        if not path.exists():
            return cls(), None
        raw: list[bytes] = []
        try:
            data = read_json_object(path, "settings file", MAX_SETTINGS_BYTES, raw_out=raw)
        except ProjectError as exc:
            settings, message = cls(), f"Settings could not be read, defaults are used: {exc}"
            try:
                raw = [path.read_bytes()] if path.stat().st_size <= MAX_SETTINGS_BYTES else []
            except OSError:
                raw = []
        else:
            settings, problems = cls.read(data)
            if not problems:
                return settings, None
            message = (f"Some settings could not be used and were reset to their defaults: "
                       f"{summarize(problems)}.")
        if raw:
            try:
                kept = keep_damaged_copy(path, raw[0])
                message += f" The original file is kept as {kept}."
            except OSError as exc:
                log.warning("cannot keep a copy of %s: %s", path, exc)
        return settings, message

    def save(self) -> None:
        try:
            atomic_write_json(self.path(), self.to_dict())
        except (ValueError, TypeError) as exc:
            raise ProjectError(f"could not save settings to {self.path()}: {exc}") from None
        except OSError as exc:
            raise ProjectError(f"could not save settings to {self.path()}: {exc.strerror or exc}") from None
