"""The streaming player (previews while sampling, then the decoded take) and the compare view."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QRect, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QImage, QKeySequence, QPainter, QPen, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..bridge import frame_to_qimage
from ..resources import icon
from .common import FrameView, draw_caption, fit_rect, panel_header


class FrameSource:
    """Frames of one take as QImages, converted on first use (one frame costs well under a millisecond)."""

    def __init__(self, frames: np.ndarray, fps: int):
        self.frames = frames
        self.fps = max(1, int(fps))
        self._cache: dict[int, QImage] = {}

    def __len__(self) -> int:
        return len(self.frames)

    def image(self, i: int) -> QImage:
        img = self._cache.get(i)
        if img is None:
            img = self._cache[i] = frame_to_qimage(self.frames[i])
        return img


def _tool(name: str, tip: str, checkable: bool = False) -> QToolButton:
    b = QToolButton()
    b.setIcon(icon(name))
    b.setToolTip(tip)
    b.setCheckable(checkable)
    b.setAutoRaise(True)
    return b


class Transport(QWidget):
    """Play/pause, loop, frame step, scrub: drives a frame index over time. Shared by player and compare."""

    frameChanged = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.play = _tool("play", "Play / pause (Space)")
        self.play.clicked.connect(self.toggle)
        self.prev = _tool("prev-frame", "Previous frame (Left)")
        self.prev.clicked.connect(self.step_back)
        self.next = _tool("next-frame", "Next frame (Right)")
        self.next.clicked.connect(self.step_forward)
        self.loop = _tool("loop", "Loop playback", checkable=True)
        self.loop.setChecked(True)
        self.scrub = QSlider(Qt.Orientation.Horizontal)
        self.scrub.setToolTip("Scrub through the frames")
        self.scrub.valueChanged.connect(self._scrubbed)
        self.label = QLabel("–")
        self.label.setObjectName("hint")
        self.label.setMinimumWidth(110)
        for w in (self.play, self.prev, self.next, self.loop):
            lay.addWidget(w)
        lay.addWidget(self.scrub, 1)
        lay.addWidget(self.label)
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._tick)
        self.count = 0
        self.fps = 16
        self.set_count(0, 16)

    @property
    def index(self) -> int:
        return self.scrub.value()

    @property
    def playing(self) -> bool:
        return self.timer.isActive()

    def set_count(self, count: int, fps: int) -> None:
        self.count, self.fps = count, max(1, fps)
        self.scrub.blockSignals(True)
        self.scrub.setRange(0, max(0, count - 1))
        self.scrub.setValue(0)
        self.scrub.blockSignals(False)
        for w in (self.play, self.prev, self.next, self.scrub, self.loop):
            w.setEnabled(count > 0)
        self.timer.setInterval(round(1000 / self.fps))
        if count <= 1:
            self.pause()
        self._label()

    def seek(self, i: int) -> None:
        self.scrub.setValue(max(0, min(self.count - 1, i)))

    def start(self) -> None:
        if self.count > 1:
            self.timer.start()
            self.play.setIcon(icon("pause"))

    def pause(self) -> None:
        self.timer.stop()
        self.play.setIcon(icon("play"))

    def toggle(self) -> None:
        self.pause() if self.playing else self.start()

    def step_back(self) -> None:
        self.pause()
        self.seek(self.index - 1)

    def step_forward(self) -> None:
        self.pause()
        self.seek(self.index + 1)

    def _tick(self) -> None:
        nxt = self.index + 1
        if nxt >= self.count:
            if not self.loop.isChecked():
                self.pause()
                return
            nxt = 0
        self.seek(nxt)

    def _scrubbed(self, i: int) -> None:
        self._label()
        self.frameChanged.emit(i)

    def _label(self) -> None:
        if self.count == 0:
            self.label.setText("–")
        else:
            self.label.setText(f"frame {self.index + 1}/{self.count} · {self.index / self.fps:.2f} s")


def install_transport_keys(owner: QWidget, transport: Transport) -> None:
    """Space / Left / Right / Home / End while the focus is inside `owner`."""
    for keys, slot in (("Space", transport.toggle), ("Left", transport.step_back), ("Right", transport.step_forward),
                       ("Home", lambda: transport.seek(0)), ("End", lambda: transport.seek(transport.count - 1))):
        sc = QShortcut(QKeySequence(keys), owner)
        sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        sc.activated.connect(slot)


class Player(QFrame):
    """Shows the streaming x0 previews while a job samples, then plays the decoded take."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("panel")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        self.view = FrameView(placeholder="Type an instruction and press Draft (Ctrl+Enter).\n"
                                          "The preview streams here while it renders.")
        self.view.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        lay.addWidget(self.view, 1)
        self.transport = Transport()
        self.transport.frameChanged.connect(self._show_frame)
        lay.addWidget(self.transport)
        prog = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setTextVisible(False)
        self.progress.setToolTip("Progress of the running job")
        self.status = QLabel("Idle")
        self.status.setObjectName("hint")
        self.status.setMinimumWidth(320)
        prog.addWidget(self.progress, 1)
        prog.addWidget(self.status)
        lay.addLayout(prog)
        install_transport_keys(self, self.transport)
        self.source: FrameSource | None = None
        self.caption = ""
        self.streaming = False
        self._preview: list[QImage] = []
        self._preview_i = 0
        self._preview_timer = QTimer(self)
        self._preview_timer.setInterval(125)
        self._preview_timer.timeout.connect(self._preview_tick)

    # -- playing a take --
    def set_take(self, frames: np.ndarray | None, fps: int, caption: str = "", autoplay: bool = True) -> None:
        self.end_stream()
        self.source = FrameSource(frames, fps) if frames is not None and len(frames) else None
        self.caption = caption
        self.transport.set_count(len(self.source) if self.source else 0, fps)
        self._show_frame(0)
        if autoplay and self.source is not None:
            self.transport.start()

    def clear(self, placeholder: str | None = None) -> None:
        self.end_stream()
        self.source = None
        self.transport.set_count(0, 16)
        if placeholder is not None:
            self.view.placeholder = placeholder
        self.view.set_image(None, "")

    def seek(self, i: int) -> None:
        self.transport.pause()
        self.transport.seek(i)

    def _show_frame(self, i: int) -> None:
        if self.streaming:
            return
        if self.source is None:
            self.view.set_image(None, "")
            return
        self.view.set_image(self.source.image(min(i, len(self.source) - 1)), self.caption)

    # -- streaming previews --
    def show_step(self, images: list[QImage], caption: str) -> None:
        """Show the latest step's preview frames (looping through them) with a caption."""
        if not self.streaming:
            self.streaming = True
            self.transport.pause()
            self._preview_timer.start()
        if images:
            self._preview = images
            self._preview_i %= len(images)
        self.caption = caption
        if self._preview:
            self.view.set_image(self._preview[self._preview_i], caption)

    def end_stream(self) -> None:
        self.streaming = False
        self._preview_timer.stop()
        self._preview = []

    def _preview_tick(self) -> None:
        if self._preview:
            self._preview_i = (self._preview_i + 1) % len(self._preview)
            self.view.set_image(self._preview[self._preview_i], self.caption)

    def set_progress(self, done: int, total: int, text: str) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)
        self.status.setText(text)


class CompareCanvas(QWidget):
    """Two images side by side, or one over the other with a wipe line that follows the mouse and the arrows."""

    WIPE_STEP = 0.02  # Left / Right; Shift moves five times as far

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.a: QImage | None = None
        self.b: QImage | None = None
        self.labels = ("A", "B")
        self.mode = "side"
        self.wipe = 0.5
        self.setMinimumSize(200, 120)
        self.setMouseTracking(False)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.set_mode("side")

    def set_images(self, a: QImage | None, b: QImage | None) -> None:
        self.a, self.b = a, b
        self.update()

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        wipe = mode == "wipe"
        self.setCursor(Qt.CursorShape.SplitHCursor if wipe else Qt.CursorShape.ArrowCursor)
        self.setToolTip("Click or drag to move the split; Left / Right move it too (Shift: further)" if wipe
                        else "Choose Wipe above to see one take over the other with a movable split")
        self.update()

    # -- geometry shared by painting and the mouse, so the line is drawn where the cursor is --
    def image_rect(self) -> QRect:
        """Where the wipe mode draws the images: A's aspect, letterboxed in the canvas."""
        return fit_rect(self.a.size(), self.rect()) if self.a is not None else self.rect()

    def split_x(self) -> int:
        """The x of the wipe line in canvas pixels."""
        target = self.image_rect()
        return target.x() + round(target.width() * self.wipe)

    def set_wipe_at(self, x: float) -> None:
        """Put the wipe line at canvas x, clamped to the image."""
        target = self.image_rect()
        self.set_wipe((x - target.x()) / max(1, target.width()))

    def set_wipe(self, fraction: float) -> None:
        self.wipe = min(1.0, max(0.0, fraction))
        self.update()

    # -- input --
    def mousePressEvent(self, event) -> None:
        if self.mode == "wipe" and event.button() == Qt.MouseButton.LeftButton:
            self.set_wipe_at(event.position().x())
        else:
            super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self.mode == "wipe" and event.buttons() & Qt.MouseButton.LeftButton:
            self.set_wipe_at(event.position().x())

    def _wipe_key_step(self, event) -> float:
        """How far a key moves the wipe line (0 for keys that are not Left / Right, or outside wipe mode)."""
        if self.mode != "wipe" or self.a is None:
            return 0.0
        step = self.WIPE_STEP * (5 if event.modifiers() & Qt.KeyboardModifier.ShiftModifier else 1)
        return {Qt.Key.Key_Left: -step, Qt.Key.Key_Right: step}.get(event.key(), 0.0)

    def event(self, event) -> bool:
        # The compare view binds Left / Right to frame steps; in wipe mode the focused picture takes them first.
        if event.type() == QEvent.Type.ShortcutOverride and self._wipe_key_step(event):
            event.accept()
            return True
        return super().event(event)

    def focusInEvent(self, event) -> None:
        super().focusInEvent(event)
        self.update()  # the grip shows the focus

    def focusOutEvent(self, event) -> None:
        super().focusOutEvent(event)
        self.update()

    def keyPressEvent(self, event) -> None:
        step = self._wipe_key_step(event)
        if step:
            self.set_wipe(self.wipe + step)
        else:
            super().keyPressEvent(event)

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#0b0d10"))
        if self.a is None or self.b is None:
            p.setPen(QColor("#6b7482"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Select two takes (Ctrl+click) to compare them")
            return
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        if self.mode == "side":
            half = self.width() // 2
            for img, area, label in ((self.a, QRect(0, 0, half - 2, self.height()), self.labels[0]),
                                     (self.b, QRect(half + 2, 0, self.width() - half - 2, self.height()), self.labels[1])):
                target = fit_rect(img.size(), area)
                p.drawImage(target, img)
                draw_caption(p, target, label)
            return
        target = self.image_rect()
        p.drawImage(target, self.a)
        split = self.split_x()
        clip = QRect(split, target.y(), target.right() - split + 1, target.height())
        p.save()
        p.setClipRect(clip)
        p.drawImage(target, self.b.scaled(self.a.size()) if self.b.size() != self.a.size() else self.b)
        p.restore()
        p.setPen(QPen(QColor("#ffffff"), 2))
        p.drawLine(split, target.y(), split, target.bottom())
        # A grip in the middle of the line; blue while the arrows move it (the picture has the focus).
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setBrush(QColor("#3f6fd6" if self.hasFocus() else "#252b34"))
        p.drawEllipse(QPoint(split, target.center().y()), 7, 7)
        draw_caption(p, target, self.labels[0])
        draw_caption(p, self._second_caption_rect(p, target), self.labels[1], right=True)

    def _second_caption_rect(self, p: QPainter, target: QRect) -> QRect:
        """Where B's caption goes over the image: top right, or a row lower where it would cover A's."""
        font = QFont(p.font())
        font.setPointSizeF(9)  # as draw_caption
        fm = QFontMetrics(font)
        widths = sum(fm.horizontalAdvance(label) + 12 for label in self.labels)
        if widths + 3 * 6 <= target.width():
            return target
        return target.adjusted(0, fm.height() + 10, 0, 0)


class CompareView(QFrame):
    """Two takes, side by side or with a wipe, played in lockstep by one transport."""

    closed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("panel")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        self.mode = QComboBox()
        self.mode.addItem("Side by side", "side")
        self.mode.addItem("Wipe", "wipe")
        self.mode.setToolTip("Show the two takes next to each other, or one over the other with a movable split")
        self.mode.currentIndexChanged.connect(self._mode)
        close = _tool("close", "Back to the player (Esc closes too)")
        close.clicked.connect(self.closed)
        lay.addLayout(panel_header("Compare", self.mode, close))
        self.canvas = CompareCanvas()
        lay.addWidget(self.canvas, 1)
        self.transport = Transport()
        self.transport.frameChanged.connect(self._show)
        lay.addWidget(self.transport)
        install_transport_keys(self, self.transport)
        self.a: FrameSource | None = None
        self.b: FrameSource | None = None

    def set_takes(self, a: np.ndarray, fps_a: int, label_a: str, b: np.ndarray, fps_b: int, label_b: str) -> None:
        self.a, self.b = FrameSource(a, fps_a), FrameSource(b, fps_b)
        self.canvas.labels = (label_a, label_b)
        # Lockstep: one index drives both; the shorter take holds its last frame.
        self.transport.set_count(max(len(self.a), len(self.b)), min(self.a.fps, self.b.fps))
        self._show(0)
        self.transport.start()

    def _mode(self) -> None:
        self.canvas.set_mode(self.mode.currentData())

    def _show(self, i: int) -> None:
        if self.a is None or self.b is None:
            self.canvas.set_images(None, None)
            return
        self.canvas.set_images(self.a.image(min(i, len(self.a) - 1)), self.b.image(min(i, len(self.b) - 1)))

    def stop(self) -> None:
        self.transport.pause()
