"""The takes strip (every draft and refine, with thumbnails) and the small queue view."""

from __future__ import annotations

import html
import time

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QInputDialog,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..project import TakeRecord
from .common import ElidedLabel, panel_header
from ..resources import icon

ID_ROLE = Qt.ItemDataRole.UserRole
NAME_ROLE = Qt.ItemDataRole.UserRole + 1  # the user's name of a take ("" if none)
DRAFT_ROLE = Qt.ItemDataRole.UserRole + 2  # whether it is a draft
PROMPT_CHARS = 80  # far more than one row of an item shows; the view elides the rest


class _PlaceholderList(QListWidget):
    """A list that says what will appear in it while it is empty."""

    def __init__(self, placeholder: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.placeholder = placeholder

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if self.count() == 0 and self.placeholder:
            p = QPainter(self.viewport())
            p.setPen(QColor("#6b7482"))
            area = self.viewport().rect().adjusted(8, 4, -8, -4)
            p.drawText(area, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)


def take_text(t: TakeRecord) -> str:
    """Three lines under the thumbnail: the name, what the take is and its instruction, seed and time.

    A renamed take keeps its kind at the start of the second line ("Refine 30 % · a red ball…"), where a long name
    cannot push it out of view. The list shows each line on one row and elides what does not fit; the full
    instruction is in the tooltip."""
    star = "★ " if t.starred else ""
    prompt = " ".join((t.request.get("prompt", "") or "(no instruction)").split())
    if len(prompt) > PROMPT_CHARS:
        prompt = prompt[:PROMPT_CHARS - 1].rstrip() + "…"
    if t.name:
        title, about = t.name, f"{t.kind_label()} · {prompt}"
    else:
        title, about = t.kind_label(), prompt
    when = time.strftime("%H:%M", time.localtime(t.created)) if t.created else ""
    facts = " · ".join(x for x in (f"seed {t.seed}", when) if x)
    return f"{star}{title}\n{about}\n{facts}"


def take_tooltip(t: TakeRecord) -> str:
    r = t.request
    when = time.strftime(" at %H:%M", time.localtime(t.created)) if t.created else ""
    prompt = html.escape(r.get("prompt", "") or "(no instruction)")
    return (f"<b>{html.escape(t.label())}</b><br>{prompt}<br>"
            f"<span style='color:#9aa4b2'>hand-off {round(t.handoff * 100)} % · seed {t.seed} · "
            f"{t.width}×{t.height} · {t.num_frames} frames at {t.fps} fps · {r.get('steps')} steps · "
            f"{t.duration:.1f} s · rendered in {t.elapsed:.1f} s{when}<br>"
            "Click to show · Ctrl+click a second take to compare · right-click for star, rename, delete</span>")


class TakesStrip(QFrame):
    """Horizontal list of takes. Selection of one shows it; two enables Compare."""

    selected = Signal(str)  # take id
    compareRequested = Signal(str, str)
    compareWithDraft = Signal(str)
    starToggled = Signal(str)
    renameRequested = Signal(str, str)
    deleteRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("panel")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 6)
        self.hint = ElidedLabel("Every draft and refine is kept here.")
        self.hint.setObjectName("hint")
        self.compare = QPushButton(icon("compare"), "Compare")
        self.compare.setToolTip("Compare the two selected takes side by side or with a wipe (Ctrl+K)")
        self.compare.setEnabled(False)
        self.compare.clicked.connect(self._compare)
        self.star = QToolButton()
        self.star.setIcon(icon("star"))
        self.star.setToolTip("Star / unstar the selected take")
        self.star.clicked.connect(self._star)
        self.delete = QToolButton()
        self.delete.setIcon(icon("trash"))
        self.delete.setToolTip("Delete the selected takes (their files too)")
        self.delete.clicked.connect(self._delete)
        lay.addLayout(panel_header("Takes", self.star, self.delete, self.compare, fill=self.hint))
        self.list = _PlaceholderList("No takes yet: press Draft (Ctrl+Enter). Every draft and refine lands here, "
                                     "saved with the project.")
        self.list.setObjectName("takes")
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setFlow(QListWidget.Flow.LeftToRight)
        self.list.setWrapping(False)
        self.list.setMovement(QListWidget.Movement.Static)
        self.list.setIconSize(QSize(120, 68))
        self.list.setGridSize(QSize(164, 136))
        self.list.setFixedHeight(156)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        # One row per line, elided to the item's width: a long instruction or name must not push lines away.
        self.list.setWordWrap(False)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.itemSelectionChanged.connect(self._selection_changed)
        lay.addWidget(self.list)
        self._thumbs: dict[str, QIcon] = {}

    def ids(self) -> list[str]:
        return [self.list.item(i).data(ID_ROLE) for i in range(self.list.count())]

    def selected_ids(self) -> list[str]:
        return [it.data(ID_ROLE) for it in self.list.selectedItems()]

    def set_takes(self, takes: list[TakeRecord], thumbs: dict[str, QImage]) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for t in takes:
            self._add(t, thumbs.get(t.id))
        self.list.blockSignals(False)
        self._selection_changed(emit=False)

    def add_take(self, take: TakeRecord, thumb: QImage | None) -> None:
        self._add(take, thumb)
        self.list.scrollToItem(self.list.item(self.list.count() - 1))

    def _add(self, t: TakeRecord, thumb: QImage | None) -> None:
        item = QListWidgetItem()
        item.setData(ID_ROLE, t.id)
        self._describe(item, t)
        if thumb is not None and not thumb.isNull():
            pixmap = QPixmap.fromImage(thumb)
            icon_ = QIcon(pixmap)
            # the same pixels when selected: Qt's default selected tint turns sand grey-blue and red pink
            icon_.addPixmap(pixmap, QIcon.Mode.Selected)
            self._thumbs[t.id] = icon_
        item.setIcon(self._thumbs.get(t.id, icon("app")))
        item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.list.addItem(item)

    def update_take(self, t: TakeRecord) -> None:
        item = self._item(t.id)
        if item is not None:
            self._describe(item, t)

    def _describe(self, item: QListWidgetItem, t: TakeRecord) -> None:
        item.setText(take_text(t))
        item.setToolTip(take_tooltip(t))
        item.setData(NAME_ROLE, t.name)
        item.setData(DRAFT_ROLE, t.is_draft)

    def remove_take(self, take_id: str) -> None:
        item = self._item(take_id)
        if item is not None:
            self.list.takeItem(self.list.row(item))
        self._thumbs.pop(take_id, None)

    def select(self, take_id: str | None) -> None:
        self.list.blockSignals(True)
        self.list.clearSelection()
        item = self._item(take_id) if take_id else None
        if item is not None:
            item.setSelected(True)
            self.list.setCurrentItem(item)
            self.list.scrollToItem(item)
        self.list.blockSignals(False)
        self._selection_changed(emit=False)

    def _item(self, take_id: str) -> QListWidgetItem | None:
        for i in range(self.list.count()):
            if self.list.item(i).data(ID_ROLE) == take_id:
                return self.list.item(i)
        return None

    def _selection_changed(self, emit: bool = True) -> None:
        ids = self.selected_ids()
        self.compare.setEnabled(len(ids) == 2)
        self.star.setEnabled(len(ids) == 1)
        self.delete.setEnabled(bool(ids))
        self.hint.setText("Ctrl+click a second take to compare." if len(ids) == 1 else
                          "Press Compare." if len(ids) == 2 else "Every draft and refine is kept here.")
        if emit and len(ids) == 1:
            self.selected.emit(ids[0])

    def _compare(self) -> None:
        ids = self.selected_ids()
        if len(ids) == 2:
            order = self.ids()
            a, b = sorted(ids, key=order.index)
            self.compareRequested.emit(a, b)

    def _star(self) -> None:
        ids = self.selected_ids()
        if len(ids) == 1:
            self.starToggled.emit(ids[0])

    def _delete(self, ids: list[str] | None = None) -> None:
        ids = ids or self.selected_ids()
        if not ids:
            return
        n = len(ids)
        answer = QMessageBox.question(self, "Delete takes", f"Delete {n} take{'s' if n > 1 else ''} and "
                                      f"{'their files' if n > 1 else 'its file'} from the project? This cannot be undone.")
        if answer != QMessageBox.StandardButton.Yes:
            return
        for take_id in ids:
            self.deleteRequested.emit(take_id)

    def _rename(self, take_id: str) -> None:
        item = self._item(take_id)
        current = item.data(NAME_ROLE) if item else ""
        name, ok = QInputDialog.getText(self, "Rename take", "Name:", text=current)
        if ok:
            self.renameRequested.emit(take_id, name.strip())

    def _menu(self, pos) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        take_id = item.data(ID_ROLE)
        menu = QMenu(self)
        menu.addAction(icon("star"), "Star / unstar", lambda: self.starToggled.emit(take_id))
        menu.addAction(icon("rename"), "Rename…", lambda: self._rename(take_id))
        if len(self.selected_ids()) == 2:
            menu.addAction(icon("compare"), "Compare the two selected", self._compare)
        elif not item.data(DRAFT_ROLE):
            menu.addAction(icon("compare"), "Compare with its draft", lambda: self.compareWithDraft.emit(take_id))
        menu.addSeparator()
        menu.addAction(icon("trash"), "Delete…", lambda: self._delete([take_id]))
        menu.exec(self.list.mapToGlobal(pos))


class QueueView(QFrame):
    """The running job and what waits behind it; each can be cancelled."""

    cancelRequested = Signal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("panel")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 4, 6, 6)
        self.cancel = QToolButton()
        self.cancel.setIcon(icon("stop"))
        self.cancel.setToolTip("Cancel the selected job (Esc cancels the running one)")
        self.cancel.clicked.connect(self._cancel)
        lay.addLayout(panel_header("Queue", self.cancel))
        self.list = QListWidget()
        self.list.setToolTip("Jobs: the running one first, then those waiting")
        self.list.setFixedHeight(112)
        lay.addWidget(self.list)
        self.setFixedWidth(190)

    def set_jobs(self, jobs: list[tuple[int, str, str]]) -> None:
        """jobs: (id, label, state) in display order."""
        keep = self.list.currentItem().data(ID_ROLE) if self.list.currentItem() else None
        self.list.clear()
        if not jobs:
            item = QListWidgetItem("Nothing queued")
            item.setFlags(Qt.ItemFlag.NoItemFlags)
            self.list.addItem(item)
        for job_id, label, state in jobs:
            item = QListWidgetItem(f"{'▶' if state == 'running' else '…'} {label}")
            item.setData(ID_ROLE, job_id)
            item.setToolTip(f"job {job_id}: {state}")
            self.list.addItem(item)
            if job_id == keep:
                self.list.setCurrentItem(item)
        self.cancel.setEnabled(bool(jobs))

    def _cancel(self) -> None:
        item = self.list.currentItem() or self.list.item(0)
        if item is not None and item.data(ID_ROLE) is not None:
            self.cancelRequested.emit(item.data(ID_ROLE))
