"""The whole loop on the real Engine with tiny models: instruction → draft → storyboard → slider refine → export,
and the exported file reproduces the take."""

from __future__ import annotations

import numpy as np
import pytest

from app.main_window import MainWindow
from app.media import read_mp4_frames
from app.project import Settings
from engine.api import RenderRequest, read_take_metadata

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_family(tmp_path_factory):
    from devtools.tiny_models import build_tiny_family

    return build_tiny_family(tmp_path_factory.mktemp("tiny"))


def test_draft_refine_export_reproduce(qtbot, tiny_family, tmp_path, monkeypatch):
    settings = Settings(model_light=str(tiny_family / "light"), model_heavy=str(tiny_family / "heavy"),
                        model_device="cpu")
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.summary is not None or win.banner.isVisible(), timeout=120000)
    assert win.summary is not None, win.banner.text.text()
    sp = win.settings_panel
    sp.size.setCurrentIndex(sp.size.count() - 1)  # Custom
    sp.width.setValue(32)
    sp.height.setValue(32)
    sp.frames.setValue(5)
    sp.steps.setValue(4)
    sp.guidance_light.setValue(1.0)
    sp.guidance_heavy.setValue(1.0)
    sp.lock.setChecked(True)
    sp.seed.setValue(7)
    steps_seen = []
    orig = win.player.show_step
    win.player.show_step = lambda images, caption: (steps_seen.append(len(images)), orig(images, caption))

    # 1. Instruction → draft → storyboard.
    win.prompt.set_text("a red circle moves right")
    win.draft_button.click()
    qtbot.waitUntil(lambda: len(win.project.takes) == 1 or win.banner.level == "error", timeout=120000)
    assert len(win.project.takes) == 1, win.banner.text.text()
    draft = win.project.takes[0]
    assert draft.is_draft and draft.num_frames == 5 and (draft.width, draft.height) == (32, 32)
    assert steps_seen and len(steps_seen) == 4 and steps_seen[0] >= 1  # previews streamed per step
    assert win.storyboard.frames and win.player.source is not None
    assert win.handoff.isEnabled()

    # 2. Slider → refine (debounced), streamed, kept as a take.
    win.handoff.slider.setValue(60)
    win.handoff._fire()  # as on release
    qtbot.waitUntil(lambda: len(win.project.takes) == 2 or win.banner.level == "error", timeout=120000)
    assert len(win.project.takes) == 2, win.banner.text.text()
    refined = win.project.takes[1]
    assert not refined.is_draft and refined.handoff == 0.6 and refined.base_id == draft.id
    assert win.project.current_take == refined.id
    assert not np.array_equal(win.frames[refined.id], win.frames[draft.id])
    qtbot.waitUntil(lambda: win.handoff.describing, timeout=60000)
    assert "leads" in win.handoff.words.text()

    # 3. Export, read back, reproduce.
    out = tmp_path / "refined.mp4"
    done = []
    win.export_take(refined.id, out, on_done=done.append)
    qtbot.waitUntil(lambda: bool(done) or win.banner.level == "error", timeout=60000)
    assert done, win.banner.text.text()
    frames = read_mp4_frames(out)
    assert frames.shape == (5, 32, 32, 3)
    meta = read_take_metadata(out)
    req = RenderRequest.from_dict(meta["request"])
    assert req == RenderRequest.from_dict(refined.request)
    assert req.handoff == 0.6 and req.seed == 7 and req.prompt == "a red circle moves right"
    # Dropping it back restores the settings; "Render it" finds the existing take (no new job).
    win.prompt.set_text("changed")
    win.reproduce_from(out)
    qtbot.waitUntil(lambda: win.prompt.text() == "a red circle moves right", timeout=30000)
    win.banner.action.click()
    assert win.project.current_take == refined.id and len(win.project.takes) == 2
    # The autosaved project lists both takes with their files.
    qtbot.waitUntil(lambda: all(t.file for t in win.project.takes), timeout=60000)
    original = win.frames[refined.id]
    win.close()

    # 4. On another "machine" (fresh engine, empty user folders), the dropped file renders the same video.
    monkeypatch.setenv("LUMOS_STUDIO_HOME", str(tmp_path / "elsewhere"))
    win2 = MainWindow(settings=Settings(model_light=settings.model_light, model_heavy=settings.model_heavy,
                                        model_device="cpu"))
    qtbot.addWidget(win2)
    win2.show()
    qtbot.waitUntil(lambda: win2.summary is not None, timeout=120000)
    win2.reproduce_from(out)
    qtbot.waitUntil(lambda: win2.banner.action.text() == "Render it", timeout=30000)
    win2.banner.action.click()
    qtbot.waitUntil(lambda: len(win2.project.takes) == 1 or win2.banner.level == "error", timeout=120000)
    again = win2.project.takes[0]
    assert RenderRequest.from_dict(again.request) == req
    diff = np.abs(win2.frames[again.id].astype(int) - original.astype(int)).max()
    assert diff <= 2, f"reproduced frames differ by up to {diff}"
    win2.close()


def test_real_engine_slider_cancels_stale_refine_and_reuses(qtbot, tiny_family):
    settings = Settings(model_light=str(tiny_family / "light"), model_heavy=str(tiny_family / "heavy"),
                        model_device="cpu")
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.summary is not None or win.banner.isVisible(), timeout=120000)
    sp = win.settings_panel
    sp.size.setCurrentIndex(sp.size.count() - 1)
    sp.width.setValue(32)
    sp.height.setValue(32)
    sp.frames.setValue(5)
    sp.steps.setValue(16)  # long enough a refine to move the slider on while it runs
    sp.guidance_light.setValue(1.0)
    sp.guidance_heavy.setValue(1.0)
    sp.lock.setChecked(True)
    win.prompt.set_text("a blue square moves up")
    win.draft_button.click()
    qtbot.waitUntil(lambda: len(win.project.takes) == 1 or win.banner.level == "error", timeout=120000)
    assert len(win.project.takes) == 1, win.banner.text.text()
    handles = []
    orig_submit = win.engine.submit

    def spy(req, **kw):
        handles.append(orig_submit(req, **kw))
        return handles[-1]

    win.engine.submit = spy
    win.handoff.slider.setValue(30)
    win.handoff._fire()
    qtbot.waitUntil(lambda: any(j.kind == "refine" and j.step >= 1 for j in win.jobs.values()), timeout=60000)
    win.handoff.slider.setValue(80)
    win.handoff._fire()
    qtbot.waitUntil(lambda: any(t.handoff == 0.8 for t in win.project.takes), timeout=120000)
    assert [(h.request.handoff, h.state) for h in handles] == [(0.3, "cancelled"), (0.8, "done")]
    assert not any(t.handoff == 0.3 for t in win.project.takes)
    win.handoff.set_value(0.0, fire=True)
    win.handoff.set_value(0.8, fire=True)
    assert len(handles) == 2 and win.current_take().handoff == 0.8
    win.close()
