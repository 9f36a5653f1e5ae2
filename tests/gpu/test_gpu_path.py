"""The GPU path, run on a CUDA machine (`pytest -m gpu tests/gpu`; skipped elsewhere, never in CI).

Each test loads through the app's own loader (engine.api) and renders real takes on the card:
- the embedded lumos-mini family on CUDA gives the frames it gives on the CPU (float32 both sides), and its default
  bf16 load renders a finite, non-flat clip;
- the three memory plans (resident, balanced, low: diffusers' group offload with CUDA streams) give the same frames;
- out of device memory while rendering becomes OutOfMemory naming the next plan, frees what it held, and the same
  request renders once memory is back (the settings are kept);
- the few-step sampler runs on the card.
Figures (frame differences, times, peaks) go to $LUMOS_GPU_REPORT as JSON lines when that is set, for the README.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from .report import report

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]



def _runtime(spec):
    from engine.runtime import Runtime

    rt = Runtime(cache_bytes=0)
    rt.load(spec)
    return rt


def _frames(take) -> np.ndarray:
    return np.asarray(take.frames, dtype=np.float32)


def _request(**kw):
    from engine.api import RenderRequest

    base = dict(prompt="a small red striped circle moves to the left. gray plain background.", steps=8,
                num_frames=9, width=64, height=64, seed=3, mode="upfb", handoff=0.5)
    base.update(kw)
    return RenderRequest(**base)


def test_embedded_family_on_cuda_matches_cpu_and_renders_in_bf16():
    from engine.api import ModelSpec

    req = _request()
    cpu = _runtime(ModelSpec(device="cpu", dtype="float32")).render(req)
    gpu_rt = _runtime(ModelSpec(device="cuda", dtype="float32"))
    t0 = time.perf_counter()
    gpu = gpu_rt.render(req)
    gpu_s = time.perf_counter() - t0
    diff = np.abs(_frames(cpu) - _frames(gpu))
    report(test="embedded_cuda_vs_cpu_fp32", mean_abs=float(diff.mean()), max_abs=float(diff.max()),
           cuda_render_s=gpu_s, cpu_render_s=cpu.elapsed)
    assert gpu.metadata["device"].startswith("cuda")
    assert diff.mean() < 3.0, f"CUDA frames differ from the CPU's by {diff.mean():.2f}/255 on average"

    bf16 = _runtime(ModelSpec(device="cuda")).render(req)  # dtype auto: bf16 on a GPU
    frames = _frames(bf16)
    bdiff = np.abs(frames - _frames(cpu))
    report(test="embedded_cuda_bf16", mean_abs_vs_cpu_fp32=float(bdiff.mean()), std=float(frames.std()))
    assert np.isfinite(frames).all() and frames.std() > 5.0
    assert bdiff.mean() < 20.0


@pytest.mark.parametrize("plan", ["balanced", "low"])
def test_memory_plans_on_cuda_give_the_resident_frames(tiny_spec, plan):
    from dataclasses import replace

    req = _request(prompt="a small red striped circle moves to the left", width=32, height=32, num_frames=5,
                   steps=4)
    resident = _runtime(replace(tiny_spec, device="cuda", dtype="float32", memory="resident")).render(req)
    rt = _runtime(replace(tiny_spec, device="cuda", dtype="float32", memory=plan))
    assert rt.models.memory_plan.name == plan
    torch.cuda.reset_peak_memory_stats()
    other = rt.render(req)
    diff = np.abs(_frames(resident) - _frames(other))
    report(test=f"plan_{plan}_vs_resident", max_abs=float(diff.max()),
           peak_mb=torch.cuda.max_memory_allocated() / 2**20)
    assert diff.max() <= 2.0


def test_out_of_memory_while_rendering_names_the_next_plan_and_keeps_the_request(tiny_spec):
    from dataclasses import replace

    from engine.api import OutOfMemory

    rt = _runtime(replace(tiny_spec, device="cuda", dtype="float32", memory="resident"))
    big = _request(prompt="a small red striped circle moves to the left", width=512, height=512, num_frames=33,
                   steps=2)
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    allowed = torch.cuda.memory_allocated() + (8 << 20)  # the models stay; nothing more than 8 MB may come
    torch.cuda.set_per_process_memory_fraction(allowed / total)
    try:
        with pytest.raises(OutOfMemory) as exc:
            rt.render(big)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    err = exc.value
    report(test="oom", message=str(err), suggested=err.suggested_plan)
    assert err.suggested_plan == "balanced" and "balanced" in str(err)
    assert err.request == big
    take = rt.render(replace(big, width=64, height=64, num_frames=5))  # memory back: the runtime still works
    assert np.isfinite(_frames(take)).all()


def test_fewstep_sampler_runs_on_cuda(tiny_spec):
    from dataclasses import replace

    rt = _runtime(replace(tiny_spec, device="cuda", dtype="float32"))
    take = rt.render(_request(prompt="a small red striped circle moves to the left", width=32, height=32,
                              num_frames=5, steps=4, scheduler="fewstep", guidance_light=1.0, guidance_heavy=1.0))
    frames = _frames(take)
    report(test="fewstep", std=float(frames.std()))
    assert frames.shape[0] == 5 and np.isfinite(frames).all()
