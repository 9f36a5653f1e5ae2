"""The denoising loop: per-generator CFG, the four modes, UPFB, step callbacks and cancel points."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .request import UPFBParams
from .upfb import fuse_velocities, gate

_OFFICIAL = UPFBParams()


@dataclass(frozen=True)
class Conditioning:
    """Encoder states per generator; an `*_uncond` of None means that generator runs without CFG."""

    light_cond: torch.Tensor
    light_uncond: torch.Tensor | None
    heavy_cond: torch.Tensor
    heavy_uncond: torch.Tensor | None


@dataclass(frozen=True)
class StepPlan:
    """Who runs at one step and how their velocities combine."""

    phase: str
    w_t: float  # light share: 1 = light alone, 0 = heavy alone
    run_light: bool
    run_heavy: bool
    fuse: bool  # UPFB fusion (else the one generator's velocity is used as is)


@dataclass(frozen=True)
class SamplerSettings:
    mode: str  # "light", "heavy", "switch", "upfb"
    gamma_w: float = math.inf
    gamma_hf: float = _OFFICIAL.gamma_hf
    sigma_min: float = _OFFICIAL.sigma_min
    sigma_max: float = _OFFICIAL.sigma_max
    light_lead: int = 0
    switch_step: int = 0
    guidance_light: float = 5.0
    guidance_heavy: float = 5.0

    @property
    def light_only(self) -> bool:
        return self.mode == "light" or (self.mode == "upfb" and self.gamma_w == math.inf)


def plan_step(settings: SamplerSettings, index: int, timestep: float) -> StepPlan:
    """Decide one step. A generator is only called where it contributes to the velocity."""
    if settings.light_only:
        return StepPlan("draft", 1.0, True, False, False)
    if settings.mode == "heavy":
        return StepPlan("heavy", 0.0, False, True, False)
    if settings.mode == "switch":
        if index < settings.switch_step:
            return StepPlan("switch-light", 1.0, True, False, False)
        return StepPlan("switch-heavy", 0.0, False, True, False)
    if index < settings.light_lead:
        return StepPlan("light lead", 1.0, True, False, False)
    w = gate(timestep, settings.gamma_w)
    # at w = 1 the heavy velocity has zero weight; the light one is always needed (fusion and RMS rebalance)
    return StepPlan("bridging", w, True, w < 1.0, True)


def guided_velocity(model, latents: torch.Tensor, timestep: torch.Tensor, cond: torch.Tensor,
                    uncond: torch.Tensor | None, guidance: float) -> torch.Tensor:
    """CFG as diffusers' WanPipeline computes it: v_u + g (v_c - v_u), two separate passes."""
    x = latents.to(model.dtype)
    t = timestep.expand(latents.shape[0])
    v = model(hidden_states=x, timestep=t, encoder_hidden_states=cond, return_dict=False)[0]
    if uncond is not None and guidance > 1.0:
        v_u = model(hidden_states=x, timestep=t, encoder_hidden_states=uncond, return_dict=False)[0]
        v = v_u + guidance * (v - v_u)
    return v


StepHook = Callable[[int, StepPlan, torch.Tensor, torch.Tensor, object], None]


@torch.no_grad()
def denoise(light, heavy, cond: Conditioning, settings: SamplerSettings, scheduler, latents: torch.Tensor, *,
            start_step: int = 0, before_step: StepHook | None = None, after_step: StepHook | None = None,
            check_cancel: Callable[[int], None] | None = None) -> torch.Tensor:
    """Run the scheduler's steps from `start_step` (its state must be the one before that step) and return latents.

    before_step(i, plan, latents, None, scheduler): called before step i changes anything (snapshots for the cache).
    after_step(i, plan, latents, velocity, scheduler): called after step i with the latents it started from and
        the velocity it used, so x0 = latents - sigma_i * velocity (previews, progress).
    check_cancel(i): raises to stop; called at the top of every step.
    """
    timesteps = scheduler.timesteps
    for i in range(start_step, len(timesteps)):
        if check_cancel is not None:
            check_cancel(i)
        t = timesteps[i]
        plan = plan_step(settings, i, float(t))
        if before_step is not None:
            before_step(i, plan, latents, None, scheduler)
        v_light = v_heavy = None
        if plan.run_light:
            v_light = guided_velocity(light, latents, t, cond.light_cond, cond.light_uncond, settings.guidance_light)
        if plan.run_heavy:
            v_heavy = guided_velocity(heavy, latents, t, cond.heavy_cond, cond.heavy_uncond, settings.guidance_heavy)
        if plan.fuse:
            # at w_t = 1 the heavy velocity has weight 0 and fuse_velocities never reads it
            velocity = fuse_velocities(v_light, v_light if v_heavy is None else v_heavy, plan.w_t,
                                       gamma_hf=settings.gamma_hf, sigma_min=settings.sigma_min,
                                       sigma_max=settings.sigma_max)
        else:
            velocity = v_light if plan.run_light else v_heavy
        new_latents = scheduler.step(velocity, t, latents, return_dict=False)[0]
        if after_step is not None:
            after_step(i, plan, latents, velocity, scheduler)
        latents = new_latents
    return latents
