"""MP4 export: read back by an independent decoder (OpenCV), metadata survives, bad paths leave nothing."""

import os

import cv2
import numpy as np
import pytest

from engine.errors import ExportError
from engine.export import export_mp4, read_metadata


def _frames(n=9, h=48, w=64, seed=0):
    rng = np.random.default_rng(seed)
    base = np.zeros((n, h, w, 3), np.uint8)
    for i in range(n):  # a moving bright square on a gradient: something a codec must really keep
        base[i] = np.linspace(0, 200, w, dtype=np.uint8)[None, :, None]
        base[i, 10:26, 4 + 4 * i:20 + 4 * i] = (250, 30, 30)
    return base + rng.integers(0, 3, base.shape, dtype=np.uint8)


def _read_back(path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    return np.stack(frames)


def test_round_trip_frames_and_metadata(tmp_path):
    frames = _frames()
    meta = {"request": {"prompt": "a = b; #c \\ d \"q\"\nnew line", "seed": 3}, "gamma_w": 0.3}
    out = export_mp4(frames, tmp_path / "take.mp4", fps=8, crf=12, metadata=meta)
    back = _read_back(out)
    assert back.shape == frames.shape
    assert np.abs(back.astype(int) - frames.astype(int)).mean() < 6
    assert read_metadata(out) == meta
    assert [p.name for p in tmp_path.iterdir()] == ["take.mp4"]
    with open(out, "rb") as fh:  # +faststart: the moov atom comes before the media data
        head = fh.read(4096)
    assert head.find(b"moov") != -1 and (head.find(b"mdat") == -1 or head.find(b"moov") < head.find(b"mdat"))


def test_upscale_on_export(tmp_path):
    out = export_mp4(_frames(5, 16, 16), tmp_path / "big.mp4", scale=4)
    assert _read_back(out).shape == (5, 64, 64, 3)


def test_non_contiguous_frames_are_accepted(tmp_path):
    frames = np.asfortranarray(_frames(5))
    assert not frames.flags["C_CONTIGUOUS"]
    assert _read_back(export_mp4(frames, tmp_path / "f.mp4")).shape[0] == 5


@pytest.mark.parametrize("frames, match", [
    (np.zeros((5, 33, 64, 3), np.uint8), "even width and height"),
    (np.zeros((5, 32, 32), np.uint8), "must be an array"),
    (np.zeros((5, 32, 32, 3), np.float32), "uint8"),
])
def test_bad_frames_leave_no_file(tmp_path, frames, match):
    with pytest.raises(ExportError, match=match):
        export_mp4(frames, tmp_path / "x.mp4")
    assert list(tmp_path.iterdir()) == []


def test_bad_paths(tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        export_mp4(_frames(5), tmp_path / "missing" / "x.mp4")
    with pytest.raises(ExportError, match=".mp4"):
        export_mp4(_frames(5), tmp_path / "x.avi")
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
        with pytest.raises(ExportError, match="permission denied"):
            export_mp4(_frames(5), locked / "x.mp4")
    finally:
        os.chmod(locked, 0o700)


def test_failing_encoder_leaves_no_partial_file(tmp_path, monkeypatch):
    """An ffmpeg that fails (here: a stand-in that prints its banner, then a full disk) leaves nothing behind, and the
    message is the one line that matters, not ffmpeg's banner."""
    fake = tmp_path / "bin" / "ffmpeg"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\ncat >/dev/null\n"
                    "echo 'ffmpeg version n9.0 Copyright (c) 2000-2026 the FFmpeg developers' >&2\n"
                    "echo '  configuration: --enable-gpl --enable-libx264' >&2\n"
                    "echo '  libavutil      61.  1.102 / 61.  1.102' >&2\n"
                    "echo '[out#0/mp4 @ 0x55d0] Error writing trailer: No space left on device' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr("engine.export._ffmpeg", lambda: str(fake))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ExportError) as info:
        export_mp4(_frames(5), out / "x.mp4")
    message = str(info.value)
    assert message.startswith(f"could not write {out / 'x.mp4'}: No space left on device (the disk is full")
    assert "\n" not in message and "ffmpeg version" not in message
    assert list(out.iterdir()) == []


def test_existing_file_is_kept_when_export_fails(tmp_path):
    target = tmp_path / "keep.mp4"
    target.write_bytes(b"previous take")
    with pytest.raises(ExportError):
        export_mp4(np.zeros((5, 31, 32, 3), np.uint8), target)
    assert target.read_bytes() == b"previous take"


def test_metadata_missing_or_not_a_video(tmp_path):
    plain = export_mp4(_frames(5), tmp_path / "plain.mp4")
    with pytest.raises(ExportError, match="no Lumos Studio take metadata"):
        read_metadata(plain)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(ExportError, match="not a readable video"):
        read_metadata(junk)
