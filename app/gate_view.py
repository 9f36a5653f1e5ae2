"""What the hand-off panel shows for the draft on screen: the amber mark, the gate plot and its words. No Qt here.

The gate depends on the draft's steps, scheduler and flow shift, resolved by the engine (engine.api.resolve_request)
as for the render itself; its timesteps need diffusers, so they are computed once per (steps, shift, scheduler) on a
helper thread after the models have loaded, then kept.
"""

from __future__ import annotations

from typing import Callable

from engine.api import RenderRequest, RequestError, Resolved, default_handoff, gate_schedule, resolve_request

from .project import TakeRecord

DRAFT_SETTINGS = {"Size": ("width", "height"), "Frames": ("num_frames",), "Steps": ("steps",),
                  "Guidance light": ("guidance_light",), "Sampler": ("scheduler",)}


def resolve_draft(draft: TakeRecord, defaults: dict) -> Resolved | None:
    """The draft's run as the engine resolves it (steps, scheduler, flow shift; `.timesteps` imports diffusers). The
    models' shift is what the engine recorded in the take, else the family default. None for an unusable request.
    The one place the app resolves them."""
    recorded = draft.metadata.get("flow_shift") if isinstance(draft.metadata, dict) else None
    model_shift = recorded if isinstance(recorded, (int, float)) else defaults.get("flow_shift")
    try:
        return resolve_request(RenderRequest.from_dict(draft.request), model_shift)
    except (RequestError, TypeError, ValueError):
        return None


def changed_since_draft(panel: dict, draft_request: dict) -> str:
    """The settings panel's request fields that differ from the draft's ("Steps, Size"), or ""."""
    return ", ".join(name for name, keys in DRAFT_SETTINGS.items()
                     if any(panel[k] != draft_request.get(k) for k in keys))


class GateView:
    """Keeps the hand-off panel in step with the session's current draft and the loaded models."""

    def __init__(self, panel, settings_panel, session, run: Callable):
        self.panel = panel  # widgets.handoff.HandoffPanel
        self.settings_panel = settings_panel  # widgets.controls.SettingsPanel
        self.session = session
        self.run = run  # Tasks.run: the function on a helper thread, on_done on the GUI thread
        self.timesteps: dict[tuple, list[float]] = {}

    def defaults(self) -> dict:
        return (self.session.summary or {}).get("defaults") or {}

    def mark_default(self, shift: float) -> None:
        """The amber mark: the family's measured hand-off (its lumos.json, e.g. from the mini VR-Bench) where it was
        measured at this flow shift, else the authors' γ_w = 0.3 placed for this shift."""
        s, measured = default_handoff(self.defaults(), shift)
        if measured:
            self.panel.set_official(s, "model family's measured default")
        else:
            self.panel.set_official(s)

    def update(self) -> None:
        """The slider is live only with a draft to refine; its dots are the hand-offs already rendered."""
        base = self.session.base() if self.session.project is not None else None
        panel = self.panel
        panel.setEnabled(base is not None)
        if base is None:
            panel.words.setText("Render a draft, then slide to refine it with the heavy generator.")
            panel.set_rendered(set())
            panel.set_describer(None)
            panel.plot.placeholder = "the gate appears after a draft"
            panel.plot.set_weights([])
            return
        panel.plot.placeholder = ("computing the gate…" if self.session.summary
                                  else "the gate appears once models load")
        panel.plot.update()
        if not panel.describing:
            panel.words.setText("Slide to refine this draft with the heavy generator.")
        panel.set_rendered(self.session.rendered_handoffs(base))
        self._prepare(base)

    def _prepare(self, base: TakeRecord) -> None:
        if self.session.summary is None:
            return  # gate_schedule imports diffusers: only once the models (and diffusers) are loaded
        resolved = resolve_draft(base, self.defaults())
        if resolved is None:
            return
        key = (resolved.steps, resolved.flow_shift, resolved.scheduler)
        self.mark_default(resolved.flow_shift)
        if key in self.timesteps:
            self.panel.set_describer(self._describer(key))
            return
        self.run(lambda: list(resolved.timesteps), on_done=lambda ts: self._ready(key, ts))

    def _ready(self, key: tuple, ts: list[float]) -> None:
        self.timesteps[key] = ts
        base = self.session.base()
        if base is not None:
            self._prepare(base)

    def _describer(self, key: tuple):
        steps, shift, sched = key
        ts = self.timesteps[key]

        def describe(s: float):
            lead = self.settings_panel.values()["upfb"]["light_lead"] if s > 0 else 0
            g = gate_schedule(steps, s, flow_shift=shift, scheduler=sched, light_lead=min(lead, steps), timesteps=ts)
            words = g.describe()
            base = self.session.base()
            changed = changed_since_draft(self.settings_panel.request_fields(), base.request) if base else ""
            if changed:
                # The slider refines the draft on screen, with that draft's settings.
                words += (f". {changed} changed since this draft: the slider refines the draft shown; press Draft "
                          "to use the new settings")
            return list(g.w), words

        return describe
