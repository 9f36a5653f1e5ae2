"""MP4 export (H.264, yuv420p, +faststart) with the take's metadata in the container, written atomically.

imageio-ffmpeg's bundled ffmpeg does the encoding. Its pitfalls (DESIGN §7): odd sizes fail inside ffmpeg while
Python sees nothing and a 0-byte file is left, and frames must be C-contiguous uint8. So we check sizes first,
write to a temporary name beside the target, read the result back (frame count, size), then rename.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import numpy as np

from .errors import ExportError

METADATA_KEY = "comment"
METADATA_PREFIX = "lumos-take:"


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _check_frames(frames: np.ndarray) -> np.ndarray:
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise ExportError(f"frames must be an array [frames, height, width, 3], got {getattr(frames, 'shape', None)}")
    _, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ExportError(f"H.264 (yuv420p) needs an even width and height; this take is {w}x{h}")
    if frames.dtype != np.uint8:
        raise ExportError(f"frames must be uint8, got {frames.dtype}")
    return np.ascontiguousarray(frames)


def _upscale(frames: np.ndarray, scale: int) -> np.ndarray:
    if scale == 1:
        return frames
    import cv2

    return np.stack([cv2.resize(f, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC) for f in frames])


def export_mp4(frames: np.ndarray, path: str | os.PathLike, *, fps: int = 16, crf: int = 18, metadata: dict | None = None,
               scale: int = 1, overwrite: bool = True) -> Path:
    """Encode `frames` (uint8 [F, H, W, 3]) to `path` and return the final path.

    crf: x264 quality, 0 (lossless) .. 51 (worst); 18 is visually lossless. scale: integer upscale before encoding
    (the embedded models render 64x64). Raises ExportError with a clear message; never leaves a partial file.
    """
    import imageio_ffmpeg

    target = Path(os.path.expanduser(str(path)))
    if target.suffix.lower() != ".mp4":
        raise ExportError(f"export to an .mp4 file, got {target.name!r}")
    if not isinstance(fps, (int, float)) or not 1 <= fps <= 240:
        raise ExportError(f"fps must be between 1 and 240, got {fps!r}")
    if not isinstance(crf, int) or not 0 <= crf <= 51:
        raise ExportError(f"quality (CRF) must be a whole number from 0 to 51, got {crf!r}")
    if not isinstance(scale, int) or not 1 <= scale <= 16:
        raise ExportError(f"scale must be a whole number from 1 to 16, got {scale!r}")
    frames = _check_frames(_upscale(_check_frames(frames), scale))
    folder = target.parent
    if not folder.is_dir():
        raise ExportError(f"the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise ExportError(f"cannot write to {folder}: permission denied; choose another folder")
    if target.exists() and not overwrite:
        raise ExportError(f"{target} already exists")
    if target.is_dir():
        raise ExportError(f"{target} is a folder")

    count, height, width = len(frames), frames.shape[1], frames.shape[2]
    tmp = folder / f".{target.stem}.{uuid.uuid4().hex[:8]}.partial.mp4"
    params = ["-preset", "veryfast", "-crf", str(crf), "-movflags", "+faststart"]
    if metadata is not None:
        params += ["-metadata", f"{METADATA_KEY}={METADATA_PREFIX}{json.dumps(metadata, separators=(',', ':'))}"]
    try:
        writer = imageio_ffmpeg.write_frames(str(tmp), (width, height), fps=fps, codec="libx264", quality=None,
                                             pix_fmt_in="rgb24", pix_fmt_out="yuv420p", macro_block_size=1,
                                             output_params=params, ffmpeg_log_level="error")
        writer.send(None)
        for frame in frames:
            writer.send(frame)
        writer.close()
        got_count, _ = imageio_ffmpeg.count_frames_and_secs(str(tmp))
        reader = imageio_ffmpeg.read_frames(str(tmp))
        meta = next(reader)
        reader.close()
        if got_count != count or tuple(meta["size"]) != (width, height):
            raise ExportError(f"the written file does not match the take ({got_count} frames of {meta['size']}, "
                              f"expected {count} of {(width, height)})")
        os.replace(tmp, target)
    except ExportError:
        _remove(tmp)
        raise
    except (OSError, RuntimeError, StopIteration) as exc:
        _remove(tmp)
        free = shutil.disk_usage(folder).free
        hint = " The disk is full." if free < max(frames.nbytes, 1 << 20) else ""
        raise ExportError(f"could not write {target}: {exc}.{hint}") from None
    return target


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
    """The take metadata stored by `export_mp4` in `path`; ExportError when the file has none or is unreadable."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"no such file: {path}")
    proc = subprocess.run([_ffmpeg(), "-v", "error", "-i", str(path), "-f", "ffmetadata", "-"],
                          capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise ExportError(f"{path.name} is not a readable video: {proc.stderr.strip()[:200]}")
    for line in proc.stdout.splitlines():
        if line.startswith(METADATA_KEY + "="):
            value = _unescape_ffmetadata(line[len(METADATA_KEY) + 1:])
            if value.startswith(METADATA_PREFIX):
                try:
                    data = json.loads(value[len(METADATA_PREFIX):])
                except json.JSONDecodeError:
                    break
                if isinstance(data, dict):
                    return data
    raise ExportError(f"{path.name} carries no Lumos Studio take metadata (was it exported by Lumos Studio?)")
