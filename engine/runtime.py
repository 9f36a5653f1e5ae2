"""What the worker thread runs: loaded models, the draft and takes caches, and one render from request to Take."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from typing import Callable

import numpy as np

from . import __version__
from .conditioning import ConditioningMixin
from .decoded_preview import DEFAULT_FRACTION, DecodePolicy
from .errors import Cancelled as CancelledError
from .errors import LumosError, OutOfMemory
from .events import StepEvent, Take
from .handoff import DEFAULT_FLOW_SHIFT, Resolved, resolve_request
from .model_limits import model_limits
from .request import (
    ModelLimits,
    RenderRequest,
    RequestError,
    check_request,
    take_identity,
)

log = logging.getLogger(__name__)


def _digest(data: dict) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:32]


class Runtime(ConditioningMixin):
    """Models + caches. Not thread-safe by itself: the Engine's single worker is its only caller for renders."""

    def __init__(self, cache_bytes: int = 2 << 30, preview: bool = True, max_lead_fraction: float = 0.5,
                 preview_decode: float = DEFAULT_FRACTION):
        """cache_bytes: budget for the draft and takes caches (host memory).
        preview_decode: the share of a render's step time that step previews decoded to pixels may take
            (engine/decoded_preview.py; 0: always the latent projection).
        max_lead_fraction: the longest light lead, as a share of the steps, that a refine can resume from the
            draft cache (each kept step costs a latent-sized snapshot and the scheduler's history).
        """
        from .cache import ByteLRU

        self.max_lead_fraction = max_lead_fraction
        self.models = None
        self.previewer = None
        self.preview_enabled = preview
        self.decode_policy = DecodePolicy(preview_decode)
        # the draft cache gets most of the budget: its entries are many snapshots; takes are decoded frames
        self.draft_cache = ByteLRU(cache_bytes * 3 // 4)
        self.takes_cache = ByteLRU(cache_bytes // 4)
        self._text_cache: dict[tuple, object] = {}
        self._plans: dict[str, str] = {}
        self.limits: ModelLimits | None = None  # what the loaded pair can render (None before loading)

    @property
    def loaded(self) -> bool:
        return self.models is not None

    # -- loading ----------------------------------------------------------------------------------------
    def load(self, spec, progress: Callable[[str, float], None] | None = None) -> dict:
        from .loading import load_models
        from .memory_plan import free_device_memory, is_out_of_memory

        try:
            models = load_models(spec, progress)
            failed = None
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            failed = getattr(spec, "memory", "auto")
        if failed is not None:  # outside the except block: nothing holds the partly placed models
            free_device_memory()
            if failed == "low":
                message = ("Out of memory while placing the models on the device with the low memory plan: close "
                           "other programs using the GPU, or choose a smaller pair.")
            else:
                message = ("Out of memory while placing the models on the device: load them with the low memory "
                           "plan (--memory low).")
            raise OutOfMemory(message, suggested_plan=None if failed == "low" else "low", current_plan=failed)
        self.models = models
        self.limits = model_limits(models)
        self.previewer = self._make_previewer() if self.preview_enabled else None
        if self.previewer is not None:
            self.decode_policy.time_small_vae(models.vae, models.defaults, self.decode, models.device)
        self.draft_cache.clear()
        self.takes_cache.clear()
        self._text_cache.clear()
        self._plans.clear()
        summary = models.summary()
        summary["preview"] = self.previewer.source if self.previewer else None
        summary["flow_shift"] = self.model_flow_shift
        summary["limits"] = self.limits.rule()
        return summary

    def _require(self):
        if self.models is None:
            raise LumosError("no models are loaded yet")
        return self.models

    # -- checks -----------------------------------------------------------------------------------------
    def check(self, req: RenderRequest) -> RenderRequest:
        """`check_request` plus the loaded models' limits: size, frames and every text's tokens. Runs on the worker
        (the tokenizers are not safe to share across threads), before any model sees the request's texts, once per
        render (a request `Engine.submit` has checked against these limits is not checked again)."""
        models = self._require()
        req = check_request(req, limits=self.limits)
        window = models.max_sequence_length
        texts = [("prompt", req.prompt), ("negative prompt", req.negative_prompt)]
        if req.plan is not None and self.light_reads_plan(req, req.plan):
            texts.append(("plan", req.plan))
        for name, text in texts:
            # the pipeline's text encoding would cut the text at its window without a word
            count = len(models.tokenizer(text, add_special_tokens=True).input_ids) if text else 0
            if count > window and not (name == "prompt" and self.prompt_read_in_full(req)):
                raise RequestError(f"the {name} is {count} tokens long; {self.limits.name}'s text encoder reads at "
                                   f"most {window}")
        # the LM reads the prompt with its plan ("" without one; None: one it writes), the negative with its own
        self._check_understanding("prompt", req.prompt, req.plan if req.use_plan else "")
        self._check_understanding("negative prompt", req.negative_prompt, None)
        return req

    # -- keys -------------------------------------------------------------------------------------------
    @property
    def model_flow_shift(self) -> float:
        """The loaded light generator's scheduler shift (what a request without its own flow_shift gets)."""
        return float(self._require().scheduler_config.get("flow_shift", DEFAULT_FLOW_SHIFT))

    def resolve(self, req: RenderRequest) -> Resolved:
        """Flow shift, gamma_w and gate of `req` for the loaded models (engine.handoff.resolve_request)."""
        return resolve_request(req, self.model_flow_shift)

    def _model_key(self) -> dict:
        m = self._require()
        key = {"light": m.light_id, "heavy": m.heavy_id, "device": str(m.device), "dtype": str(m.dtype),
               "understanding": m.understanding is not None, "L": m.max_sequence_length}
        if any(getattr(m, "loras", {}).values()):  # LoRAs (name, sha256, strength) change both generators' output
            key["loras"] = m.loras
        return key

    def prefix_key(self, req: RenderRequest, plan: str | None, resolved: Resolved) -> str:
        """Everything that determines the light generator's trajectory (not the hand-off, not the heavy model)."""
        m = self._require()
        light_loras = getattr(m, "loras", {}).get("light")
        return _digest({
            **({"light_loras": light_loras} if light_loras else {}),
            "light": m.light_id, "device": str(m.device), "dtype": str(m.dtype), "L": m.max_sequence_length,
            "understanding": m.understanding is not None, "prompt": req.prompt, "negative": req.negative_prompt,
            "plan": plan if req.use_plan else None, "seed": req.seed, "size": [req.width, req.height],
            "frames": req.num_frames, "steps": req.steps, "scheduler": req.scheduler,
            "shift": resolved.flow_shift, "g_light": req.guidance_light,
        })

    def take_key(self, req: RenderRequest, plan: str | None, resolved: Resolved) -> str:
        """The takes cache's key: the take's identity (engine.request.take_identity) with the loaded models, their
        flow shift and the plan the light generator reads (which the models' understanding block writes)."""
        return _digest({"take": take_identity(req), "plan": plan, "flow_shift": resolved.flow_shift,
                        "models": self._model_key()})

    # -- rendering --------------------------------------------------------------------------------------
    def render(self, req: RenderRequest, *, job_id: int = 0, emit: Callable | None = None,
               cancel_flag=None) -> Take:
        """Render one request: stream StepEvents through `emit`, return the decoded Take (cached by parameters).
        Out of device memory: everything the render held is freed and OutOfMemory names the plan to use next."""
        return self._guard_memory(req, lambda: self._render(req, job_id=job_id, emit=emit, cancel_flag=cancel_flag))

    def _guard_memory(self, req, run):
        """`run()`, turning an out-of-memory failure into OutOfMemory after freeing what the render held."""
        from .memory_plan import is_out_of_memory

        try:
            return run()
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            detail = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        # outside the except block: its traceback (and the frames holding the render's tensors) is gone
        raise self._out_of_memory(req, detail)

    def _out_of_memory(self, req, detail: str) -> OutOfMemory:
        from .memory_plan import PLANS, free_device_memory, next_plan

        free_device_memory()
        models = self.models
        current = models.memory_plan.name if models is not None and models.memory_plan is not None else None
        suggested = next_plan(current) if current in PLANS else None
        size = f"{req.width}x{req.height}, {req.num_frames} frames" if isinstance(req, RenderRequest) else "this size"
        if suggested is not None:
            message = (f"Out of memory while rendering ({size}) with the {current} memory plan. The settings are "
                       f"kept: reload the models with the {suggested} plan (--memory {suggested}) and render again, "
                       f"or render fewer frames or a smaller size.")
        else:
            message = (f"Out of memory while rendering ({size}) even with the {current or 'lowest'} memory plan. "
                       f"The settings are kept: render fewer frames or a smaller size.")
        log.warning("out of memory (%s); suggested plan: %s", detail, suggested)
        return OutOfMemory(message, suggested_plan=suggested, current_plan=current, request=req)

    def _render(self, req: RenderRequest, *, job_id: int = 0, emit: Callable | None = None,
                cancel_flag=None) -> Take:
        req = self.check(req)
        started = time.perf_counter()
        plan = self.resolve_plan(req, cancel_flag)
        resolved = self.resolve(req)
        take_key = self.take_key(req, plan, resolved)
        cached = self.takes_cache.get(take_key)
        if cached is not None:
            return Take(cached.request, cached.frames, cached.fps, cached.metadata, cached.elapsed, from_cache=True)
        latents = self._sample(req, resolved, plan, job_id=job_id, emit=emit, cancel_flag=cancel_flag)
        if cancel_flag is not None and cancel_flag.is_set():  # skip the decode
            raise CancelledError(req.steps)
        frames = self.decode_policy.decode_and_learn(self._clip_size(req), self.decode, latents)
        fps = int(self._require().defaults.get("fps", 16))
        elapsed = time.perf_counter() - started
        metadata = self.metadata(req, plan, resolved, fps, frames, elapsed)
        take = Take(req, frames, fps, metadata, elapsed)
        self.takes_cache.put(take_key, take, frames.nbytes)
        return take

    def render_batch(self, reqs: list[RenderRequest]) -> list[Take]:
        """Render requests that differ only in prompt, seed and plan as one batch (variations, benchmarks).

        Each clip equals its single render (same noise from its own seed, per-sample UPFB rebalance); no previews,
        no caches. Much faster than one by one for small models, whose steps are dominated by per-call overhead.
        """
        if not reqs:
            return []
        return self._guard_memory(reqs[0], lambda: self._render_batch(reqs))

    def _render_batch(self, reqs: list[RenderRequest]) -> list[Take]:
        import torch

        from .sampler import Conditioning, denoise

        reqs = [self.check(r) for r in reqs]
        first = reqs[0]
        shared = first.replace(prompt="", seed=0, plan=None)
        for r in reqs[1:]:
            if r.replace(prompt="", seed=0, plan=None) != shared:
                raise LumosError("a batch may only differ in prompt, seed and plan")
        started = time.perf_counter()
        models = self._require()
        plans = [self.resolve_plan(r) for r in reqs]
        conds = [self.conditioning(r, p) for r, p in zip(reqs, plans)]

        def cat(field):
            parts = [getattr(c, field) for c in conds]
            return None if parts[0] is None else torch.cat(parts)

        cond = Conditioning(cat("light_cond"), cat("light_uncond"), cat("heavy_cond"), cat("heavy_uncond"))
        resolved = self.resolve(first)
        scheduler = self._scheduler(first, resolved)
        if hasattr(scheduler, "noise_seeds"):
            scheduler.noise_seeds = [r.seed for r in reqs]  # each clip re-noised as in its single render
        latents = torch.cat([self._initial_noise(r) for r in reqs])
        settings = self._settings(first, resolved)
        latents = denoise(models.light, models.heavy, cond, settings, scheduler, latents)
        frames = [f for i in range(0, len(reqs), 8) for f in self.decode_batch(latents[i: i + 8])]
        fps = int(models.defaults.get("fps", 16))
        elapsed = (time.perf_counter() - started) / len(reqs)
        return [Take(r, f, fps, self.metadata(r, p, resolved, fps, f, elapsed), elapsed)
                for r, p, f in zip(reqs, plans, frames)]

    def _initial_noise(self, req: RenderRequest):
        """[1, C, F, h, w] from the request's seed on a CPU generator: the same seed gives the same take anywhere."""
        import torch
        from diffusers.utils.torch_utils import randn_tensor

        models = self._require()
        spatial = int(models.vae.config.scale_factor_spatial)
        temporal = int(models.vae.config.scale_factor_temporal)
        shape = (1, models.light.config.in_channels, (req.num_frames - 1) // temporal + 1,
                 req.height // spatial, req.width // spatial)
        return randn_tensor(shape, generator=torch.Generator().manual_seed(req.seed), device=models.device,
                            dtype=torch.float32)

    def _scheduler(self, req: RenderRequest, resolved: Resolved):
        """A fresh scheduler for the request, set to its steps and positioned before step 0."""
        from .schedulers import make_scheduler

        models = self._require()
        scheduler = make_scheduler(req.scheduler, resolved.flow_shift, models.scheduler_config)
        scheduler.set_timesteps(req.steps, device=models.device)
        scheduler.set_begin_index(0)
        if hasattr(scheduler, "noise_seeds"):  # fewstep: each step's fresh noise comes from the request's seed
            scheduler.noise_seeds = [req.seed]
        return scheduler

    def _settings(self, req: RenderRequest, resolved: Resolved):
        from .sampler import SamplerSettings

        return SamplerSettings(
            mode=req.mode, gamma_w=resolved.gamma_w, gamma_hf=req.upfb.gamma_hf, sigma_min=req.upfb.sigma_min,
            sigma_max=req.upfb.sigma_max, light_lead=resolved.light_lead, switch_step=resolved.switch_step,
            guidance_light=req.guidance_light, guidance_heavy=req.guidance_heavy)

    def sample(self, req: RenderRequest, *, job_id: int = 0, emit: Callable | None = None, cancel_flag=None,
               plan: str | None = None):
        """Run the denoising loop for `req` and return the final normalised latents [1, C, F, h, w]."""
        req = self.check(req)
        return self._sample(req, self.resolve(req), plan, job_id=job_id, emit=emit, cancel_flag=cancel_flag)

    def _sample(self, req: RenderRequest, resolved: Resolved, plan: str | None, *, job_id: int = 0,
                emit: Callable | None = None, cancel_flag=None):
        """`sample` for a request already checked and resolved (once, by `render`)."""
        from .cache import DraftRecord
        from .sampler import denoise

        models = self._require()
        started = time.perf_counter()
        listening = emit is not None  # decoded previews only for someone who sees them
        emit = emit or (lambda event: None)

        def check_cancel(step: int | None) -> None:
            if cancel_flag is not None and cancel_flag.is_set():
                raise CancelledError(step)

        # 1. Conditioning, scheduler, initial noise
        cond = self.conditioning(req, plan)
        scheduler = self._scheduler(req, resolved)
        latents = self._initial_noise(req)
        settings = self._settings(req, resolved)

        # 2. Resume the light-only prefix from the draft cache where one is there
        total = len(scheduler.timesteps)
        prefix_len = total if settings.light_only else (
            settings.light_lead if req.mode == "upfb" else (settings.switch_step if req.mode == "switch" else 0))
        # a refine can resume at step k only from the state *before* step k: keep states 0..limit
        limit = min(prefix_len, math.ceil(total * self.max_lead_fraction))
        prefix_key = self.prefix_key(req, plan, resolved)
        record = self.draft_cache.get(prefix_key) if prefix_len else None
        start = 0
        if record is not None and not settings.light_only and 0 < prefix_len < len(record):
            latents, scheduler = record.resume_state(prefix_len, models.device)
            start = prefix_len
            phase = "light lead" if req.mode == "upfb" else "switch-light"
            for i in range(start):
                w, t = record.w_and_t[i]
                emit(StepEvent(job_id, i + 1, total, phase, w, t, time.perf_counter() - started,
                               record.previews[i], from_cache=True))
        recording = DraftRecord() if limit and start == 0 else None

        # 3. Denoise, streaming a preview each step
        sigmas = scheduler.sigmas

        def before_step(i, plan_i, x, _v, sched):
            if recording is not None and i <= limit:
                recording.add(x, sched)

        budget = self.decode_policy.budget(self._clip_size(req), total)

        def after_step(i, plan_i, x, v, sched):
            budget.step_done()
            preview = None
            if self.previewer is not None:
                x0 = x.float() - float(sigmas[i]) * v.float()
                if listening and budget.allows(i):
                    preview = budget.decode(self.decode, x0)
                elif not budget.decoded_any:  # once decoded, the player keeps those frames until the next decode
                    preview = self.previewer(x0)
            t = float(scheduler.timesteps[i])
            if recording is not None and i < limit:
                recording.previews.append(preview)
                recording.w_and_t.append((plan_i.w_t, t))
            emit(StepEvent(job_id, i + 1, total, plan_i.phase, plan_i.w_t, t, time.perf_counter() - started,
                           preview))

        latents = denoise(models.light, models.heavy, cond, settings, scheduler, latents, start_step=start,
                          before_step=before_step, after_step=after_step, check_cancel=check_cancel)
        if recording is not None and len(recording) and (record is None or len(recording) > len(record)):
            self.draft_cache.put(prefix_key, recording, recording.nbytes())

        return latents

    @staticmethod
    def _clip_size(req: RenderRequest) -> tuple[int, int, int]:
        """(frames, height, width) of the decoded clip, the key of a learnt decode cost."""
        return int(req.num_frames), int(req.height), int(req.width)

    def _make_previewer(self):
        """The loaded models' latent -> RGB map, fitted on the light generator's own clips (cached per models)."""
        from .preview import LatentPreviewer

        models = self._require()
        block = models.understanding
        modules = (models.light, models.text_encoder) + ((block.lm, block.connector) if block is not None else ())
        return LatentPreviewer.for_vae(models.vae, samples=self._preview_samples, modules=modules)

    def _preview_samples(self, count: int = 8, steps: int = 8):
        """Unconditional clips from the light generator (CFG's negative branch, no guidance), normalised latents
        [count, C, 3, h, w]: what the preview map is fitted on, since generated latents are far from the encoder's
        latents of synthetic images. 8 clips of 8 steps at the family's size (at most 16x16 latents) fit about as well
        as 8 prompted drafts do (lumos-mini: mean error 13.0 vs 12.8); 3 latent frames cover frame 0 and later ones."""
        import torch
        from diffusers.utils.torch_utils import randn_tensor

        from .sampler import Conditioning, SamplerSettings, denoise
        from .schedulers import make_scheduler

        models = self._require()
        spatial = int(models.vae.config.scale_factor_spatial)
        h, w = (max(1, min(16, int(models.defaults.get(k, 64)) // spatial)) for k in ("height", "width"))
        text = self._text("")
        light = text
        if models.understanding is not None:
            with torch.no_grad():
                light = torch.cat([text, models.understanding.context("", "").to(text.device, text.dtype)], dim=1)
        cond = Conditioning(light.expand(count, -1, -1).to(models.light.dtype), None,
                            text.expand(count, -1, -1).to(models.heavy.dtype), None)
        scheduler = make_scheduler("unipc", self.model_flow_shift, models.scheduler_config)
        scheduler.set_timesteps(steps, device=models.device)
        scheduler.set_begin_index(0)
        noise = randn_tensor((count, models.light.config.in_channels, 3, h, w), device=models.device,
                             generator=torch.Generator().manual_seed(0), dtype=torch.float32)
        settings = SamplerSettings(mode="light", guidance_light=1.0, guidance_heavy=1.0)
        return denoise(models.light, models.heavy, cond, settings, scheduler, noise)

    def decode(self, latents) -> np.ndarray:
        """Normalised latents [1, ...] -> uint8 frames [F, H, W, 3], exactly as WanPipeline decodes them."""
        return self.decode_batch(latents)[0]

    def decode_batch(self, latents) -> np.ndarray:
        """Normalised latents [B, C, F, h, w] -> uint8 frames [B, F, H, W, 3]."""
        import torch

        models = self._require()
        vae = models.vae
        with torch.no_grad():
            z = latents.to(vae.device, vae.dtype)
            mean = torch.tensor(vae.config.latents_mean).view(1, vae.config.z_dim, 1, 1, 1).to(z)
            inv_std = 1.0 / torch.tensor(vae.config.latents_std).view(1, vae.config.z_dim, 1, 1, 1).to(z)
            video = vae.decode(z / inv_std + mean, return_dict=False)[0]
            frames = models.pipe.video_processor.postprocess_video(video, output_type="np")
        return np.ascontiguousarray((np.clip(frames, 0.0, 1.0) * 255.0).round().astype(np.uint8))

    def metadata(self, req: RenderRequest, plan, resolved: Resolved, fps, frames, elapsed) -> dict:
        from .planner import planner_metadata

        models = self._require()
        request = req.to_dict()
        if plan is not None and request.get("plan") is None:
            request["plan"] = plan
        return {
            "app": "Lumos Studio",
            "app_version": __version__,
            "request": request,
            "plan": plan,
            # γ_w only means something for UPFB; light/heavy/switch takes record null rather than a made-up exponent.
            "gamma_w": resolved.recorded_gamma_w,
            "flow_shift": resolved.flow_shift,
            "models": {"light": models.light_id, "heavy": models.heavy_id,
                       "understanding": models.understanding is not None},
            "loras": {role: list(getattr(models, "loras", {}).get(role, [])) for role in ("light", "heavy")},
            "device": str(models.device),
            "dtype": str(models.dtype).replace("torch.", ""),
            "frames": int(frames.shape[0]),
            "size": [int(frames.shape[2]), int(frames.shape[1])],
            "fps": fps,
            "render_seconds": round(elapsed, 3),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            # a released system's conditioning and guidance convention (engine/nexus/block.py)
            **({"conditioning": models.understanding.take_metadata(req)}
               if hasattr(models.understanding, "take_metadata") else {}),
            **planner_metadata(models, req, plan),  # a planned pair: its planner, and whether it fell back
            # a prompt past the text encoder's window: the heavy generator read only its first window of tokens
            **({"heavy_text_cut": {"tokens": cut, "window": models.max_sequence_length}}
               if (cut := self.prompt_cut_for_heavy(req)) is not None else {}),
        }

