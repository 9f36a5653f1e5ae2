"""A scripted stand-in for engine.api.Engine: same methods, same event types, no torch, no models.

Used by the app's tests (queue, progress, cancel, errors), the screenshot script and `--demo`. Frames are a
synthetic scene (a disc moving over a gradient) so that previews visibly go from coarse to fine.
"""

from __future__ import annotations

import hashlib
import math
import time

import numpy as np

from engine.api import (
    CancelledError,
    Engine,
    LoadProgress,
    LumosError,
    PlanResult,
    Take,
    check_lora_file,
    handoff_to_gamma_w,
)

DEFAULT_SUMMARY = {
    "light": "fake-light",
    "heavy": "fake-heavy",
    "device": "cpu",
    "dtype": "float32",
    "light_params": 1_000_000,
    "heavy_params": 8_000_000,
    "has_understanding": False,
    "defaults": {"width": 64, "height": 64, "num_frames": 9, "steps": 6, "fps": 8, "flow_shift": 3.0},
}


def synthetic_frames(req, sharpness: float = 1.0, scale: int = 1) -> np.ndarray:
    """[F, H, W, 3] uint8: a disc moving left to right; `sharpness` < 1 blurs it towards its mean."""
    f = req.num_frames if scale == 1 else (req.num_frames - 1) // 4 + 1
    h, w = req.height // scale, req.width // scale
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(req.seed)
    hue = rng.random(3).astype(np.float32)
    out = np.empty((f, h, w, 3), np.float32)
    for i in range(f):
        cx = w * (0.2 + 0.6 * i / max(1, f - 1))
        cy = h * (0.5 + 0.15 * math.sin(i / 2.0 + req.seed))
        disc = ((xx - cx) ** 2 + (yy - cy) ** 2 < (0.18 * min(h, w)) ** 2).astype(np.float32)
        stripes = 0.5 + 0.5 * np.sin(xx * (0.6 + 2 * req.handoff) / max(1, scale))
        bg = np.stack([yy / h, 0.3 + 0.2 * xx / w, 1 - yy / h], -1) * 0.6
        fg = hue[None, None, :] * (0.6 + 0.4 * stripes[..., None])
        out[i] = bg * (1 - disc[..., None]) + fg * disc[..., None]
    mean = out.mean(axis=(1, 2), keepdims=True)
    out = mean + (out - mean) * sharpness
    return np.ascontiguousarray((np.clip(out, 0, 1) * 255).astype(np.uint8))


class ScriptedRuntime:
    """What the real Engine's worker runs, scripted: no torch, no models. The Engine around it is the real one,
    so queueing, cancel and error reporting are exactly what the app gets in use."""

    def __init__(self, *, step_delay: float, load_delay: float, summary: dict):
        self.step_delay = step_delay
        self.load_delay = load_delay
        self.summary = summary
        self.fail_next: tuple[str, str] | None = None  # (message, error type) for the next render
        self.load_error: tuple[str, str] | None = None  # (message, error type) for the next load
        # "{instruction}" is filled in, so that each instruction gets its own plan, as from a real block
        self.plan_text = "1. a disc appears on the left ({instruction})\n2. it rolls to the right"
        # a planner (ModelSpec.planner on a pair without an understanding block): seconds it takes to write (it
        # stops when cancelled, like the real one) and, when set, the reason it fails and falls back
        self.plan_delay = 0.0
        self.planner_fails: str | None = None
        self.planner: str | None = None  # the loaded pair's planner, as the real engine reports it
        self.family: str | None = None
        self.heavy_reads = "instruction"
        self.has_understanding = bool(summary.get("has_understanding"))
        self.results: dict = {}  # instruction -> PlanResult, as engine/planner.py keeps them
        self.loaded = False
        self.loras: dict = {"light": [], "heavy": []}  # as the real engine records them (name, sha256, scale)
        self._cache: dict = {}

    def load(self, spec, progress=None) -> dict:
        for i, what in enumerate(("text encoder", "light generator", "heavy generator")):
            time.sleep(self.load_delay)
            if progress is not None:
                progress(what, (i + 1) / 3)
        if self.load_error is not None:
            error, self.load_error = self.load_error, None
            raise _scripted_error(*error)
        # like the real engine: a missing or non-safetensors LoRA is a ModelError; each is recorded by name + sha256
        self.loras = {role: [_lora_record(path, scale) for path, scale in getattr(spec, f"lora_{role}", ())]
                      for role in ("light", "heavy")}
        self.loaded = True
        # like the real engine: a released system's family is named (engine.api.family_info); it has its own
        # understanding block (which writes no readable plan), and a planner is used only by a pair without one
        family = self.summary.get("family", getattr(spec, "family", None))
        self.family = family
        self.has_understanding = bool(self.summary.get("has_understanding") or family)
        planner = getattr(spec, "planner", None)
        self.planner = str(planner) if planner and not self.has_understanding else None
        self.heavy_reads = getattr(spec, "heavy_reads", "instruction") if self.planner else "instruction"
        self.results = {}
        return dict(self.summary, loras=self.loras, family=family, has_understanding=self.has_understanding,
                    planner=self.planner, heavy_reads=self.heavy_reads)

    def plan(self, instruction: str, cancel_flag=None) -> str | None:
        result = self.plan_result(instruction, cancel_flag)
        return None if result is None else result.text

    def plan_result(self, instruction: str, cancel_flag=None) -> PlanResult | None:
        """Like Runtime.plan_result: None without a block or a planner (a family's block writes none either); a
        planner takes `plan_delay` seconds, stops when cancelled, and falls back with `planner_fails` as reason."""
        if self.planner is None:
            if not self.has_understanding or self.family:
                return None
            return PlanResult(self.plan_text.replace("{instruction}", " ".join(instruction.split())))
        cached = self.results.get(instruction)
        if cached is not None and not cached.fell_back:
            return cached
        end = time.monotonic() + self.plan_delay
        while True:
            if cancel_flag is not None and cancel_flag.is_set():
                raise CancelledError(None)
            if time.monotonic() >= end:
                break
            time.sleep(0.01)
        if self.planner_fails:
            result = PlanResult(instruction, True, self.planner_fails, self.planner)
        else:
            result = PlanResult(self.plan_text.replace("{instruction}", " ".join(instruction.split())),
                                planner=self.planner)
        self.results[instruction] = result
        return result

    def planner_record(self, req, plan) -> dict:
        """engine/planner.py's planner_metadata, for the scripted planner."""
        if self.planner is None:
            return {}
        result = self.results.get(req.prompt)
        source = ("off" if not req.use_plan or plan is None else "given" if req.plan is not None else
                  "fallback" if result is not None and result.fell_back else "planner")
        return {"planner": {"id": self.planner, "heavy_reads": self.heavy_reads, "source": source,
                            "fell_back": source == "fallback",
                            "reason": result.reason if source == "fallback" else None}}

    def render(self, req, *, job_id: int = 0, emit=None, cancel_flag=None) -> Take:
        key = repr((req.to_dict(), self.summary.get("light"), self.summary.get("heavy"), self.loras, self.planner,
                    self.heavy_reads))
        if key in self._cache:
            take = self._cache[key]
            return Take(take.request, take.frames, take.fps, take.metadata, 0.0, from_cache=True)
        take = self._render(req, job_id, emit or (lambda event: None), cancel_flag)
        self._cache[key] = take
        return take

    def _render(self, req, job_id, emit, cancel_flag) -> Take:
        from engine.api import StepEvent

        t0 = time.monotonic()
        gamma_w = math.inf if req.is_draft else handoff_to_gamma_w(req.handoff)
        lead = req.steps if req.is_draft else max(1, round(req.steps * (1 - req.handoff)))
        for i in range(req.steps):
            if cancel_flag is not None and cancel_flag.is_set():
                raise CancelledError(i)
            if self.fail_next is not None:
                error, self.fail_next = self.fail_next, None
                raise _scripted_error(*error)
            time.sleep(self.step_delay)
            frac = (i + 1) / req.steps
            preview = synthetic_frames(req, sharpness=frac ** 2, scale=8) if req.width >= 16 else None
            phase = "draft" if req.is_draft else ("light lead" if i < req.upfb.light_lead else "bridging")
            w_t = 1.0 if req.is_draft or i < lead else 0.2
            emit(StepEvent(job_id, i + 1, req.steps, phase, w_t, 1000 * (1 - frac), time.monotonic() - t0, preview))
        if cancel_flag is not None and cancel_flag.is_set():
            raise CancelledError(req.steps)
        frames = synthetic_frames(req)
        fps = int(self.summary.get("defaults", {}).get("fps", 16))
        # like the real engine: the plan the light generator was conditioned on, written when the request has none
        plan = (req.plan if req.plan is not None else self.plan(req.prompt, cancel_flag)) if req.use_plan else None
        request = req.to_dict() | ({"plan": plan} if plan is not None and req.plan is None else {})
        meta = {"request": request, "plan": plan, "gamma_w": None if gamma_w == math.inf else gamma_w,
                "models": {"light": self.summary.get("light"), "heavy": self.summary.get("heavy")},
                "loras": self.loras, "app": "fake-engine", **self.planner_record(req, plan),
                # like a released system's block: the take names its family (engine/nexus/block.py)
                **({"conditioning": {"family": self.family}} if self.family else {})}
        return Take(req, frames, fps, meta, time.monotonic() - t0)


def _lora_record(path, scale) -> dict:
    p = check_lora_file(path)
    return {"name": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "scale": float(scale)}


def _scripted_error(message: str, error_type: str) -> LumosError:
    """An engine error whose Failed event reports `error_type` (the Engine names errors by their class)."""
    return type(error_type, (LumosError,), {})(message)


def _runtime_knob(name: str) -> property:
    return property(lambda self: getattr(self.runtime, name), lambda self, value: setattr(self.runtime, name, value))


class FakeEngine(Engine):
    """The real Engine over a ScriptedRuntime. Knobs: `step_delay` (s per step), `fail_next` ((message, type)
    makes the next render fail), `load_error`, `summary` (what ModelsLoaded reports), `plan_text`, and for a pair
    loaded with a planner `plan_delay` (s to write a plan, cancellable) and `planner_fails` (a reason to fall back)."""

    step_delay = _runtime_knob("step_delay")
    load_delay = _runtime_knob("load_delay")
    summary = _runtime_knob("summary")
    fail_next = _runtime_knob("fail_next")
    load_error = _runtime_knob("load_error")
    plan_text = _runtime_knob("plan_text")
    plan_delay = _runtime_knob("plan_delay")
    planner_fails = _runtime_knob("planner_fails")
    loaded = _runtime_knob("loaded")

    def __init__(self, spec=None, *, on_event=None, step_delay: float = 0.02, summary: dict | None = None,
                 load_delay: float = 0.05, plan_delay: float = 0.0, planner_fails: str | None = None, **_ignored):
        self.submitted: list = []  # every request submitted, in order (tests read it)
        self.handles: list = []  # every job ever queued, with its final state
        runtime = ScriptedRuntime(step_delay=step_delay, load_delay=load_delay,
                                  summary=dict(DEFAULT_SUMMARY if summary is None else summary))
        runtime.plan_delay, runtime.planner_fails = plan_delay, planner_fails
        super().__init__(spec, on_event=on_event, runtime=runtime)

    def load(self, spec=None, on_event=None):
        return self._remember(super().load(spec, on_event))

    def submit(self, request, **kwargs):
        handle = super().submit(request, **kwargs)
        self.submitted.append(handle.payload)
        return self._remember(handle)

    def submit_plan(self, instruction, on_event=None):
        return self._remember(super().submit_plan(instruction, on_event))

    def _remember(self, handle):
        self.handles.append(handle)
        return handle
