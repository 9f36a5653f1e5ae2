"""Helper of scripts/walkthrough.sh: start the real app, and write where its widgets are to a JSON file.

    python scripts/walkthrough_probe.py launch PROBE.json [app options]   start Lumos Studio (app.main_window.run,
                                                                           unchanged) and rewrite PROBE.json every
                                                                           0.25 s: on-screen rectangles of the widgets
                                                                           a user aims at, and what the window shows
    python3 scripts/walkthrough_probe.py get PROBE.json EXPR [DEFAULT]     print EXPR evaluated on the file (as `d`;
                                                                           `env` is os.environ); DEFAULT if it fails

The probe only looks: every key press and mouse click of the walkthrough comes from xdotool, so the app sees what a
user would give it. It reads the window's attributes defensively: a renamed widget gives null, never a crash.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _rect(widget, local=None) -> dict | None:
    """The on-screen rectangle of `widget` (or of `local`, a QRect inside it), with its centre."""
    if widget is None or not widget.isVisible():
        return None
    r = local if local is not None else widget.rect()
    tl = widget.mapToGlobal(r.topLeft())
    x, y, w, h = tl.x(), tl.y(), r.width(), r.height()
    return {"x": x, "y": y, "w": w, "h": h, "cx": x + w // 2, "cy": y + h // 2}


def _safe(fn, default=None):
    try:
        return fn()
    except Exception:  # the probe must never take the app down
        return default


def snapshot(app, win) -> dict:
    from PySide6.QtWidgets import QStyle, QStyleOptionSlider

    d: dict = {"pid": os.getpid(), "window": _safe(lambda: _rect(win)), "active": _safe(win.isActiveWindow)}
    d["title"] = _safe(win.windowTitle)
    d["models_ready"] = _safe(lambda: not win._models_pending and win.summary is not None, False)
    d["model_label"] = _safe(lambda: win.model_label.text())
    d["status"] = _safe(lambda: win.statusBar().currentMessage())
    d["banner"] = _safe(lambda: win.banner.text.text() if win.banner.isVisible() else "")
    d["prompt"] = _safe(lambda: _rect(win.prompt.edit))
    d["prompt_text"] = _safe(lambda: win.prompt.text())
    d["plan_text"] = _safe(lambda: win.plan.text.toPlainText() if win.plan.isVisible() else None)
    d["jobs_active"] = _safe(lambda: sum(j.state in ("queued", "running") for j in win.jobs.values()), 0)

    def slider():
        s = win.handoff.slider
        opt = QStyleOptionSlider()
        s.initStyleOption(opt)
        st = s.style()
        groove = st.subControlRect(QStyle.ComplexControl.CC_Slider, opt, QStyle.SubControl.SC_SliderGroove, s)
        handle = st.subControlRect(QStyle.ComplexControl.CC_Slider, opt, QStyle.SubControl.SC_SliderHandle, s)
        return {"enabled": win.handoff.isEnabled(), "value": s.value(), "official": getattr(s, "official", None),
                "groove": _rect(s, groove), "handle": _rect(s, handle), "handle_w": handle.width()}

    d["slider"] = _safe(slider)

    def takes():
        lst = win.takes.list
        out = []
        for i in range(lst.count()):
            item = lst.item(i)
            r = lst.visualItemRect(item)
            visible = lst.viewport().rect().contains(r.center())
            t = win.project.take(item.data(0x0100))  # Qt.ItemDataRole.UserRole: the take id
            out.append({"id": item.data(0x0100), "label": t.label() if t else None,
                        "draft": t.is_draft if t else None, "base_id": t.base_id if t else None,
                        "selected": item.isSelected(),
                        "rect": _rect(lst.viewport(), r) if visible else None})
        return out

    d["takes"] = _safe(takes, [])
    d["compare_open"] = _safe(lambda: win.stack.currentWidget() is win.compare)
    d["current_take"] = _safe(lambda: win.current_take().id if win.current_take() else None)

    def modal():
        w = app.activeModalWidget()
        return None if w is None else {"title": w.windowTitle(), "rect": _rect(w)}

    d["modal"] = _safe(modal)
    return d


def launch(probe: Path, app_args: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow, run

    app = QApplication([sys.argv[0]])  # run() takes this instance and sets it up as the app does

    def write():
        win = next((w for w in app.topLevelWidgets() if isinstance(w, MainWindow)), None)
        if win is None:
            return
        tmp = probe.with_suffix(".tmp")
        tmp.write_text(json.dumps(snapshot(app, win)))
        os.replace(tmp, probe)

    timer = QTimer()
    timer.setInterval(250)
    timer.timeout.connect(write)
    timer.start()
    return run(app_args)


def get(probe: Path, expr: str, default: str | None = None) -> int:
    try:
        d = json.loads(probe.read_text())
        value = eval(expr, {"d": d, "env": os.environ})  # noqa: S307 - our own expressions from walkthrough.sh
    except Exception:
        if default is None:
            raise
        value = default
    print(value if isinstance(value, str) else json.dumps(value))
    return 0


if __name__ == "__main__":
    cmd, path, *rest = sys.argv[1:]
    if cmd == "launch":
        sys.exit(launch(Path(path), rest))
    if cmd == "get":
        sys.exit(get(Path(path), rest[0], rest[1] if len(rest) > 1 else None))
    sys.exit(f"unknown command {cmd!r}")
