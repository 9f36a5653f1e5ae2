"""Render the main window in its key states to docs/screenshots/*.png (offscreen, no display needed).

    python scripts/screenshots.py [--engine auto|embedded|fake] [--out docs/screenshots]

States: empty, plain (a plain-word instruction, its plan, an unknown word and what the family cannot draw as asked),
streaming (mid-render), refining (a refine at the default hand-off, mid-way), storyboard (a draft and refines in the takes strip), compare (wipe).
"auto" uses the embedded mini family when it is installed, else the scripted engine (synthetic frames).
Offscreen text needs fonts: apt-get install -y fonts-dejavu-core fontconfig.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def wait_until(app, predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.01)


def pump(app, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engine", choices=("auto", "embedded", "fake"), default="auto")
    ap.add_argument("--family", help="a model family folder (light/, heavy/) to use instead of the embedded one")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = ap.parse_args(argv)
    os.environ["LUMOS_STUDIO_HOME"] = tempfile.mkdtemp(prefix="lumos-shots-")  # never the user's own projects

    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow
    from app.project import Settings
    from app.resources import stylesheet
    from engine.api import embedded_family_available

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setStyle("Fusion")
    app.setStyleSheet(stylesheet())
    use_fake = args.engine == "fake" or (args.engine == "auto" and not embedded_family_available()
                                         and not args.family)
    factory = None
    settings = Settings()
    if args.family and not use_fake:
        settings.model_light = str(Path(args.family) / "light")
        settings.model_heavy = str(Path(args.family) / "heavy")
    if use_fake:
        from app.fake_engine import DEFAULT_SUMMARY, FakeEngine

        summary = dict(DEFAULT_SUMMARY, defaults=dict(DEFAULT_SUMMARY["defaults"], width=256, height=144,
                                                       num_frames=17, steps=12, fps=8))
        factory = partial(FakeEngine, step_delay=0.25, summary=summary)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    win = MainWindow(engine_factory=factory, settings=settings)
    win.resize(1280, 800)
    win.show()

    def shot(name: str) -> None:
        pump(app, 0.3)
        path = out / f"{name}.png"
        win.grab().save(str(path))
        print(f"wrote {path}")

    wait_until(app, lambda: win.summary is not None or win.banner.level == "error", 300, "models")
    if win.summary is None:
        raise SystemExit(f"models did not load: {win.banner.text.text()}")
    win.banner.dismiss()
    shot("empty")

    if win.plan.isVisible():  # plain words, as people type them
        win.prompt.set_text("Please show two red balls rolling to the left while a huge blue box with dots sits in "
                            "the upper right corner under a white sky")
        win.prompt.check_words()
        win.plan.write.click()
        wait_until(app, lambda: win.plan.write.isEnabled(), 300, "the plan")
        shot("plain")

    # an instruction in the embedded world's language
    prompt = ("a big red striped circle at the left. a small blue plain square at the right. gray checked background. "
              "the larger shape moves toward the smaller one.")
    win.prompt.set_text(prompt)
    if win.plan.isVisible():
        win.plan.write.click()
        wait_until(app, lambda: win.plan.write.isEnabled(), 300, "the plan")
    win.settings_panel.lock.setChecked(True)
    win.settings_panel.seed.setValue(42)
    win.draft_button.click()
    wait_until(app, lambda: win.watch_job in win.jobs and win.jobs[win.watch_job].total
               and win.jobs[win.watch_job].step >= win.jobs[win.watch_job].total // 2, 300, "half the draft")
    shot("streaming")
    wait_until(app, lambda: len(win.project.takes) == 1 and win.watch_job is None, 600, "the draft")
    if use_fake:
        win.engine.step_delay = 0.02
    # a full hand-off, then the family's default (its refine caught mid-way: the frames sharpening on screen)
    for value in (1.0, win.handoff.slider.official / 100):
        win.handoff.slider.setValue(round(value * 100))
        win.handoff._fire()
        n = len(win.project.takes)
        if value != 1.0:
            wait_until(app, lambda: win.watch_job in win.jobs and win.jobs[win.watch_job].total
                       and win.jobs[win.watch_job].step >= 3 * win.jobs[win.watch_job].total // 4, 300, "the refine")
            shot("refining")
        wait_until(app, lambda: len(win.project.takes) > n and win.watch_job is None, 900, f"refine {value}")
    draft_id = win.project.takes[0].id
    win.show_take(win.project.takes[-1].id)
    wait_until(app, lambda: win.handoff.describing, 120, "the gate plot")
    win.player.seek(win.project.takes[-1].num_frames // 2)
    shot("storyboard")

    win.takes.list.clearSelection()
    win.takes.list.item(0).setSelected(True)
    win.takes.list.item(win.takes.list.count() - 1).setSelected(True)
    win.open_compare(draft_id, win.project.takes[-1].id)
    win.compare.mode.setCurrentIndex(1)
    win.compare.canvas.wipe = 0.5
    win.compare.transport.pause()
    win.compare.transport.seek(win.project.takes[-1].num_frames // 2)
    shot("compare")
    win.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
