"""The window's takes room: the take on screen (player, storyboard), the strip's star/rename/delete, and compare.

A mixin of MainWindow (app.main_window). Which take is current and what the slider refines is the session's
(Session.select); decoded frames are the session's FrameCache, read from the take's MP4 on the helper thread when
missing.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .bridge import frame_to_qimage, keyframe_indices
from .media import read_mp4_frames
from .project import TakeRecord

EMPTY_PLAYER_TEXT = "Type an instruction and press Draft (Ctrl+Enter).\nThe preview streams here while it renders."


class TakesRoom:
    """MainWindow's methods that show takes."""

    def current_take(self) -> TakeRecord | None:
        return self.session.current()

    def show_take(self, take_id: str) -> None:
        t = self.session.select(take_id)
        if t is None:
            return
        if self.stack.currentWidget() is self.compare:
            self.close_compare()
        self.takes.select(t.id)
        self.handoff.set_value(0.0 if t.is_draft else t.handoff)
        self.gate.update()
        frames = self.session.frames.get(t.id)
        caption = f"{t.label()} · seed {t.seed}"
        if frames is None:
            self.player.clear("Loading the take…")
            self._load_frames(t, lambda _: self._frames_loaded_for_player(t.id))
        else:
            self.session.frames.move_to_end(t.id)
            self.player.set_take(frames, t.fps, caption)
            self._show_keyframes(t.id, frames)
        self.save_soon()

    def _frames_loaded_for_player(self, take_id: str) -> None:
        frames = self.session.frames.get(take_id)
        if self.project.current_take == take_id and frames is not None and not self.player.streaming:
            t = self.project.take(take_id)
            self.player.set_take(frames, t.fps, f"{t.label()} · seed {t.seed}")
            self._show_keyframes(take_id, frames)

    def _load_frames(self, t: TakeRecord, then: Callable) -> None:
        path = self.project.path_of(t)
        if path is None or not path.exists():
            self.player.clear(f"The file of “{t.label()}” is missing from the project folder.")
            return
        if t.id in self._loading_frames:
            return
        self._loading_frames.add(t.id)

        def done(frames):
            self._loading_frames.discard(t.id)
            self.session.frames.keep(t.id, frames)
            then(frames)

        def failed(exc):
            self._loading_frames.discard(t.id)
            self.banner.show_message(f"Could not read “{t.label()}”: {exc}", "error")

        self.tasks.run(read_mp4_frames, path, on_done=done, on_error=failed)

    def _show_keyframes(self, take_id: str, frames: np.ndarray) -> None:
        keys = self.keyframes.get(take_id)
        if keys is None:
            keys = self.keyframes[take_id] = [(i, frame_to_qimage(frames[i])) for i in keyframe_indices(len(frames))]
        self.storyboard.set_keyframes(keys)

    def _show_nothing(self) -> None:
        """No take on screen: a player that says what to do, no storyboard, the slider back at the draft."""
        self.player.clear(EMPTY_PLAYER_TEXT)
        self.player.set_progress(0, 1, "")
        self.storyboard.set_keyframes([])
        self.handoff.set_value(0.0)

    def _reshow_current(self) -> None:
        t = self.session.current()
        if t is not None and t.id in self.session.frames:
            self.player.set_take(self.session.frames[t.id], t.fps, f"{t.label()} · seed {t.seed}", autoplay=False)

    def _keyframe_clicked(self, index: int) -> None:
        self.player.seek(index)
        self.player.setFocus()

    def toggle_star(self, take_id: str) -> None:
        t = self.project.take(take_id)
        if t is not None:
            t.starred = not t.starred
            self.takes.update_take(t)
            self.save_project()

    def rename_take(self, take_id: str, name: str) -> None:
        t = self.project.take(take_id)
        if t is not None:
            t.name = name
            self.takes.update_take(t)
            self.save_project()

    def delete_take(self, take_id: str) -> None:
        if self.project.take(take_id) is None:
            return
        follow = self.session.delete(take_id)
        self.thumbs.pop(take_id, None)
        self.keyframes.pop(take_id, None)
        self.takes.remove_take(take_id)
        if self.project.current_take is None:
            # The take on screen is gone: show its draft (a refine's) or the newest take left, else nothing.
            if follow is not None:
                self.show_take(follow.id)
            else:
                self._show_nothing()
        self.gate.update()
        self.save_project()

    # ------------------------------------------------------------------ compare
    def compare_selected(self) -> None:
        ids = self.takes.selected_ids()
        if len(ids) != 2:
            self.banner.show_message("Select two takes in the strip (Ctrl+click) to compare them.", "info")
            return
        order = self.takes.ids()
        a, b = sorted(ids, key=order.index)
        self.open_compare(a, b)

    def compare_with_draft(self, take_id: str) -> None:
        t = self.project.take(take_id)
        if t is not None and t.base_id and self.project.take(t.base_id):
            self.open_compare(t.base_id, t.id)
        else:
            self.banner.show_message("This take's draft is not in the project any more.", "info")

    def open_compare(self, a_id: str, b_id: str) -> None:
        a, b = self.project.take(a_id), self.project.take(b_id)
        if a is None or b is None:
            return
        missing = [t for t in (a, b) if t.id not in self.session.frames]
        if missing:
            self._pending_compare = (a_id, b_id)
            for t in missing:
                self._load_frames(t, lambda _: self._compare_frames_loaded())
            return
        self.player.transport.pause()
        self.compare.set_takes(self.session.frames[a.id], a.fps, a.label(), self.session.frames[b.id], b.fps, b.label())
        self.stack.setCurrentWidget(self.compare)
        self.compare.setFocus()

    def _compare_frames_loaded(self) -> None:
        if self._pending_compare and all(i in self.session.frames for i in self._pending_compare):
            a, b = self._pending_compare
            self._pending_compare = None
            self.open_compare(a, b)

    def close_compare(self) -> None:
        self.compare.stop()
        self.stack.setCurrentWidget(self.player)

