"""The hand-off slider: 0 % = the draft, 100 % = the heavy generator almost from the first step.

Beside it a small plot of the gate w_t over the steps and a sentence in plain words. The authors' default is
marked on the track; values already rendered are marked with dots (going back to one is instant).
Moves are debounced: `requested` fires once the slider rests (or is released), never on every pixel.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen, QPolygonF
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QStyle,
    QStyleOptionSlider,
    QVBoxLayout,
    QWidget,
)

from engine.api import OFFICIAL_HANDOFF

from .common import panel_header

LIGHT = QColor("#7aa2ff")
HEAVY = QColor("#ffb454")


class MarkedSlider(QSlider):
    """A 0..100 slider that draws the official default (triangle) and rendered values (dots)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.setRange(0, 100)
        self.setPageStep(5)
        self.official = round(OFFICIAL_HANDOFF * 100)
        self.rendered: set[int] = set()
        self.setMinimumHeight(30)

    def _x_of(self, value: int) -> float:
        opt = QStyleOptionSlider()
        self.initStyleOption(opt)
        groove = self.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                             QStyle.SubControl.SC_SliderGroove, self)
        handle = self.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                             QStyle.SubControl.SC_SliderHandle, self)
        span = groove.width() - handle.width()
        return groove.x() + handle.width() / 2 + span * (value - self.minimum()) / max(1, self.maximum() - self.minimum())

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        y = self.height() - 5
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QColor("#6fdc8c"))
        for v in self.rendered:
            p.drawEllipse(QPointF(self._x_of(v), y), 2.5, 2.5)
        x = self._x_of(self.official)
        p.setBrush(HEAVY)
        p.drawPolygon(QPolygonF([QPointF(x - 5, 0), QPointF(x + 5, 0), QPointF(x, 7)]))


class GatePlot(QWidget):
    """w_t (light share) per step with its axes: blue area = light generator, amber = heavy; dashed line at ½."""

    AXIS = QColor("#8a93a0")

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.w: list[float] = []
        self.placeholder = "the gate appears after a draft"
        self.setMinimumSize(200, 84)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.setToolTip("The gate w_t over the sampling steps: blue is the light generator's share, "
                        "amber the heavy one's. Left = first step (pure noise), right = last step")

    def set_weights(self, w: list[float]) -> None:
        self.w = list(w)
        self.update()

    def plot_rect(self) -> QRectF:
        """Where the curve goes: room on the left for the share ticks and below for the step numbers."""
        fm = self.fontMetrics()
        left = fm.horizontalAdvance("100%") + 6
        return QRectF(left, 4, self.width() - left - 4, self.height() - fm.height() - 8)

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        if not self.w:
            box = QRectF(self.rect()).adjusted(2, 2, -2, -2)
            p.fillRect(box, QColor("#0f1216"))
            p.setPen(QColor("#6b7482"))
            p.drawText(box.adjusted(6, 2, -6, -2), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                       self.placeholder)
            return
        r = self.plot_rect()
        p.fillRect(r, QColor("#0f1216"))
        n = len(self.w)
        xs = [r.left() + r.width() * (i + 0.5) / n for i in range(n)]
        top = QPainterPath(QPointF(r.left(), r.bottom()))
        for x, w in zip(xs, self.w):
            top.lineTo(x, r.bottom() - w * r.height())
        top.lineTo(r.right(), r.bottom())
        top.closeSubpath()
        p.fillRect(r, HEAVY.darker(180))
        p.fillPath(top, LIGHT.darker(140))
        p.setPen(QPen(LIGHT, 1.6))
        for i in range(1, n):
            p.drawLine(QPointF(xs[i - 1], r.bottom() - self.w[i - 1] * r.height()),
                       QPointF(xs[i], r.bottom() - self.w[i] * r.height()))
        p.setPen(QPen(QColor("#c0c6d0"), 1, Qt.PenStyle.DashLine))
        p.drawLine(QPointF(r.left(), r.center().y()), QPointF(r.right(), r.center().y()))
        self._draw_axes(p, r, n)

    def _draw_axes(self, p: QPainter, r: QRectF, n: int) -> None:
        fm = self.fontMetrics()
        p.setPen(QPen(self.AXIS, 1))
        p.drawLine(QPointF(r.left(), r.top()), QPointF(r.left(), r.bottom()))
        p.drawLine(QPointF(r.left(), r.bottom()), QPointF(r.right(), r.bottom()))
        right = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        h = fm.height()
        p.drawText(QRectF(0, r.top() - h / 2, r.left() - 3, h), right, "100%")
        p.drawText(QRectF(0, r.center().y() - h / 2, r.left() - 3, h), right, "50%")
        p.drawText(QRectF(0, r.bottom() - h / 2, r.left() - 3, h), right, "0%")
        below = QRectF(r.left(), r.bottom() + 2, r.width(), h)
        first, last = "step 1", f"step {n}"
        p.drawText(below, Qt.AlignmentFlag.AlignLeft, first)
        p.drawText(below, Qt.AlignmentFlag.AlignRight, last)
        title = "light share"  # only where it fits between the step numbers
        room = r.width() - fm.horizontalAdvance(first) - fm.horizontalAdvance(last) - 16
        if fm.horizontalAdvance(title) <= room:
            p.drawText(below, Qt.AlignmentFlag.AlignHCenter, title)


class HandoffPanel(QFrame):
    """Slider + gate plot + plain-words label. Emits `requested(s)` (s in [0, 1]) debounced."""

    requested = Signal(float)
    moved = Signal(float)  # every change, for live plot/label updates

    def __init__(self, parent: QWidget | None = None, debounce_ms: int = 350):
        super().__init__(parent)
        self.setObjectName("panel")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 6, 10, 6)
        left = QVBoxLayout()
        self.value_label = QLabel()
        self.value_label.setObjectName("handoffValue")
        left.addLayout(panel_header("Hand-off", self.value_label))
        self.slider = MarkedSlider()
        self.official_label = "authors' default"
        self.slider.setToolTip("How far the heavy generator takes over. 0 % = the draft (light generator alone);"
                               f" the amber mark ({round(OFFICIAL_HANDOFF * 100)} %) is the authors' default. "
                               "Green dots: values already rendered (instant). Arrow keys move by 1 %")
        left.addWidget(self.slider)
        self.words = QLabel("Render a draft, then slide to refine it with the heavy generator.")
        self.words.setObjectName("hint")
        self.words.setWordWrap(True)
        left.addWidget(self.words)
        lay.addLayout(left, 3)
        self.plot = GatePlot()
        lay.addWidget(self.plot, 1)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(debounce_ms)
        self._timer.timeout.connect(self._fire)
        self.slider.valueChanged.connect(self._changed)
        self.slider.sliderReleased.connect(self._fire)
        self._last_fired: int | None = None
        self._describe = None  # callable(s) -> (weights, words), set by the window once timesteps are known
        self._update_labels()

    @property
    def value(self) -> float:
        return self.slider.value() / 100.0

    def set_value(self, s: float, fire: bool = False) -> None:
        """Move the slider without starting a render (unless `fire`)."""
        v = round(min(max(s, 0.0), 1.0) * 100)
        self.slider.blockSignals(True)
        self.slider.setValue(v)
        self.slider.blockSignals(False)
        self._last_fired = None if fire else v
        self._update_labels()
        if fire:
            self._fire()

    def set_rendered(self, values: set[float]) -> None:
        self.slider.rendered = {round(v * 100) for v in values}
        self.slider.update()

    def set_official(self, s: float, label: str = "authors' default") -> None:
        """Mark the default hand-off: the authors' (gamma_w = 0.3, whose position depends on the model's flow
        shift) or one a model family measured for itself (its lumos.json "handoff")."""
        self.slider.official = round(min(max(s, 0.0), 1.0) * 100)
        self.official_label = label
        self.slider.setToolTip(self.slider.toolTip().split(" the amber mark")[0] + f" the amber mark "
                               f"({self.slider.official} %) is the {label}. Green dots: values already "
                               "rendered (instant). Arrow keys move by 1 %")
        self.slider.update()
        self._update_labels()

    @property
    def describing(self) -> bool:
        """True once the gate plot and the plain-words label can be drawn (timesteps known)."""
        return self._describe is not None

    def set_describer(self, fn) -> None:
        self._describe = fn
        self._update_labels()

    def _changed(self, _v: int) -> None:
        self._update_labels()
        self.moved.emit(self.value)
        self._timer.start()  # restart: fire once the slider rests

    def _fire(self) -> None:
        self._timer.stop()
        v = self.slider.value()
        if v == self._last_fired:
            return
        self._last_fired = v
        self.requested.emit(v / 100.0)

    def _update_labels(self) -> None:
        v = self.slider.value()
        self.value_label.setText("draft" if v == 0 else f"{v} %")
        if self._describe is None:
            return
        try:
            weights, words = self._describe(v / 100.0)
        except Exception as exc:  # a plot must never break the slider
            weights, words = [], f"(gate unavailable: {exc})"
        self.plot.set_weights(weights)
        official = f" · {self.official_label}" if v == self.slider.official else ""
        self.words.setText(words[:1].upper() + words[1:] + official)

