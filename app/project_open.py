"""Opening a project as the window does, and reading takes back from MP4 files. No Qt here.

open_project locks the folder (read-only when another instance has it), cleans what a crash left (our own temp
files and partial exports), adds back takes whose MP4 is in the takes folder but whose record is missing, and says
in one message what it found. restore_from_metadata checks a dropped MP4's settings (untrusted input) before the
window uses them.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from engine.api import ProjectError, RenderRequest, RequestError, read_take_metadata, remove_stale_partials

from . import schema
from .project import (
    PROJECT_FILE,
    STALE_TMP_RE,
    Project,
    TakeRecord,
    new_take_id,
)
from .schema import Invalid
from .settings import keep_damaged_copy, summarize
from .take_origin import MadeWith, made_with

log = logging.getLogger(__name__)


@dataclass
class Opened:
    """What opening a project found, for one banner."""

    project: Project
    message: str | None = None
    level: str = "info"

    @property
    def read_only(self) -> bool:
        return self.project.read_only


def open_project(path: str | Path, *, create: bool = False, current: Project | None = None) -> Opened:
    """Open (or, with `create`, start) the project at `path` for editing, as the window does.

    Locks the folder (read-only when another instance has it); when locked, removes stale temp files of our own
    naming, adds back take files whose records are missing, and keeps a damaged project.json aside before the next
    save rewrites it. `current`: the project open now; re-opening its folder takes over its lock.
    Raises ProjectError (the message says why) when there is no usable project there."""
    path = Path(path)
    folder, file = (path, path / PROJECT_FILE) if path.suffix != ".json" else (path.parent, path)
    try:
        if folder.exists() and not folder.is_dir():
            raise ProjectError(f"{folder} is a file, not a project folder.")
        exists = file.exists()
    except (OSError, ValueError) as exc:  # no permission, a NUL in the name
        raise ProjectError(f"cannot open the project {folder}: {getattr(exc, 'strerror', None) or exc}") from None
    project = Project.load(file) if exists or not create else Project(folder=folder, name=folder.name)
    reused = (current is not None and current.lock is not None and current.lock.held
              and _same_folder(current.folder, folder))
    if reused:
        project.lock, current.lock = current.lock, None
        lock_problem = None
    else:
        lock_problem = project.acquire_lock()
    notes: list[str] = []
    level = "info"
    if lock_problem:
        notes.append(lock_problem)
        level = "warning"
    elif not reused:  # (re-opened by the window that has it: no crash to clean up, and its autosave may be writing)
        remove_stale_files(folder)
        added = recover_takes(project)
        if added:
            notes.append(f"{added} take{'s' if added > 1 else ''} found in the takes folder "
                         f"{'were' if added > 1 else 'was'} added back to the project.")
    if project.problems:
        level = "warning"
        text = (f"{PROJECT_FILE} had {len(project.problems)} value{'s' if len(project.problems) > 1 else ''} that "
                f"could not be used ({summarize(project.problems)}); defaults are used instead.")
        if not project.read_only and project.source_bytes is not None:
            try:
                kept = keep_damaged_copy(project.file, project.source_bytes)
                text += f" The original file is kept as {kept.name}."
            except OSError as exc:
                text += f" The original file could not be kept aside ({exc.strerror or exc})."
        notes.append(text)
    if project.unreadable_takes:
        level = "warning"
        n = len(project.unreadable_takes)
        notes.append(f"{n} take record{'s' if n > 1 else ''} could not be read and {'are' if n > 1 else 'is'} kept "
                     f"in {PROJECT_FILE} as {'they are' if n > 1 else 'it is'}, not shown "
                     f"({summarize(project.unreadable_problems)}).")
    return Opened(project, " ".join(notes) or None, level)


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def unused_copy_dir(folder: Path) -> Path:
    """"<name> copy", "<name> copy 2", ... beside `folder`."""
    folder = Path(folder)
    for i in range(1, 10_000):
        candidate = folder.parent / (f"{folder.name} copy" if i == 1 else f"{folder.name} copy {i}")
        if not candidate.exists():
            return candidate
    return folder.parent / f"{folder.name} copy {uuid.uuid4().hex[:6]}"


def remove_stale_files(folder: Path) -> list[Path]:
    """Remove what a crash (kill -9) can leave in a project: temp files of our atomic writes and partial MP4
    exports. Only names of our own pattern, only plain files; call it while holding the folder's lock."""
    folder = Path(folder)
    # Partial exports: the engine knows its naming, and asks whether the writing process still runs.
    removed = [Path(p) for p in remove_stale_partials(folder / "takes")]
    for where, takes in ((folder, False), (folder / "takes", True)):
        try:
            entries = list(os.scandir(where))
        except OSError:
            continue
        for entry in entries:
            m = STALE_TMP_RE.fullmatch(entry.name)
            ours = m is not None and (takes or m.group("target").startswith(PROJECT_FILE))
            try:
                if not ours or not entry.is_file(follow_symlinks=False):
                    continue
                os.unlink(entry.path)
            except OSError as exc:
                log.warning("cannot remove the leftover %s: %s", entry.path, exc)
                continue
            log.info("removed the leftover %s", entry.path)
            removed.append(Path(entry.path))
    return removed


def recover_takes(project: Project) -> int:
    """Add back takes whose MP4 is in the takes folder but whose record is missing (a crash between writing the
    file and saving the project, or two instances on one folder before locking). Returns how many were added;
    files that cannot be read are listed in `project.unreadable_problems` and left alone."""
    takes_dir = project.takes_dir
    try:
        entries = sorted(os.scandir(takes_dir), key=lambda e: e.name)
    except OSError:
        return 0
    referenced = {t.file for t in project.takes if t.file}
    referenced |= {r.get("file") for r in project.unreadable_takes if isinstance(r, dict)}
    by_id = {t.id: t for t in project.takes}
    added = 0
    for entry in entries:
        rel = f"{schema.TAKES_FOLDER}/{entry.name}"
        if (not entry.name.lower().endswith(".mp4") or entry.name.startswith(".") or rel in referenced
                or not entry.is_file(follow_symlinks=False)
                or schema.confined_take_path(project.folder, rel, ".mp4") is None):
            continue
        stem = entry.name[:-4]
        thumb = f"{schema.TAKES_FOLDER}/{stem}.png"
        thumb = thumb if schema.confined_take_path(project.folder, thumb, ".png") and (
            project.folder / thumb).is_file() else None
        known = by_id.get(stem)
        if known is not None:
            if known.file is None:  # the record was saved before its file was written
                known.file = rel
                known.thumbnail = known.thumbnail or thumb
            continue
        try:
            meta = read_take_metadata(entry.path)
            take_id = stem if schema.TAKE_ID_RE.fullmatch(stem) and stem not in by_id else new_take_id()
            record = take_from_metadata(meta, take_id, rel, thumb, entry.stat().st_mtime)
        except Exception as exc:  # an MP4 is untrusted input: whatever fails, it is reported, not fatal
            project.unreadable_problems.append(f"{rel} has no usable take settings ({exc})")
            continue
        project.takes.append(record)
        by_id[record.id] = record
        added += 1
    return added


def take_from_metadata(meta, take_id: str, file: str | None, thumbnail: str | None, created: float) -> TakeRecord:
    """A take record for an MP4 exported by Lumos Studio, from its metadata; schema.Invalid when unusable."""
    if not isinstance(meta, dict):
        raise Invalid("metadata", f"must be an object, got {schema.show(meta)}")
    schema.check_document(meta, "its metadata")
    schema.Metadata().check(meta, "metadata")
    request = schema.Request().check(meta.get("request"), "metadata.request")
    # Frames and size as recorded, else as requested (a take file holds exactly what was rendered).
    size = meta.get("size") if isinstance(meta.get("size"), list) and len(meta["size"]) == 2 else None
    width, height = size if size else (request.get("width", 0), request.get("height", 0))
    fps = meta.get("fps")
    return TakeRecord(id=take_id, request=dict(request), created=float(created),
                      elapsed=float(meta.get("render_seconds") or 0.0),
                      fps=int(fps) if isinstance(fps, int) and 1 <= fps <= schema.MAX_FPS else 16,
                      num_frames=int(meta.get("frames") or request.get("num_frames", 0)), width=int(width),
                      height=int(height), file=file, thumbnail=thumbnail, metadata=meta)


@dataclass
class Restored:
    """What an MP4's metadata gives the window (drop-to-reproduce)."""

    request: RenderRequest  # checked: "Render it" renders exactly this
    panel: dict  # the settings panel's values it sets
    plan: str | None  # the plan the understanding block wrote for it, when the request does not carry one
    # the LoRAs it recorded, {"light": [{"name", "sha256", "scale"}], "heavy": [...]}: checked, looked up later
    loras: dict = field(default_factory=lambda: {"light": [], "heavy": []})
    lora_problems: list = field(default_factory=list)  # records that could not be read (left out, named)
    made: MadeWith = field(default_factory=MadeWith)  # the family / planner / models that made it (app.take_origin)


def restore_from_metadata(meta) -> Restored:
    """Check a dropped MP4's metadata (untrusted: every value the app uses) and turn it into a request and the
    settings panel's values. Raises RequestError with a message naming the bad value."""
    try:
        if not isinstance(meta, dict):
            raise Invalid("", "it holds no take settings")
        schema.check_document(meta, "its metadata")
        schema.Metadata().check(meta, "")
        if "request" not in meta:
            raise Invalid("request", "is missing")
        req = schema.Request.build(meta["request"], "request")
    except Invalid as exc:
        raise RequestError(str(exc)) from None
    panel = {"width": req.width, "height": req.height, "num_frames": req.num_frames, "steps": req.steps,
             "guidance_light": req.guidance_light, "guidance_heavy": req.guidance_heavy, "seed": req.seed,
             "scheduler": req.scheduler, "upfb": req.upfb.to_dict()}
    plan = meta.get("plan") if isinstance(meta.get("plan"), str) and meta.get("plan") else None
    problems: list[str] = []
    loras = schema.LORA_RECORDS.read(meta["loras"], "loras", problems) if meta.get("loras") is not None else {}
    loras = {role: loras.get(role, []) for role in ("light", "heavy")}
    return Restored(req, schema.PANEL_FIELDS.check(panel, "settings"), plan, loras, problems, made_with(meta))
