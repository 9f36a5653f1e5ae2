"""What the engine tells its caller: one stream of events, each tagged with the job id it belongs to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Event:
    job_id: int


@dataclass(frozen=True)
class Queued(Event):
    position: int  # jobs ahead of this one


@dataclass(frozen=True)
class Started(Event):
    kind: str  # "render" or "load"


@dataclass(frozen=True)
class LoadProgress(Event):
    message: str
    fraction: float  # 0..1


@dataclass(frozen=True)
class ModelsLoaded(Event):
    summary: dict  # names, device, dtype, parameter counts, family defaults


@dataclass(frozen=True)
class StepEvent(Event):
    """One denoising step finished.

    phase: "draft" (light alone), "light lead" (UPFB's k0 prefix), "bridging" (UPFB), "heavy", "switch-light",
        "switch-heavy". w_t: the gate's light share at this step (1 = light only, 0 = heavy only).
    preview: the current x0 estimate as RGB uint8 frames [F, h, w, 3]: projected at latent resolution, or decoded at
        pixel resolution where the decode budget allows (engine/decoded_preview.py). None: disabled, or keep showing
        the last decoded frames.
    from_cache: true for steps resumed from the draft cache (not recomputed).
    """

    step: int  # 1-based
    total: int
    phase: str
    w_t: float
    timestep: float
    elapsed: float  # seconds since the job started
    preview: np.ndarray | None = None
    from_cache: bool = False


@dataclass(frozen=True)
class Take:
    """A finished render: decoded frames and everything needed to reproduce it."""

    request: Any  # RenderRequest
    frames: np.ndarray  # [F, H, W, 3] uint8, C-contiguous
    fps: int
    metadata: dict  # JSON-safe: request, plan, gamma_w, model ids, app version, timings
    elapsed: float
    from_cache: bool = False  # true when this take came from the takes cache


@dataclass(frozen=True)
class DraftReady(Event):
    """A light-only run finished; its steps are now in the draft cache."""

    take: Take


@dataclass(frozen=True)
class Done(Event):
    take: Take


@dataclass(frozen=True)
class Failed(Event):
    """A job failed. `message` is for a person: what went wrong and what to do."""

    message: str
    error_type: str  # e.g. "RequestError", "ModelError", "OutOfMemory", "InternalError"
    details: str = field(default="", repr=False)  # traceback text, for logs only
    suggested_memory: str | None = None  # OutOfMemory: the memory plan to reload the models with (a one-click offer)


@dataclass(frozen=True)
class Cancelled(Event):
    at_step: int | None = None


@dataclass(frozen=True)
class PlanReady(Event):
    """The understanding block's (or the planner's) readable plan for an instruction (None when the models have
    neither). fell_back: the planner failed and the plan is the instruction as typed; reason: why, to show."""

    instruction: str
    plan: str | None
    fell_back: bool = False
    reason: str | None = None
