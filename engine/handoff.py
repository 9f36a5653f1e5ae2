"""The hand-off slider: s in [0, 1] -> UPFB's gate exponent gamma_w, and the gate it produces over the steps.

The gate w_t = 1/2 (1 + cos(pi (1 - tau)^gamma_w)) crosses 1/2 where (1 - tau)^gamma_w = 1/2, i.e. at
tau* = 1 - 2^(-1/gamma_w). We let the slider choose *where in the sampling run* that crossover happens: with the
flow schedule sigma(u) = mu u / (1 + (mu - 1) u) over the run position u (1 at the first step, 0 at the end),
s is the run position of the crossover, so the light generator leads for about (1 - s) of the steps. That makes
the slider read in steps whatever the shift, and puts the authors' gamma_w = 0.3 (shift 5) at s = 0.645, where
the light generator leads 18 of 50 steps, as docs/design.md §2 says.

`resolve_request` is the one place where a request's flow shift, gamma_w and gate are worked out: the sampler, the
take's metadata and the app's gate plot all read them from the `Resolved` it returns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

from .gate import gate

OFFICIAL_GAMMA_W = 0.3
DEFAULT_FLOW_SHIFT = 5.0
# Below this, gamma_w is so large that the gate never lets the heavy generator in: treat as the draft.
_DRAFT_EPS = 1e-6


def _shifted_sigma(u: float, shift: float) -> float:
    return shift * u / (1.0 + (shift - 1.0) * u)


def _unshifted(sigma: float, shift: float) -> float:
    return sigma / (shift - (shift - 1.0) * sigma)


def handoff_to_gamma_w(s: float, flow_shift: float = DEFAULT_FLOW_SHIFT) -> float:
    """Monotone map from the slider (0 = draft, 1 = heavy almost from the first step) to gamma_w.

    Returns math.inf at s = 0 (w_t = 1 everywhere: the light generator alone) and 0 at s = 1.
    """
    s = min(max(float(s), 0.0), 1.0)
    if s <= _DRAFT_EPS:
        return math.inf
    if s >= 1.0:
        return 0.0
    tau_star = _shifted_sigma(s, flow_shift)
    return -1.0 / math.log2(1.0 - tau_star)


def gamma_w_to_handoff(gamma_w: float, flow_shift: float = DEFAULT_FLOW_SHIFT) -> float:
    """Inverse of `handoff_to_gamma_w` (used to mark the authors' default on the slider)."""
    if gamma_w == math.inf:
        return 0.0
    if gamma_w <= 0:
        return 1.0
    tau_star = 1.0 - 2.0 ** (-1.0 / gamma_w)
    return _unshifted(tau_star, flow_shift)


OFFICIAL_HANDOFF = gamma_w_to_handoff(OFFICIAL_GAMMA_W)


def default_handoff(defaults: dict, flow_shift: float | None = None) -> tuple[float, bool]:
    """A model family's default hand-off and whether it was measured: its lumos.json "handoff" (valid at the family's
    own flow shift), else the authors' gamma_w = 0.3 placed for `flow_shift` (default: the family's)."""
    family_shift = float(defaults.get("flow_shift", DEFAULT_FLOW_SHIFT))
    shift = family_shift if flow_shift is None else float(flow_shift)
    measured = defaults.get("handoff")
    if isinstance(measured, (int, float)) and shift == family_shift:
        return float(measured), True
    return gamma_w_to_handoff(OFFICIAL_GAMMA_W, shift), False


@dataclass(frozen=True)
class GateSchedule:
    """The gate over one run: what the slider's little plot shows."""

    timesteps: tuple[float, ...]
    w: tuple[float, ...]  # light share per step, 1.0 for light-lead steps
    gamma_w: float
    light_lead: int

    @property
    def light_leading_steps(self) -> int:
        return sum(1 for w in self.w if w > 0.5)

    def describe(self) -> str:
        """The run in plain words: who leads (w > ½) for how many of the steps."""
        n = len(self.w)
        if self.gamma_w == math.inf:
            return f"draft: the light generator runs all {n} steps alone"
        lead = self.light_leading_steps
        alone = f" (the first {self.light_lead} alone, reused from the draft)" if self.light_lead else ""
        if lead == 0:
            return f"the heavy generator leads all {n} steps; the light one keeps a fading share of the layout"
        if lead >= n:
            return f"light generator leads all {n} steps{alone}; the heavy one only adds a share of texture"
        return f"light generator leads {lead} of {n} steps{alone}, then the heavy one takes over"


def flow_timesteps(steps: int, flow_shift: float = DEFAULT_FLOW_SHIFT, scheduler: str = "unipc") -> list[float]:
    """The timesteps the sampler will visit (built by the real diffusers scheduler, so they always agree)."""
    from .schedulers import make_scheduler

    sched = make_scheduler(scheduler, flow_shift)
    sched.set_timesteps(steps)
    return [float(t) for t in sched.timesteps]


def gate_schedule(steps: int, handoff: float, *, flow_shift: float = DEFAULT_FLOW_SHIFT, scheduler: str = "unipc",
                  light_lead: int = 0, gamma_w: float | None = None,
                  timesteps: list[float] | None = None) -> GateSchedule:
    """w_t for every step of a run with this slider value (gamma_w, when given, overrides the slider)."""
    g = handoff_to_gamma_w(handoff, flow_shift) if gamma_w is None else float(gamma_w)
    return Resolved("upfb", steps, scheduler, float(flow_shift), g, light_lead, 0).gate(timesteps)


@dataclass(frozen=True)
class Resolved:
    """What a request resolves to once the models' flow shift is known, worked out once per render.

    gamma_w: the gate exponent. In "upfb" mode the request's own gamma_w, else the slider's handoff mapped at
        flow_shift (math.inf at handoff 0: the draft). "light" is math.inf (the light generator alone); "heavy" and
        "switch" do not use the gate and carry 0.0.
    light_lead: the steps the light generator runs alone before the gate ("upfb" only, else 0).
    """

    mode: str
    steps: int
    scheduler: str
    flow_shift: float
    gamma_w: float
    light_lead: int
    switch_step: int

    @property
    def recorded_gamma_w(self) -> float | None:
        """gamma_w as a take records it: only UPFB with a finite exponent has one (others record null)."""
        return self.gamma_w if self.mode == "upfb" and self.gamma_w != math.inf else None

    @cached_property
    def timesteps(self) -> tuple[float, ...]:
        """The timesteps the sampler visits (built by the diffusers scheduler: importing it loads diffusers)."""
        return tuple(flow_timesteps(self.steps, self.flow_shift, self.scheduler))

    def gate(self, timesteps: "list[float] | tuple[float, ...] | None" = None) -> GateSchedule:
        """The gate over the run: w per step, the light-leading steps and the run in words (what the slider plots).
        timesteps: this run's, when the caller already has them (else `self.timesteps`)."""
        ts = tuple(self.timesteps if timesteps is None else timesteps)
        w = [1.0 if i < self.light_lead else gate(t, self.gamma_w) for i, t in enumerate(ts)]
        return GateSchedule(ts, tuple(w), self.gamma_w, self.light_lead)


def resolve_request(request, model_flow_shift: float | None = None) -> Resolved:
    """Resolve `request` (an engine.request.RenderRequest) for models whose scheduler uses `model_flow_shift`.

    The flow shift is the request's own, else the models' (the loaded light generator's scheduler config; the
    `flow_shift` a take's metadata or `ModelsLoaded.summary` reports), else Wan's 5.
    """
    if request.flow_shift is not None:
        shift = float(request.flow_shift)
    elif model_flow_shift is not None:
        shift = float(model_flow_shift)
    else:
        shift = DEFAULT_FLOW_SHIFT
    if request.mode == "upfb":
        gamma_w = float(request.gamma_w) if request.gamma_w is not None else handoff_to_gamma_w(request.handoff, shift)
    else:
        gamma_w = math.inf if request.mode == "light" else 0.0
    return Resolved(mode=request.mode, steps=int(request.steps), scheduler=request.scheduler, flow_shift=shift,
                    gamma_w=gamma_w, light_lead=request.upfb.light_lead if request.mode == "upfb" else 0,
                    switch_step=request.switch_step or 0)
