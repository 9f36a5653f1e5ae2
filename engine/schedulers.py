"""Fresh flow-matching schedulers, one per run (they keep state: never share an instance between runs)."""

from __future__ import annotations

import hashlib


def make_scheduler(kind: str = "unipc", flow_shift: float = 5.0, base_config: dict | None = None):
    """A new scheduler of `kind` ("unipc" as Wan ships, "euler", or "fewstep" for step-distilled generators), with
    `flow_shift` applied.

    base_config: the model folder's own scheduler config, when it has one (its class decides nothing here:
    `kind` does, so that A/B runs differ only in what was asked).
    """
    from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

    if kind == "unipc":
        cfg = dict(base_config or {})
        if cfg.get("_class_name") != "UniPCMultistepScheduler":
            cfg = {}
        cfg.update(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=float(flow_shift))
        cfg.setdefault("num_train_timesteps", 1000)
        return UniPCMultistepScheduler.from_config(cfg)
    if kind == "euler":
        return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=float(flow_shift))
    if kind == "fewstep":
        return _few_step_class()(num_train_timesteps=1000, shift=float(flow_shift), stochastic_sampling=True)
    raise ValueError(f"scheduler must be 'unipc', 'euler' or 'fewstep', got {kind!r}")


def few_step_sigmas(steps: int) -> list[float]:
    """The unshifted sigmas of an n-step distilled run: 1, 1 - 1/n, ... 1/n (timesteps 1000, 750, 500, 250 for 4),
    which the scheduler maps through the flow shift (shift 5: sigmas 1, 0.9375, 0.833, 0.625)."""
    return [1.0 - i / steps for i in range(steps)]


def step_noise_seed(seed: int, step: int) -> int:
    """The seed of the fresh noise that step `step` of a few-step run re-noises with (one CPU generator per step
    and clip: a resumed run, a batch and any device draw the same noise as the full run from the request's seed)."""
    digest = hashlib.sha256(f"lumos-fewstep:{int(seed)}:{int(step)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


_FEW_STEP = None


def _few_step_class():
    """FlowMatchEulerDiscreteScheduler with stochastic sampling (x0 = x - sigma v, re-noised with fresh noise to the
    next sigma), the fixed distilled timesteps, and per-step noise seeded from the clips' seeds (`noise_seeds`)."""
    global _FEW_STEP
    if _FEW_STEP is not None:
        return _FEW_STEP
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler

    class FewStepScheduler(FlowMatchEulerDiscreteScheduler):
        noise_seeds: list[int] | None = None  # one per clip of the batch; None: torch's global generator

        def set_timesteps(self, num_inference_steps=None, device=None, sigmas=None, mu=None, timesteps=None):
            if sigmas is None and timesteps is None and num_inference_steps:
                sigmas = few_step_sigmas(int(num_inference_steps))
            super().set_timesteps(num_inference_steps, device, sigmas=sigmas, mu=mu, timesteps=timesteps)

        def step(self, model_output, timestep, sample, *args, generator=None, **kwargs):
            if generator is None and self.noise_seeds is not None:
                if self.step_index is None:
                    self._init_step_index(timestep)
                generator = [torch.Generator().manual_seed(step_noise_seed(s, self.step_index))
                             for s in self.noise_seeds]
            return super().step(model_output, timestep, sample, *args, generator=generator, **kwargs)

    _FEW_STEP = FewStepScheduler
    return _FEW_STEP
