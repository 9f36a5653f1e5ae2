"""MP4 export (H.264, yuv420p, +faststart) with the take's metadata in the container, written atomically.

imageio-ffmpeg's bundled ffmpeg does the encoding. Its pitfalls (docs/design.md §7): odd sizes fail inside ffmpeg while
Python sees nothing and a 0-byte file is left, and frames must be C-contiguous uint8. So we check sizes first,
write to a temporary name beside the target, read the result back (frame count, size), then rename.

We start ffmpeg ourselves rather than through imageio-ffmpeg's writer: that one lets ffmpeg print to our stderr and
does not look at its exit status, so a failure showed ffmpeg's banner and was found only at the read-back. Here
ffmpeg's messages are kept, and a failure is reported as its one line that matters (an OS error: "No space left on
device", "File too large", ...).

The temporary name carries the writing process's id and host (`.<stem>.<pid>-<host>-<random>.partial.mp4`), so a
file left by a killed export is recognised as stale and removed by the next export into that folder.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from fractions import Fraction
from pathlib import Path

import numpy as np

from .errors import ExportError

METADATA_KEY = "comment"
METADATA_PREFIX = "lumos-take:"
MAX_FPS = 240
MAX_CRF = 51
MAX_SCALE = 16
MAX_EXPORT_SIDE = 8192  # the encoded width and height (after --scale); beyond, x264 and the players give up
# ffmpeg gets the metadata as one argument; Linux refuses a single argument over 128 KiB ("Argument list too long")
MAX_METADATA_BYTES = 120_000

PARTIAL_SUFFIX = ".partial.mp4"
_HOST = hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:4]
_PARTIAL = re.compile(r"^\..+\.(?P<pid>\d+)-(?P<host>[0-9a-f]{4})-[0-9a-f]{8}\.partial\.mp4$")
_OLD_PARTIAL = re.compile(r"^\..+\.[0-9a-f]{8}\.partial\.mp4$")  # before the pid was in the name
OLD_PARTIAL_STALE_S = 60.0  # no pid to ask: a writer touches its file far more often than this
ORPHAN_STALE_S = 3600.0  # another host's, or a pid that may have been reused: unchanged for an hour
# errors whose own words say what happened; the first ones get a hint
_DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
_OS_REASONS = [os.strerror(e) for e in (*_DISK_FULL, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM,
                                         errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.EIO)]


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def check_export_options(fps, crf, scale) -> None:
    """Raise ExportError for an fps, quality or scale export_mp4 would refuse (callers check before rendering)."""
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 1 <= fps <= MAX_FPS:
        raise ExportError(f"fps must be between 1 and {MAX_FPS}, got {fps!r}")
    if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= MAX_CRF:
        raise ExportError(f"quality (CRF) must be a whole number from 0 to {MAX_CRF}, got {crf!r}")
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= MAX_SCALE:
        raise ExportError(f"scale must be a whole number from 1 to {MAX_SCALE}, got {scale!r}")


def _check_frames(frames: np.ndarray) -> np.ndarray:
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ExportError(f"frames must be an array [frames, height, width, 3], got {getattr(frames, 'shape', None)}")
    _, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ExportError(f"H.264 (yuv420p) needs an even width and height; this take is {w}x{h}")
    if frames.dtype != np.uint8:
        raise ExportError(f"frames must be uint8, got {frames.dtype}")
    return np.ascontiguousarray(frames)


def ffmpeg_reason(text: str) -> str:
    """The line of ffmpeg's output that says what went wrong, without its banner, configuration and prefixes."""
    lines = []
    for line in str(text).splitlines():
        line = line.strip()
        if not line or line.startswith(("ffmpeg version", "built with", "configuration:", "FFMPEG ", "Input #",
                                        "Output #", "Stream #", "Duration:", "Metadata:")):
            continue
        if re.match(r"^lib\w+\s+\d+\.", line) or " -i " in line:
            continue  # library versions, the command line
        lines.append(re.sub(r"^\[[^\]]*\]\s*", "", line))  # "[out#0/mp4 @ 0x55...] "
    for line in reversed(lines):
        for reason in _OS_REASONS:
            if reason.lower() in line.lower():
                return reason
    return lines[-1] if lines else "ffmpeg failed without a message"


def _failure(target: Path, reason: str) -> ExportError:
    hint = ""
    if reason in (os.strerror(e) for e in _DISK_FULL):
        hint = " (the disk is full: free some space or export to another folder)"
    return ExportError(f"could not write {target}: {reason}{hint}")


def check_export_size(width: int, height: int, scale: int) -> None:
    """ExportError when a take of width x height, upscaled `scale` times, is larger than an MP4 export can be."""
    if max(width, height) * scale > MAX_EXPORT_SIDE:
        raise ExportError(f"a {width}x{height} take at scale {scale} would be {width * scale}x{height * scale}; "
                          f"exports are at most {MAX_EXPORT_SIDE} pixels wide and high: use a smaller scale")


def _upscale(frame: np.ndarray, scale: int) -> np.ndarray:
    """One frame, upscaled as it is written (a whole take upscaled at once could need tens of GB)."""
    if scale == 1:
        return frame
    import cv2

    return np.ascontiguousarray(cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC))


def export_mp4(frames: np.ndarray, path: str | os.PathLike, *, fps: int = 16, crf: int = 18, metadata: dict | None = None,
               scale: int = 1, overwrite: bool = True) -> Path:
    """Encode `frames` (uint8 [F, H, W, 3]) to `path` and return the final path.

    crf: x264 quality, 0 (lossless) .. 51 (worst); 18 is visually lossless. scale: integer upscale before encoding
    (the embedded models render 64x64). Raises ExportError with a clear message; never leaves a partial file (also
    when interrupted: KeyboardInterrupt removes it), and removes stale ones that killed exports left in the folder.
    """
    target = Path(os.path.expanduser(str(path)))
    if target.suffix.lower() != ".mp4":
        raise ExportError(f"export to an .mp4 file, got {target.name!r}")
    check_export_options(fps, crf, scale)
    frames = _check_frames(frames)
    check_export_size(frames.shape[2], frames.shape[1], scale)
    folder = target.parent
    if not folder.is_dir():
        raise ExportError(f"the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise ExportError(f"cannot write to {folder}: permission denied; choose another folder")
    if target.exists() and not overwrite:
        raise ExportError(f"{target} already exists")
    if target.is_dir():
        raise ExportError(f"{target} is a folder")
    meta_arg = None
    if metadata is not None:
        meta_arg = f"{METADATA_KEY}={METADATA_PREFIX}{json.dumps(metadata, separators=(',', ':'))}"
        if len(meta_arg.encode("utf-8")) > MAX_METADATA_BYTES:
            raise ExportError(f"the take's settings are {len(meta_arg.encode('utf-8')) // 1000} KB as metadata; "
                              f"at most {MAX_METADATA_BYTES // 1000} KB fit in an MP4 export")
    remove_stale_partials(folder)

    count, height, width = len(frames), frames.shape[1] * scale, frames.shape[2] * scale
    tmp = partial_path(target)
    try:
        # create it ourselves first: a path we cannot write is reported with its real reason, not ffmpeg's
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except OSError as exc:
        raise _failure(target, exc.strerror or str(exc)) from None
    try:
        _encode(frames, tmp, fps=fps, crf=crf, meta_arg=meta_arg, target=target, scale=scale)
        got_count, got_size = _read_back(tmp, target)
        if got_count != count or got_size != (width, height):
            raise ExportError(f"the written file does not match the take ({got_count} frames of {got_size}, "
                              f"expected {count} of {(width, height)})")
        os.replace(tmp, target)
    except BaseException:  # ExportError, an OS error, Ctrl+C: no partial file stays behind
        _remove(tmp)
        raise
    return target


def _encode(frames: np.ndarray, tmp: Path, *, fps, crf: int, meta_arg: str | None, target: Path,
            scale: int = 1) -> None:
    """Pipe raw RGB frames into ffmpeg (the command imageio-ffmpeg's writer builds), its messages kept aside."""
    height, width = frames.shape[1] * scale, frames.shape[2] * scale
    cmd = [_ffmpeg(), "-y", "-f", "rawvideo", "-vcodec", "rawvideo", "-s", f"{width}x{height}", "-pix_fmt", "rgb24",
           "-r", str(Fraction(fps).limit_denominator()), "-i", "-", "-an", "-vcodec", "libx264", "-pix_fmt", "yuv420p",
           "-v", "error", "-preset", "veryfast", "-crf", str(crf), "-movflags", "+faststart"]
    if meta_arg is not None:
        cmd += ["-metadata", meta_arg]
    cmd.append(str(tmp))
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a chatty ffmpeg can never block on it
        try:
            # its own session: Ctrl+C in a terminal reaches us, and we stop ffmpeg and remove its file
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log,
                                    start_new_session=True)
        except OSError as exc:
            raise ExportError(f"could not start ffmpeg: {exc.strerror or exc}") from None
        try:
            try:
                for frame in frames:
                    proc.stdin.write(_upscale(frame, scale).tobytes())
                proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass  # ffmpeg stopped reading; its exit status and message say why
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if code < 0:  # killed by a signal: a file-size limit, or the system out of memory
            reason = os.strerror(errno.EFBIG) if code == -getattr(signal, "SIGXFSZ", 0) else (
                f"ffmpeg was stopped by signal {-code}")
            raise _failure(target, reason)
        if code != 0:
            log.seek(0)
            raise _failure(target, ffmpeg_reason(log.read().decode("utf-8", "replace")))


def _read_back(tmp: Path, target: Path) -> tuple[int, tuple[int, int]]:
    """(frames, (width, height)) of the written file, decoded by ffmpeg again."""
    import imageio_ffmpeg

    try:
        got_count, _ = imageio_ffmpeg.count_frames_and_secs(str(tmp))
        reader = imageio_ffmpeg.read_frames(str(tmp))
        try:
            meta = next(reader)
        finally:
            reader.close()
    except (OSError, RuntimeError, StopIteration) as exc:
        raise _failure(target, "the written file cannot be read back: " + ffmpeg_reason(str(exc))) from None
    return got_count, tuple(meta["size"])


def partial_path(target: Path) -> Path:
    """Where an export of `target` is written before its final rename (hidden; names its writer, see module doc)."""
    stem = target.stem[:100]  # a long target name must still leave room for ours within the 255-byte limit
    return target.parent / f".{stem}.{os.getpid()}-{_HOST}-{uuid.uuid4().hex[:8]}{PARTIAL_SUFFIX}"


def _pid_alive(pid: int) -> bool:
    if sys.platform.startswith("win"):  # os.kill(pid, 0) would end it there; the age rule decides instead
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process
        return True
    return True


def remove_stale_partials(folder: str | os.PathLike) -> list[Path]:
    """Remove partial exports a killed export left in `folder`: only names of our own pattern, and only when their
    writer is gone (a dead pid on this host), or, without a pid to ask, when unchanged for a while. Returns them."""
    removed = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and name.endswith(PARTIAL_SUFFIX)):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        match = _PARTIAL.match(name)
        if match:
            pid, here = int(match["pid"]), match["host"] == _HOST
            stale = (here and pid != os.getpid() and not _pid_alive(pid)) or age > ORPHAN_STALE_S
        else:
            stale = bool(_OLD_PARTIAL.match(name)) and age > OLD_PARTIAL_STALE_S
        if stale:
            try:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except OSError:
                pass
    return removed


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _unescape_ffmetadata(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            out.append(value[i + 1])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def read_metadata(path: str | os.PathLike) -> dict:
    """The take metadata stored by `export_mp4` in `path`; ExportError (one line) when the file has none, is not a
    video, or its metadata is damaged (not UTF-8, not JSON, nested too deep, numbers too long)."""
    path = Path(path)
    if not path.exists():
        raise ExportError(f"no such file: {path}")
    if not path.is_file():
        raise ExportError(f"{path} is not a file; give an MP4 exported by Lumos Studio")
    try:
        proc = subprocess.run([_ffmpeg(), "-v", "error", "-i", str(path), "-f", "ffmetadata", "-"],
                              capture_output=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise ExportError(f"{path.name}: reading its metadata took over a minute; is it a video?") from None
    except OSError as exc:
        raise ExportError(f"could not run ffmpeg to read {path.name}: {exc.strerror or exc}") from None
    if proc.returncode != 0:
        reason = ffmpeg_reason(proc.stderr.decode("utf-8", "replace"))
        raise ExportError(f"{path.name} is not a readable video ({reason[:150]})")
    # other tags may hold any bytes; only our comment has to be UTF-8
    for line in proc.stdout.decode("utf-8", "surrogateescape").splitlines():
        if line.startswith(METADATA_KEY + "="):
            value = _unescape_ffmetadata(line[len(METADATA_KEY) + 1:])
            if not value.startswith(METADATA_PREFIX):
                continue
            damaged = f"{path.name}'s Lumos Studio metadata is damaged"
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ExportError(f"{damaged}: it is not UTF-8 text") from None
            try:
                data = json.loads(value[len(METADATA_PREFIX):])
            except RecursionError:
                raise ExportError(f"{damaged}: its values are nested too deeply") from None
            except ValueError as exc:  # not JSON, or a number of thousands of digits
                raise ExportError(f"{damaged}: {str(exc).split(':')[0][:100]}") from None
            if not isinstance(data, dict):
                raise ExportError(f"{damaged}: it is not a JSON object")
            return data
    raise ExportError(f"{path.name} carries no Lumos Studio take metadata (was it exported by Lumos Studio?)")
