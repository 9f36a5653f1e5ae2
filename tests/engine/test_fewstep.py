"""Few-step sampling for step- and CFG-distilled generators (scheduler "fewstep"): the fixed distilled timesteps,
x0 = x - sigma v re-noised with fresh seeded noise to the next sigma, under UPFB, the light lead and the draft cache."""

import pytest
import torch

from engine.api import FAST_PRESET, RenderRequest, StepEvent, UPFBParams


@pytest.fixture
def fast_request(small_request):
    return small_request.replace(**FAST_PRESET)


def test_fewstep_timesteps_are_the_distilled_ones_through_the_shift():
    from engine.handoff import flow_timesteps
    from engine.schedulers import make_scheduler

    sched = make_scheduler("fewstep", 5.0)
    sched.set_timesteps(4)
    # 1000, 750, 500, 250 mapped through shift 5: sigma' = 5 s / (1 + 4 s)
    assert torch.allclose(sched.sigmas, torch.tensor([1.0, 0.9375, 2.5 / 3, 0.625, 0.0]))
    assert torch.allclose(sched.timesteps, torch.tensor([1000.0, 937.5, 2500 / 3, 625.0]))
    assert flow_timesteps(4, 5.0, "fewstep") == pytest.approx([1000.0, 937.5, 2500 / 3, 625.0])
    unshifted = make_scheduler("fewstep", 1.0)
    unshifted.set_timesteps(4)
    assert torch.allclose(unshifted.timesteps, torch.tensor([1000.0, 750.0, 500.0, 250.0]))


@pytest.mark.parametrize("mode", ["light", "heavy"])
def test_fewstep_matches_the_literal_step(runtime, fast_request, mode):
    """Either generator may be the distilled one: each step is x0 = x - sigma v (no CFG), then
    x_next = (1 - sigma_next) x0 + sigma_next noise, with the noise from the request's seed."""
    from engine.schedulers import make_scheduler, step_noise_seed

    req = fast_request.replace(mode=mode)
    got = runtime.sample(req)

    model = runtime.models.light if mode == "light" else runtime.models.heavy
    cond = runtime.conditioning(req, None)
    assert cond.light_uncond is None and cond.heavy_uncond is None  # guidance 1: no CFG pass
    text = cond.light_cond if mode == "light" else cond.heavy_cond
    sched = make_scheduler("fewstep", runtime.resolve(req).flow_shift)
    sched.set_timesteps(req.steps)
    sigmas = [float(s) for s in sched.sigmas]
    x = runtime._initial_noise(req)
    with torch.no_grad():
        for i in range(req.steps):
            t = torch.tensor([1000.0 * sigmas[i]])
            v = model(hidden_states=x.to(model.dtype), timestep=t, encoder_hidden_states=text,
                      return_dict=False)[0].float()
            x0 = x - sigmas[i] * v
            noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(step_noise_seed(req.seed, i)))
            x = (1.0 - sigmas[i + 1]) * x0 + sigmas[i + 1] * noise
    assert (got.float() - x).abs().max().item() <= 1e-5
    # the noise is fresh each step and is not the initial noise
    seeds = {step_noise_seed(req.seed, i) for i in range(req.steps)}
    assert len(seeds) == req.steps and req.seed not in seeds


def test_upfb_over_four_steps_streams_and_reproduces_from_metadata(runtime, fast_request):
    from engine.gate import gate

    runtime.takes_cache.clear()
    req = fast_request.replace(mode="upfb", handoff=0.7)
    resolved = runtime.resolve(req)
    events = []
    take = runtime.render(req, emit=events.append)
    steps = [e for e in events if isinstance(e, StepEvent)]
    assert [e.step for e in steps] == [1, 2, 3, 4] and all(e.total == 4 for e in steps)
    shift = resolved.flow_shift
    expected = [1000.0 * shift * s / (1 + (shift - 1) * s) for s in (1.0, 0.75, 0.5, 0.25)]
    assert [e.timestep for e in steps] == pytest.approx(expected, rel=1e-5)
    # the gate is evaluated at the few-step timesteps
    assert [e.w_t for e in steps] == pytest.approx([gate(t, resolved.gamma_w) for t in expected])
    assert any(e.w_t < 1.0 for e in steps) and all(e.phase == "bridging" for e in steps)
    assert take.frames.shape[0] == req.num_frames
    stored = take.metadata["request"]
    assert stored["scheduler"] == "fewstep" and stored["steps"] == 4
    assert stored["guidance_light"] == stored["guidance_heavy"] == 1.0
    runtime.takes_cache.clear()
    again = runtime.render(RenderRequest.from_dict(stored))
    assert not again.from_cache and (again.frames == take.frames).all()
    # another seed re-noises differently
    other = runtime.render(req.replace(seed=req.seed + 1))
    assert abs(other.frames.astype(int) - take.frames.astype(int)).max() > 0


def test_light_lead_resumes_from_the_fewstep_draft(runtime, fast_request):
    runtime.draft_cache.clear()
    runtime.takes_cache.clear()
    runtime.render(fast_request.replace(mode="upfb", handoff=0.0))  # the draft: light alone, 4 steps
    assert len(runtime.draft_cache) == 1
    refine = fast_request.replace(mode="upfb", handoff=0.7, upfb=UPFBParams(light_lead=2))
    events = []
    resumed = runtime.sample(refine, emit=events.append)
    assert [e.step for e in events if e.from_cache] == [1, 2]
    assert [e.phase for e in events] == ["light lead"] * 2 + ["bridging"] * 2
    runtime.draft_cache.clear()
    events.clear()
    scratch = runtime.sample(refine, emit=events.append)
    assert not any(e.from_cache for e in events)
    # the resumed run re-noises its remaining steps with the same per-step noise as a run from scratch
    assert (resumed - scratch).abs().max().item() <= 1e-5


def test_batch_renoises_each_clip_as_its_single_render(runtime, fast_request):
    reqs = [fast_request.replace(mode="light", seed=s) for s in (3, 4)]
    runtime.takes_cache.clear()
    singles = [runtime.render(r).frames for r in reqs]
    batch = runtime.render_batch(reqs)
    for one, take in zip(singles, batch):
        assert abs(one.astype(int) - take.frames.astype(int)).max() <= 1


def test_cli_fast_and_fewstep_defaults():
    from engine.cli import CliError, build_parser, request_from_args

    def req(*argv):
        return request_from_args(build_parser().parse_args(["render", "--prompt", "a cat", *argv]))

    fast = req("--fast")
    assert (fast.scheduler, fast.steps, fast.guidance_light, fast.guidance_heavy) == ("fewstep", 4, 1.0, 1.0)
    assert req("--scheduler", "fewstep") == fast
    own = req("--fast", "--steps", "8", "--cfg", "2")
    assert (own.steps, own.guidance_light, own.guidance_heavy) == (8, 2.0, 2.0)
    plain = req()
    assert plain.scheduler == "unipc" and plain.steps != 4
    with pytest.raises(CliError, match="--fast"):
        req("--fast", "--scheduler", "euler")
