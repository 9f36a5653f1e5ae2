"""Small shared widgets: the message banner, a frame view that keeps aspect, the keyframe storyboard."""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSizePolicy, QToolButton,
                               QVBoxLayout, QWidget)

from ..resources import icon


def section_title(text: str) -> QLabel:
    """A panel's title (the style sheet styles the objectName "sectionTitle")."""
    label = QLabel(text)
    label.setObjectName("sectionTitle")
    return label


def panel_header(title: str, *controls: QWidget, fill: QWidget | None = None) -> QHBoxLayout:
    """A panel's header row: its title, then `fill` taking the free width (else an empty stretch), then `controls`."""
    head = QHBoxLayout()
    head.addWidget(section_title(title))
    if fill is None:
        head.addStretch(1)
    else:
        head.addWidget(fill, 1)
    for control in controls:
        head.addWidget(control)
    return head


class ElidedLabel(QLabel):
    """A one-line label that ends in "…" when narrower than its text, instead of being cut off mid-letter.
    Its minimum width is small, so it never widens the layout it sits in; the whole text is in the tooltip."""

    def __init__(self, text: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self._full = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:
        self._full = text
        self.setToolTip(text)
        self._elide()

    def full_text(self) -> str:
        return self._full

    def minimumSizeHint(self) -> QSize:
        return QSize(self.fontMetrics().horizontalAdvance("…") * 3, super().minimumSizeHint().height())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, max(0, self.width()))
        super().setText(shown)


class Banner(QFrame):
    """A dismissable message across the top of the window: errors are data shown here, never a dialog."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("banner")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 4, 4, 4)
        self._icon = QLabel()
        self._icon.setFixedSize(20, 20)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.action = QPushButton()
        self.action.setVisible(False)
        self.action.setToolTip("Do what the message suggests")
        self.action.clicked.connect(self._run_action)
        close = QToolButton()
        close.setIcon(icon("close"))
        close.setToolTip("Dismiss this message")
        close.clicked.connect(self.dismiss)
        lay.addWidget(self._icon)
        lay.addWidget(self.text, 1)
        lay.addWidget(self.action)
        lay.addWidget(close)
        self._callback: Callable[[], None] | None = None
        self.level = ""
        self.hide()

    def show_message(self, text: str, level: str = "error", action: str | None = None,
                     callback: Callable[[], None] | None = None) -> None:
        self.level = level
        self.setProperty("level", level)
        self.style().unpolish(self)
        self.style().polish(self)
        self._icon.setPixmap(icon("warning" if level in ("error", "warning") else "info").pixmap(18, 18))
        self.text.setText(text)
        self._callback = callback
        self.action.setVisible(bool(action and callback))
        if action:
            self.action.setText(action)
        self.show()

    def dismiss(self) -> None:
        self._callback = None
        self.level = ""
        self.hide()

    def _run_action(self) -> None:
        callback = self._callback
        self.dismiss()
        if callback is not None:
            callback()


def fit_rect(image_size: QSize, area: QRect) -> QRect:
    """The largest rect of the image's aspect centred in `area`."""
    if image_size.isEmpty():
        return area
    scaled = image_size.scaled(area.size(), Qt.AspectRatioMode.KeepAspectRatio)
    x = area.x() + (area.width() - scaled.width()) // 2
    y = area.y() + (area.height() - scaled.height()) // 2
    return QRect(x, y, scaled.width(), scaled.height())


class FrameView(QWidget):
    """Paints one QImage scaled to fit (smooth), with an optional caption and a placeholder text."""

    def __init__(self, parent: QWidget | None = None, placeholder: str = ""):
        super().__init__(parent)
        self.image: QImage | None = None
        self.caption = ""
        self.placeholder = placeholder
        self.setMinimumSize(160, 100)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_image(self, image: QImage | None, caption: str | None = None) -> None:
        self.image = image
        if caption is not None:
            self.caption = caption
        self.update()

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#0b0d10"))
        if self.image is None or self.image.isNull():
            if self.placeholder:
                p.setPen(QColor("#6b7482"))
                p.drawText(self.rect().adjusted(20, 20, -20, -20),
                           Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            return
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        target = fit_rect(self.image.size(), self.rect())
        p.drawImage(target, self.image)
        if self.caption:
            draw_caption(p, target, self.caption)


def draw_caption(p: QPainter, target: QRect, text: str, right: bool = False) -> None:
    font = QFont(p.font())
    font.setPointSizeF(9)
    p.setFont(font)
    fm = p.fontMetrics()
    w, h = fm.horizontalAdvance(text) + 12, fm.height() + 6
    x = target.right() - w - 6 if right else target.x() + 6
    box = QRectF(x, target.y() + 6, w, h)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor(0, 0, 0, 160))
    p.drawRoundedRect(box, 4, 4)
    p.setPen(QPen(QColor("#e8ecf2")))
    p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)


class KeyframeStrip(QWidget):
    """Keyframes painted side by side, each fitted to an equal share of the width; click → frameClicked."""

    frameClicked = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.keyframes: list[tuple[int, QImage]] = []
        self.current = -1
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def cells(self) -> list[QRect]:
        n = len(self.keyframes)
        if not n:
            return []
        gap = 6
        w = (self.width() - gap * (n - 1)) / n
        return [QRect(round(i * (w + gap)), 0, max(1, round(w)), self.height()) for i in range(n)]

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        for (index, image), cell in zip(self.keyframes, self.cells()):
            target = fit_rect(image.size(), cell)
            p.drawImage(target, image)
            p.setPen(QPen(QColor("#7aa2ff" if index == self.current else "#2c333e"), 1))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(target.adjusted(0, 0, -1, -1))

    def mousePressEvent(self, event) -> None:
        for (index, _), cell in zip(self.keyframes, self.cells()):
            if cell.contains(event.position().toPoint()):
                self.current = index
                self.update()
                self.frameClicked.emit(index)
                return


class Storyboard(QFrame):
    """A strip of keyframes of the current take; clicking one moves the player to that frame."""

    frameClicked = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("panel")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 6)
        lay.setSpacing(8)
        self._title = section_title("Storyboard")
        self._empty = QLabel("Keyframes of the draft appear here.")
        self._empty.setObjectName("hint")
        self.strip = KeyframeStrip()
        self.strip.frameClicked.connect(self.frameClicked)
        self.strip.setVisible(False)
        lay.addWidget(self._title)
        lay.addWidget(self._empty, 1)
        lay.addWidget(self.strip, 1)
        self.setFixedHeight(84)
        self.setToolTip("Keyframes of the shown take: click one to jump to that frame")

    @property
    def frames(self) -> list[tuple[int, QImage]]:
        return self.strip.keyframes

    def set_keyframes(self, keyframes: list[tuple[int, QImage]]) -> None:
        self.strip.keyframes = list(keyframes)
        self.strip.current = -1
        self.strip.setVisible(bool(keyframes))
        self._empty.setVisible(not keyframes)
        self.strip.update()


def folder_field(edit: QLineEdit, browse: Callable[[QLineEdit], None], tooltip: str) -> tuple[QWidget, QLabel]:
    """A path field with its Browse… button and, under it, the inline error (hidden until there is one; it wraps, and
    its text can be selected and copied). Returns (the row, the error label)."""
    row = QWidget()
    v = QVBoxLayout(row)
    v.setContentsMargins(0, 0, 0, 0)
    v.setSpacing(2)
    h = QHBoxLayout()
    button = QPushButton("Browse…")
    button.setToolTip(tooltip)
    button.clicked.connect(lambda: browse(edit))
    h.addWidget(edit, 1)
    h.addWidget(button)
    v.addLayout(h)
    error = QLabel("")
    error.setObjectName("inlineError")
    error.setWordWrap(True)
    error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    error.setVisible(False)
    v.addWidget(error)
    return row, error
