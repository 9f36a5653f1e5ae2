"""Reading take files back for playback (the engine writes them; the app only needs pixels to show)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def read_mp4_frames(path: str | Path) -> np.ndarray:
    """All frames of an MP4 as uint8 [F, H, W, 3]. Raises OSError with the path when it cannot be read."""
    import imageio_ffmpeg

    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
        w, h = meta["size"]
        frames = [np.frombuffer(buf, np.uint8).reshape(h, w, 3) for buf in reader]
    except (RuntimeError, StopIteration, ValueError) as exc:
        raise OSError(f"cannot read {path}: {exc}") from None
    if not frames:
        raise OSError(f"{path} holds no frames")
    return np.ascontiguousarray(np.stack(frames))
