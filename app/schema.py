"""One validation for every value the app reads from a file: project.json, its take records, settings.json and the
metadata inside an MP4. No Qt here.

A schema is a small declarative object (`Str`, `Int`, `Num`, `Bool`, `OneOf`, `ListOf`, `Obj`, `Request`, ...);
`schema.check(value, where)` returns the value when it is acceptable and raises `Invalid` naming the place, the rule
and the value otherwise. `Obj.read` is the lenient form used for whole files: every field is checked, a bad one keeps
its default and its problem is collected, so that one bad value never hides the rest of a file.

Whole documents are first walked once (`check_document`, no recursion): nesting depth, the number of values and text
that cannot be written back as UTF-8 are bounded before any field is looked at.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from engine.api import (
    MAX_FRAMES,
    MAX_NEGATIVE_CHARS,
    MAX_PLAN_CHARS,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    MAX_SIDE,
    HEAVY_READS,
    MAX_STEPS,
    MEMORY_CHOICES,
    MODEL_FAMILIES,
    MODES,
    RenderRequest,
    RequestError,
    check_request,
)

# Limits of what the app accepts from a file. Request texts follow the engine's own limits (checked again there).
MAX_DEPTH = 48  # nesting of any JSON document we read (a project is ~6 deep)
MAX_VALUES = 2_000_000  # JSON values in one document
MAX_TEXT_CHARS = 100_000  # an editor's text kept in a project (the instruction box may hold more than one request)
MAX_NAME_CHARS = 255
MAX_PATH_CHARS = 4096
MAX_TAKES = 100_000
MAX_QUEUE = 1_000
MAX_RECENT = 50
MAX_FPS = 240
TAKE_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
TAKES_FOLDER = "takes"


class Invalid(ValueError):
    """A value breaks a rule: `where` is its place in the file ("takes[2].fps"), str() a complete sentence."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where


def show(value, limit: int = 60) -> str:
    """A short, safe rendering of a bad value for a message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- whole documents -----------------------------------------------------------------------------------------
def check_document(data, what: str) -> None:
    """Walk a parsed JSON document once (iteratively): depth, size and text that can be written back."""
    stack = [(data, 1)]
    count = 0
    while stack:
        value, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise Invalid("", f"{what} holds more than {MAX_VALUES} values")
        if depth > MAX_DEPTH:
            raise Invalid("", f"{what} is nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            for k, v in value.items():
                if not _encodable(k):
                    raise Invalid("", f"{what} holds a key that is not valid Unicode text")
                stack.append((v, depth + 1))
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
        elif isinstance(value, str) and not _encodable(value):
            raise Invalid("", f"{what} holds text that is not valid Unicode (e.g. a lone surrogate)")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# -- value schemas -------------------------------------------------------------------------------------------
class Schema:
    nullable = False

    def check(self, value, where: str):
        if value is None and self.nullable:
            return None
        return self._check(value, where)

    def _check(self, value, where: str):  # pragma: no cover - abstract
        raise NotImplementedError


class Any(Schema):
    """Any JSON value (the document walk already bounded its depth and size)."""

    nullable = True

    def _check(self, value, where):
        return value


@dataclass
class Str(Schema):
    max_len: int = MAX_TEXT_CHARS
    nullable: bool = False
    pattern: re.Pattern | None = None
    non_empty: bool = False
    no_nul: bool = False

    def _check(self, value, where):
        if not isinstance(value, str):
            raise Invalid(where, f"must be text, got {show(value)}")
        if len(value) > self.max_len:
            raise Invalid(where, f"is {len(value)} characters long; the limit is {self.max_len}")
        if self.non_empty and not value.strip():
            raise Invalid(where, "must not be empty")
        if (self.no_nul or self.pattern) and "\x00" in value:
            raise Invalid(where, "must not contain a NUL character")
        if self.pattern is not None and not self.pattern.fullmatch(value):
            raise Invalid(where, f"is not a valid value ({show(value)})")
        if not _encodable(value):
            raise Invalid(where, "is not valid Unicode text")
        return value


@dataclass
class Int(Schema):
    lo: int
    hi: int
    nullable: bool = False

    def _check(self, value, where):
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(where, f"must be a whole number, got {show(value)}")
        if not self.lo <= value <= self.hi:
            raise Invalid(where, f"must be between {self.lo} and {self.hi}, got {show(value)}")
        return value


@dataclass
class Num(Schema):
    lo: float
    hi: float
    nullable: bool = False

    def _check(self, value, where):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Invalid(where, f"must be a number, got {show(value)}")
        if isinstance(value, int) and abs(value) > 2**53:
            raise Invalid(where, f"must be between {self.lo} and {self.hi}, got {show(value)}")
        if not math.isfinite(value):
            raise Invalid(where, f"must be a finite number, got {show(value)}")
        if not self.lo <= value <= self.hi:
            raise Invalid(where, f"must be between {self.lo} and {self.hi}, got {show(value)}")
        return value


class Bool(Schema):
    def _check(self, value, where):
        if not isinstance(value, bool):
            raise Invalid(where, f"must be true or false, got {show(value)}")
        return value


@dataclass
class OneOf(Schema):
    values: tuple
    nullable: bool = False

    def _check(self, value, where):
        if not isinstance(value, str) or value not in self.values:
            raise Invalid(where, f"must be one of {', '.join(map(str, self.values))}, got {show(value)}")
        return value


@dataclass
class ListOf(Schema):
    item: Schema
    max_len: int

    def _check(self, value, where):
        if not isinstance(value, list):
            raise Invalid(where, f"must be a list, got {show(value)}")
        if len(value) > self.max_len:
            raise Invalid(where, f"holds {len(value)} entries; the limit is {self.max_len}")
        return [self.item.check(v, f"{where}[{i}]") for i, v in enumerate(value)]

    def read(self, value, where: str, problems: list[str]) -> list:
        """Lenient: the good entries; each bad one is a problem."""
        if not isinstance(value, list):
            problems.append(str(Invalid(where, f"must be a list, got {show(value)}")))
            return []
        out = []
        for i, v in enumerate(value):
            if i >= self.max_len:
                problems.append(str(Invalid(where, f"holds {len(value)} entries; the limit is {self.max_len}")))
                break
            try:
                out.append(self.item.check(v, f"{where}[{i}]"))
            except Invalid as exc:
                problems.append(str(exc))
        return out


@dataclass
class Field:
    schema: Schema
    required: bool = False


class Obj(Schema):
    """A JSON object with known fields. Unknown keys are left out of the result (they are not ours to read)."""

    def __init__(self, fields: dict[str, Field | Schema], nullable: bool = False, check=None):
        self.fields = {k: f if isinstance(f, Field) else Field(f) for k, f in fields.items()}
        self.nullable = nullable
        self.extra_check = check  # (result, where) -> None, raising Invalid: rules across fields

    def _check(self, value, where):
        if not isinstance(value, dict):
            raise Invalid(where, f"must be an object, got {show(value)}")
        out = {}
        for name, f in self.fields.items():
            place = f"{where}.{name}" if where else name
            if name not in value:
                if f.required:
                    raise Invalid(place, "is missing")
                continue
            out[name] = f.schema.check(value[name], place)
        if self.extra_check is not None:
            self.extra_check(out, where)
        return out

    def read(self, value, where: str, problems: list[str]) -> dict:
        """Lenient: every acceptable field; each bad one is left out and its problem collected."""
        if not isinstance(value, dict):
            problems.append(str(Invalid(where, f"must be an object, got {show(value)}")))
            return {}
        out = {}
        for name, f in self.fields.items():
            if name not in value:
                continue
            place = f"{where}.{name}" if where else name
            if isinstance(f.schema, (Obj, ListOf)) and value[name] is not None:  # lenient all the way down
                out[name] = f.schema.read(value[name], place, problems)
                continue
            try:
                out[name] = f.schema.check(value[name], place)
            except Invalid as exc:
                problems.append(str(exc))
        if self.extra_check is not None:
            try:
                self.extra_check(out, where)
            except Invalid as exc:
                problems.append(str(exc))
                return {}
        return out


class Request(Schema):
    """A RenderRequest.to_dict(): every field's type first (so that nothing reaches the engine's constructor with a
    wrong type), then the engine's own check (ranges, modes, cross-field rules). Returns the dict as given."""

    def _check(self, value, where):
        REQUEST_FIELDS.check(value, where)
        try:
            req = RenderRequest.from_dict(value)
            check_request(req)
        except RequestError as exc:
            raise Invalid(where, str(exc)) from None
        return value

    @staticmethod
    def build(value, where: str = "request") -> RenderRequest:
        """The checked RenderRequest for `value`; Invalid otherwise."""
        Request().check(value, where)
        try:
            return check_request(RenderRequest.from_dict(value))
        except RequestError as exc:  # pragma: no cover - checked just above
            raise Invalid(where, str(exc)) from None


def _upfb_rule(v: dict, where: str) -> None:
    if "sigma_min" in v and "sigma_max" in v and v["sigma_min"] > v["sigma_max"]:
        raise Invalid(f"{where}.sigma_min" if where else "sigma_min",
                      f"({v['sigma_min']}) must not exceed sigma_max ({v['sigma_max']})")


UPFB_FIELDS = Obj({
    "gamma_hf": Num(0.0, 10.0),
    "sigma_min": Num(0.0, 100.0),
    "sigma_max": Num(0.0, 100.0),
    "light_lead": Int(0, MAX_STEPS),
}, check=_upfb_rule)

REQUEST_FIELDS = Obj({
    "prompt": Field(Str(MAX_PROMPT_CHARS, non_empty=True), required=True),
    "negative_prompt": Str(MAX_NEGATIVE_CHARS),
    "mode": OneOf(MODES),
    "handoff": Num(0.0, 1.0),
    "gamma_w": Num(0.0, 1e6, nullable=True),
    "upfb": UPFB_FIELDS,
    "switch_step": Int(0, MAX_STEPS, nullable=True),
    "steps": Int(1, MAX_STEPS),
    "num_frames": Int(1, MAX_FRAMES),
    "width": Int(16, MAX_SIDE),
    "height": Int(16, MAX_SIDE),
    "seed": Int(0, MAX_SEED),
    "guidance_light": Num(0.0, 50.0),
    "guidance_heavy": Num(0.0, 50.0),
    "scheduler": Str(32),
    "flow_shift": Num(0.01, 100.0, nullable=True),
    "plan": Str(MAX_PLAN_CHARS, nullable=True),
    "use_plan": Bool(),
})

# The settings panel's values (Project.settings, Settings.render): what SettingsPanel.set_values may be given.
PANEL_FIELDS = Obj({
    "width": Int(16, MAX_SIDE),
    "height": Int(16, MAX_SIDE),
    "num_frames": Int(1, MAX_FRAMES),
    "steps": Int(1, MAX_STEPS),
    "guidance_light": Num(0.0, 50.0),
    "guidance_heavy": Num(0.0, 50.0),
    "seed": Int(0, MAX_SEED),
    "seed_locked": Bool(),
    "scheduler": Str(32),
    "upfb": UPFB_FIELDS,
})

TAKE_ID = Str(100, pattern=TAKE_ID_RE)

# What the app reads from a take's metadata (the rest is kept as it is: it was written by the engine).
METADATA_FIELDS = Obj({
    "request": Any(),
    "plan": Str(MAX_PLAN_CHARS, nullable=True),
    "flow_shift": Num(0.01, 100.0, nullable=True),
    "models": Obj({"light": Str(MAX_PATH_CHARS, nullable=True), "heavy": Str(MAX_PATH_CHARS, nullable=True),
                   "understanding": Any()}, nullable=True),
    "fps": Num(1, MAX_FPS, nullable=True),
    "frames": Int(0, 100_000, nullable=True),
    "size": ListOf(Int(0, 65_536), 2),
    "render_seconds": Num(0.0, 1e9, nullable=True),
})


class Metadata(Schema):
    """A take's metadata: an object whose fields the app reads are checked; other keys are kept as they are."""

    def _check(self, value, where):
        METADATA_FIELDS.check(value, where)
        return value


# Optional take-record fields: a bad one keeps its default (and is reported), the take stays.
TAKE_FIELDS = Obj({
    "name": Str(MAX_NAME_CHARS),
    "starred": Bool(),
    "created": Num(0.0, 1e12),
    "elapsed": Num(0.0, 1e9),
    "fps": Int(1, MAX_FPS),
    "num_frames": Int(0, 100_000),
    "width": Int(0, 65_536),
    "height": Int(0, 65_536),
    "metadata": Metadata(),
    "base_id": Str(100, pattern=TAKE_ID_RE, nullable=True),
})

QUEUE_ENTRY = Obj({
    "key": Str(1_000_000, nullable=True),
    "request": Field(Request(), required=True),
    "kind": OneOf(("draft", "refine")),
    "label": Str(MAX_NAME_CHARS),
    "base_id": Str(100, pattern=TAKE_ID_RE, nullable=True),
})

PROJECT_FIELDS = Obj({
    "name": Str(MAX_NAME_CHARS),
    "created": Num(0.0, 1e12),
    "prompt": Str(MAX_TEXT_CHARS),
    "negative_prompt": Str(MAX_TEXT_CHARS),
    "plan": Str(MAX_TEXT_CHARS),
    "plan_instruction": Str(MAX_TEXT_CHARS, nullable=True),
    "plan_edited": Bool(),
    "use_plan": Bool(),
    "current_take": Str(100, nullable=True),
    "base_draft": Str(100, nullable=True),
})

PATH_TEXT = Str(MAX_PATH_CHARS, no_nul=True)

# LoRAs. The settings keep each generator's list as [[file, strength], ...]; a take's metadata records
# {"light": [{"name", "sha256", "scale"}, ...], "heavy": [...]} (engine/lora.py writes it).
MAX_LORAS = 16  # per generator in the settings (the picker's lists)
MAX_LORA_RECORDS = 64  # per generator in a take's metadata (what `reproduce` accepts)
MAX_LORA_STRENGTH = 100.0  # the engine's limit; the picker offers -4..4
LORA_STRENGTH = Num(-MAX_LORA_STRENGTH, MAX_LORA_STRENGTH)
LORA_FILE = Str(MAX_PATH_CHARS, non_empty=True, no_nul=True)


class LoraEntry(Schema):
    """One settings entry [file, strength] -> [file, strength as a float]."""

    def _check(self, value, where):
        if not isinstance(value, list) or len(value) != 2:
            raise Invalid(where, f"must be [file, strength], got {show(value)}")
        return [LORA_FILE.check(value[0], f"{where}[0]"), float(LORA_STRENGTH.check(value[1], f"{where}[1]"))]


LORA_LIST = ListOf(LoraEntry(), MAX_LORAS)

LORA_RECORD = Obj({
    "name": Field(Str(MAX_NAME_CHARS, non_empty=True, no_nul=True), required=True),
    "sha256": Field(Str(64, pattern=re.compile(r"[0-9a-f]{64}")), required=True),
    "scale": LORA_STRENGTH,
})

# Read leniently (LORA_RECORDS.read): a bad record is left out and named, the take's other settings stay.
LORA_RECORDS = Obj({"light": ListOf(LORA_RECORD, MAX_LORA_RECORDS), "heavy": ListOf(LORA_RECORD, MAX_LORA_RECORDS)})

SETTINGS_FIELDS = Obj({
    "geometry": Str(65_536),
    "window_state": Str(65_536),
    "splitter": Str(65_536),
    "last_project": PATH_TEXT,
    "recent_projects": ListOf(PATH_TEXT, MAX_RECENT),
    "last_export_dir": PATH_TEXT,
    "export_crf": Int(0, 51),
    "recent_prompts": ListOf(Str(MAX_TEXT_CHARS), MAX_RECENT),
    "model_light": PATH_TEXT,
    "model_heavy": PATH_TEXT,
    "model_family": OneOf(("",) + tuple(MODEL_FAMILIES)),
    "model_understanding": PATH_TEXT,
    "model_planner": PATH_TEXT,
    "model_heavy_reads": OneOf(HEAVY_READS),
    "model_device": Str(32, pattern=re.compile(r"[A-Za-z0-9:_-]{1,32}")),
    "model_offload": Bool(),
    "model_memory": OneOf(MEMORY_CHOICES),
    "model_lora_light": LORA_LIST,
    "model_lora_heavy": LORA_LIST,
    "render": PANEL_FIELDS,
    "defaults_applied_for": Str(2 * MAX_PATH_CHARS + 64),  # [family:]light|heavy
    "debounce_ms": Int(50, 5000),
})


# -- paths confined to a project folder ------------------------------------------------------------------------
def confined_take_path(folder: Path, rel, suffix: str) -> Path | None:
    """`folder / rel` when `rel` is a plain relative path "takes/<name><suffix>" that, symlinks resolved, stays in
    the project's takes folder; None for anything else (absolute, "..", another folder, a link leading out)."""
    if not isinstance(rel, str) or not rel or len(rel) > MAX_NAME_CHARS or "\x00" in rel or "\\" in rel:
        return None
    posix, windows = PurePosixPath(rel), PureWindowsPath(rel)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or ":" in rel:
        return None
    parts = posix.parts
    if len(parts) != 2 or parts[0] != TAKES_FOLDER or parts[1] in (".", "..") or parts[1].startswith("."):
        return None
    if not parts[1].lower().endswith(suffix) or len(parts[1]) <= len(suffix):
        return None
    path = Path(folder) / parts[0] / parts[1]
    try:
        root = Path(folder).resolve()
        base = (Path(folder) / TAKES_FOLDER).resolve()
        resolved = path.resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    if base.parent != root or resolved.parent != base:  # a takes folder or file that links elsewhere
        return None
    return path


def check_take_path(folder: Path, rel, where: str, suffix: str):
    """Schema-style check of a take's file/thumbnail entry: None, or a confined relative path."""
    if rel is None:
        return None
    if confined_take_path(folder, rel, suffix) is None:
        raise Invalid(where, f"must name a file inside the project's {TAKES_FOLDER} folder, got {show(rel)}")
    return rel
