"""Our sampler against diffusers' own WanPipeline on the same tiny models: the draft, heavy and switch modes."""

import pytest
import torch


def _pipeline(family, transformer=None, transformer_2=None, boundary_ratio=None):
    from diffusers import WanPipeline, WanTransformer3DModel

    pipe = WanPipeline.from_pretrained(family / "light")
    if transformer is not None:
        pipe.transformer = transformer
    if transformer_2 is not None:
        pipe.register_modules(transformer_2=transformer_2)
        pipe.register_to_config(boundary_ratio=boundary_ratio)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _pipeline_latents(pipe, req):
    return pipe(req.prompt, negative_prompt=req.negative_prompt, height=req.height, width=req.width,
                num_frames=req.num_frames, num_inference_steps=req.steps, guidance_scale=req.guidance_light,
                generator=torch.Generator().manual_seed(req.seed), output_type="latent").frames


def test_draft_equals_wan_pipeline_with_light(runtime, tiny_family, small_request):
    req = small_request.replace(mode="upfb", handoff=0.0)
    ours = runtime.sample(req)
    theirs = _pipeline_latents(_pipeline(tiny_family), req)
    assert ours.shape == theirs.shape
    assert (ours - theirs).abs().max().item() <= 1e-5


def test_heavy_equals_wan_pipeline_with_heavy(runtime, tiny_family, small_request):
    req = small_request.replace(mode="heavy", guidance_heavy=small_request.guidance_light)
    ours = runtime.sample(req)
    theirs = _pipeline_latents(_pipeline(tiny_family, transformer=runtime.models.heavy), req)
    assert (ours - theirs).abs().max().item() <= 1e-5
    # and it really is the heavy model: the draft differs
    assert (ours - runtime.sample(small_request.replace(mode="light"))).abs().max().item() > 1e-3


@pytest.mark.parametrize("boundary_ratio", [0.9, 0.6])
def test_switch_equals_wan22_pipeline(runtime, tiny_family, small_request, boundary_ratio):
    from engine.schedulers import make_scheduler

    sched = make_scheduler("unipc", runtime.resolve(small_request).flow_shift, runtime.models.scheduler_config)
    sched.set_timesteps(small_request.steps)
    switch_step = int((sched.timesteps >= boundary_ratio * 1000).sum())
    assert 0 < switch_step < small_request.steps
    req = small_request.replace(mode="switch", switch_step=switch_step)
    ours = runtime.sample(req)
    pipe = _pipeline(tiny_family, transformer=runtime.models.light, transformer_2=runtime.models.heavy,
                     boundary_ratio=boundary_ratio)
    theirs = pipe(req.prompt, negative_prompt=req.negative_prompt, height=req.height, width=req.width,
                  num_frames=req.num_frames, num_inference_steps=req.steps, guidance_scale=req.guidance_light,
                  guidance_scale_2=req.guidance_heavy, generator=torch.Generator().manual_seed(req.seed),
                  output_type="latent").frames
    assert (ours - theirs).abs().max().item() <= 1e-5


def test_decode_equals_pipeline_frames(runtime, tiny_family, small_request):
    import numpy as np

    req = small_request.replace(mode="light", steps=3)
    take = runtime.render(req)
    pipe = _pipeline(tiny_family)
    frames = pipe(req.prompt, negative_prompt=req.negative_prompt, height=req.height, width=req.width,
                  num_frames=req.num_frames, num_inference_steps=req.steps, guidance_scale=req.guidance_light,
                  generator=torch.Generator().manual_seed(req.seed), output_type="np").frames[0]
    expected = (np.clip(frames, 0, 1) * 255).round().astype(np.uint8)
    assert take.frames.shape == (5, 32, 32, 3) and take.frames.flags["C_CONTIGUOUS"]
    assert np.abs(take.frames.astype(int) - expected.astype(int)).max() <= 1
