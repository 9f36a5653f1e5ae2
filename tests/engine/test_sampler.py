"""Sampler behaviour beyond pipeline equivalence: determinism, Euler, who runs when, previews."""

import math

import numpy as np
import pytest
import torch

from engine.api import StepEvent, UPFBParams
from engine.sampler import SamplerSettings, plan_step


def test_same_seed_same_latents_other_seed_differs(runtime, small_request):
    req = small_request.replace(mode="upfb", handoff=0.5)
    runtime.draft_cache.clear()
    a = runtime.sample(req)
    runtime.draft_cache.clear()
    b = runtime.sample(req)
    assert torch.equal(a, b)
    assert not torch.equal(a, runtime.sample(req.replace(seed=req.seed + 1)))


def test_euler_scheduler_runs_and_differs_from_unipc(runtime, small_request):
    from diffusers import FlowMatchEulerDiscreteScheduler, WanPipeline

    req = small_request.replace(mode="light", scheduler="euler", flow_shift=3.0)
    ours = runtime.sample(req)
    assert torch.isfinite(ours).all()
    assert not torch.allclose(ours, runtime.sample(req.replace(scheduler="unipc")))
    pipe = WanPipeline(tokenizer=runtime.models.tokenizer, text_encoder=runtime.models.text_encoder,
                       vae=runtime.models.vae, transformer=runtime.models.light,
                       scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0))
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe(req.prompt, negative_prompt=req.negative_prompt, height=req.height, width=req.width,
                  num_frames=req.num_frames, num_inference_steps=req.steps, guidance_scale=req.guidance_light,
                  generator=torch.Generator().manual_seed(req.seed), output_type="latent").frames
    assert (ours - theirs).abs().max().item() <= 1e-5


def test_generators_are_only_called_where_they_contribute(runtime, small_request, monkeypatch):
    calls = []
    light, heavy = runtime.models.light, runtime.models.heavy
    for name, model in (("light", light), ("heavy", heavy)):
        original = model.forward

        def spy(*args, _name=name, _orig=original, **kwargs):
            calls.append(_name)
            return _orig(*args, **kwargs)

        monkeypatch.setattr(model, "forward", spy)
    runtime.draft_cache.clear()
    runtime.sample(small_request.replace(mode="light"))
    assert set(calls) == {"light"} and len(calls) == 2 * small_request.steps  # cond + uncond
    calls.clear()
    runtime.sample(small_request.replace(mode="heavy"))
    assert set(calls) == {"heavy"}
    calls.clear()
    runtime.draft_cache.clear()
    runtime.sample(small_request.replace(mode="upfb", handoff=0.6, upfb=UPFBParams(light_lead=2)))
    assert calls.count("heavy") == 2 * (small_request.steps - 2)  # not during the two light-lead steps
    assert calls.count("light") == 2 * small_request.steps
    calls.clear()
    runtime.sample(small_request.replace(mode="upfb", handoff=0.6))
    # the first step is at t = 999 where w_t = 1: the heavy velocity has zero weight, so it is not computed
    assert calls.count("heavy") == 2 * (small_request.steps - 1)


def test_plan_step_phases():
    s = SamplerSettings("upfb", gamma_w=0.3, light_lead=2)
    assert plan_step(s, 0, 999.0).phase == "light lead"
    p = plan_step(s, 2, 500.0)
    assert p.phase == "bridging" and p.run_light and p.run_heavy and 0 < p.w_t < 1
    assert plan_step(SamplerSettings("upfb", gamma_w=math.inf), 5, 100.0).phase == "draft"
    sw = SamplerSettings("switch", switch_step=3)
    assert [plan_step(sw, i, 0.0).phase for i in (2, 3)] == ["switch-light", "switch-heavy"]


def test_step_events_stream_previews_coarse_to_fine(runtime, small_request):
    events = []
    runtime.draft_cache.clear()
    runtime.takes_cache.clear()
    take = runtime.render(small_request.replace(mode="upfb", handoff=0.6), emit=events.append)
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert [e.step for e in steps] == list(range(1, small_request.steps + 1))
    assert all(e.phase == "bridging" for e in steps)
    ws = [e.w_t for e in steps]
    assert ws[0] == pytest.approx(1.0) and all(a >= b for a, b in zip(ws, ws[1:])) and ws[-1] < 0.5
    assert all(a.elapsed <= b.elapsed for a, b in zip(steps, steps[1:]))
    assert steps[-1].preview.shape == (2, 4, 4, 3)
    assert take.metadata["gamma_w"] == pytest.approx(runtime.resolve(small_request.replace(handoff=0.6)).gamma_w)


def test_gamma_w_is_recorded_only_for_upfb_takes(runtime, small_request):
    """A heavy, switch or light take has no gate exponent: its metadata says null, not a number."""
    for mode in ("light", "heavy", "switch"):
        take = runtime.render(small_request.replace(mode=mode, switch_step=2), emit=lambda e: None)
        assert take.metadata["gamma_w"] is None, mode
    take = runtime.render(small_request.replace(mode="upfb", gamma_w=0.3), emit=lambda e: None)
    assert take.metadata["gamma_w"] == pytest.approx(0.3)


def test_least_squares_preview_for_an_unknown_vae(tiny_family):
    from diffusers import AutoencoderKLWan

    from engine.preview import LatentPreviewer

    vae = AutoencoderKLWan.from_pretrained(tiny_family / "light" / "vae")
    vae.register_to_config(latents_mean=[0.1] * 16)  # no longer the Wan2.1 statistics
    previewer = LatentPreviewer.for_vae(vae)
    assert previewer.source == "least-squares fit"
    # on clips like those it was fitted to, it is closer to the VAE's own decode (what the take will show) than grey
    gen = torch.Generator().manual_seed(5)
    coarse = torch.rand(3, 3, 4, 4, generator=gen) * 2 - 1
    imgs = torch.nn.functional.interpolate(coarse, size=(64, 64), mode="bicubic").clamp(-1, 1).unsqueeze(2)
    with torch.no_grad():
        z = vae.encode(imgs).latent_dist.mode()
        decoded = vae.decode(z).sample.clamp(-1, 1)
    z = (z - 0.1) / torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
    target = ((torch.nn.functional.avg_pool2d(decoded[:, :, 0], 8) + 1) * 127.5).permute(0, 2, 3, 1).numpy()
    err = np.mean([(previewer(z[i:i + 1])[0].astype(float) - target[i]) ** 2 for i in range(3)])
    grey = np.mean((127.5 - target) ** 2)
    assert err < grey
