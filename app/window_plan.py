"""The window's plan room: the plan panel for whoever writes the plan, Write plan / Cancel, and a planner's fallback.

A mixin of MainWindow (app.main_window). Who writes the plan follows the loaded models' summary (or, before they are
loaded, what the configured spec is expected to be): the understanding block of a family, a plain pair's planner
(an instruction LLM, engine/planner.py: named in the panel's title), or nobody readable: the Lumos-Nexus release
reads the instruction directly (its block writes no plan), and the panel says so instead of offering an editor. The
plan's ownership (written for which instruction, edited by hand) is app.plan_state's. A plan the planner could not
write falls back to the instruction as typed: a banner and the panel say why.
"""

from __future__ import annotations

from PySide6.QtWidgets import QApplication

from .plan_state import PlanState, same_instruction
from .window_models import loaded_family, short_model_name

BLOCK, PLANNER, DIRECT = "block", "planner", "direct"


def plan_mode(info: dict) -> str | None:
    """Who writes the plan for models described by `info` (a load summary, or expected_defaults with the spec's
    family and planner): DIRECT for a family whose block writes no readable plan, PLANNER for a pair with a
    planner, BLOCK for an understanding block, None for none (the panel is hidden)."""
    family = loaded_family(info)
    if family and not family.get("writes_plan", True):
        return DIRECT
    if isinstance(info.get("planner"), str) and info.get("planner"):
        return PLANNER
    return BLOCK if info.get("has_understanding") else None


def fallback_words(reason) -> str:
    return (f"The planner could not write a plan: {reason or 'no reason given'}; the light generator reads the "
            "instruction as typed.")


class PlanRoom:
    """MainWindow's plan panel methods."""

    plan_mode: str | None = None
    _plan_job: int | None = None  # the Write plan job running or queued
    _fallback_for: tuple[str, str] | None = None  # (instruction, reason) the planner last fell back for

    def show_plan_panel(self, info: dict) -> None:
        """Show the panel for the models `info` describes (see plan_mode), or hide it when nothing writes a plan."""
        self.plan_mode = mode = plan_mode(info)
        self.plan.set_source(mode, info.get("planner"), loaded_family(info).get("label"))
        self.plan.setVisible(mode is not None)
        self._refresh_plan_status()

    def plan_request_fields(self, prompt: str) -> dict:
        """The request's plan fields from the panel: a hand edit made for this instruction is sent as the plan
        (app.plan_state); otherwise the block or the planner writes the plan of this very instruction."""
        if self.plan_mode not in (BLOCK, PLANNER) or not self.plan.isVisible():
            return {"plan": None, "use_plan": True}
        use_plan = self.plan.use.isChecked()
        return {"plan": self.session.plan_state.plan_for_request(prompt) if use_plan else None, "use_plan": use_plan}

    def request_plan(self) -> None:
        if self.engine is None or not self.prompt.text().strip():
            self.banner.show_message("Type an instruction first; the plan is written from it.", "warning")
            return
        planner = (self.session.summary or {}).get("planner") if self.plan_mode == PLANNER else None
        handle = self.engine.submit_plan(self.prompt.text())
        self._plan_job = handle.id
        label = "Writing the plan" + (f" ({short_model_name(planner)})" if planner else "")
        self.session.track(handle, "plan", label)
        if self.plan.write.hasFocus():
            self.prompt.edit.setFocus()  # disabling the focused button would push focus down to the settings
        self.plan.set_writing(True)

    def cancel_plan(self) -> None:
        """The panel's Cancel: stop writing the plan (queued or running)."""
        if self._plan_job is not None:
            self.session.cancel(self._plan_job)

    def escape_plan(self) -> bool:
        """Esc while a plan is written and no render runs: cancel the plan (True when it did)."""
        if self._plan_job is None or self.session.rendering():
            return False
        self.cancel_plan()
        return True

    def plan_job_ended(self, job, cancelled: bool = False) -> None:
        """A job failed or was cancelled: when it was Write plan's, the panel is ready again."""
        if job is None or job.kind != "plan":
            return
        self._plan_button_ready()
        if cancelled:
            self.statusBar().showMessage("Writing the plan was cancelled.", 4000)
        self._refresh_plan_status()

    def _on_plan(self, ev) -> None:
        self.session.end(ev.job_id)
        self._plan_button_ready()
        fell_back = bool(getattr(ev, "fell_back", False))
        if ev.plan is None:
            if self.plan_mode != DIRECT:
                self.plan_mode = None
                self.plan.setVisible(False)
        elif same_instruction(ev.instruction, self.prompt.text()):
            # asked for with Write plan: it replaces a hand edit too
            self.session.plan_state = PlanState(ev.plan, ev.instruction, False)
            self.plan.set_plan(ev.plan)
            self._fallback_for = (ev.instruction, ev.reason or "") if fell_back else None
            self._refresh_plan_status()
            self.save_soon()
        if fell_back:
            self.banner.show_message(fallback_words(ev.reason), "warning")
        self._job_ended()

    def take_plan(self, req, metadata) -> None:
        """A finished take of the shown instruction: show the plan it was conditioned on (editable from here), and
        the planner's fallback when it fell back."""
        meta = metadata if isinstance(metadata, dict) else {}
        plan = meta.get("plan")
        if not (isinstance(plan, str) and plan and same_instruction(req.prompt, self.prompt.text())):
            return
        record = meta.get("planner") if isinstance(meta.get("planner"), dict) else {}
        if record.get("fell_back"):
            reason = record.get("reason") if isinstance(record.get("reason"), str) else ""
            self._fallback_for = (req.prompt, reason)
            self.banner.show_message(fallback_words(reason), "warning")
        elif record.get("source") == "planner":
            self._fallback_for = None
        self._show_written_plan(req.prompt, plan)

    def _plan_button_ready(self) -> None:
        self._plan_job = None
        had_focus = self.plan.write.hasFocus() or self.plan.cancel.hasFocus() or QApplication.focusWidget() is None
        self.plan.set_writing(False)
        if had_focus:
            self.prompt.edit.setFocus()  # never leave focus wherever Qt moved it while the button was disabled

    def _show_written_plan(self, instruction: str, plan: str) -> None:
        self.session.plan_state.written(instruction, plan)
        self.plan.set_plan(self.session.plan_state.text)
        self._refresh_plan_status()
        self.save_soon()

    def _plan_edited(self, text: str) -> None:
        self.session.plan_state.edit(self.prompt.text(), text)
        self._refresh_plan_status()

    def _refresh_plan_status(self) -> None:
        instruction, plan = self.prompt.text(), self.session.plan_state
        failed = self._fallback_for
        failed = failed if failed and same_instruction(failed[0], instruction) and not plan.edited else None
        status = plan.status(instruction)
        words = ("The instruction as typed: the planner wrote no plan (Write plan asks it again)."
                 if failed and status == "written" else plan.describe(instruction, self.plan.who))
        self.plan.show_status(status, words)
        self.plan.show_fallback(failed[1] or "no reason given" if failed else None)
