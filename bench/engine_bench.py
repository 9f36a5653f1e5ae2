"""Engine benchmarks: every figure is a ratio against a baseline measured in the same run.

    .venv/bin/python bench/engine_bench.py [--repeats 5] [--steps 20]

1. draft (s = 0) vs diffusers WanPipeline with the light model, same work         target <= 1.02x
2. heavy mode vs WanPipeline with the heavy model                                   target <= 1.02x
3. UPFB fusion at the real 480p latent [1,16,21,60,104]: ms, vs the literal two-blur transcription,
   and as a share of one tiny-model step
4. refine with light lead k0 resumed from the draft cache vs from scratch          target <= ideal + 5%
5. preview emission as a share of step time                                        target <= 3%
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from devtools.tiny_models import build_tiny_family  # noqa: E402
from devtools.upfb_reference import literal_fusion  # noqa: E402
from engine.api import ModelSpec, RenderRequest, UPFBParams  # noqa: E402
from engine.runtime import Runtime  # noqa: E402
from engine.upfb import fuse_velocities  # noqa: E402


def timed(fn, repeats: int) -> float:
    """Median seconds of `repeats` calls after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved(fns: dict, repeats: int) -> dict:
    """Median seconds per function, alternating calls so that machine load hits all alike."""
    for fn in fns.values():
        fn()
    samples = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            samples[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in samples.items()}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--frames", type=int, default=17)
    args = ap.parse_args()
    from diffusers import WanPipeline

    torch.manual_seed(0)
    tmp = Path(tempfile.mkdtemp(prefix="lumos-bench-"))
    family = build_tiny_family(tmp)
    rt = Runtime(cache_bytes=1 << 30)
    rt.load(ModelSpec(light=str(family / "light"), heavy=str(family / "heavy")))
    pipe = WanPipeline.from_pretrained(family / "light")
    pipe.set_progress_bar_config(disable=True)
    req = RenderRequest(prompt="a small red striped circle moves to the left", steps=args.steps,
                        num_frames=args.frames, width=args.size, height=args.size, seed=1)
    rows = []

    def fresh():
        rt.takes_cache.clear()
        rt.draft_cache.clear()
        rt._text_cache.clear()

    def pipeline_run(transformer, g):
        pipe.transformer = transformer
        return pipe(req.prompt, height=req.height, width=req.width, num_frames=req.num_frames,
                    num_inference_steps=req.steps, guidance_scale=g,
                    generator=torch.Generator().manual_seed(req.seed), output_type="np")

    # 1-2. our loop vs diffusers' own pipeline, same model and work
    draft_req = req.replace(mode="upfb", handoff=0.0)
    heavy_req = req.replace(mode="heavy", guidance_heavy=req.guidance_light)
    t = interleaved({
        "ours_draft": lambda: (fresh(), rt.render(draft_req)),
        "pipe_light": lambda: pipeline_run(rt.models.light, req.guidance_light),
        "ours_heavy": lambda: (fresh(), rt.render(heavy_req)),
        "pipe_heavy": lambda: pipeline_run(rt.models.heavy, req.guidance_light),
    }, args.repeats)
    rows.append(("draft vs WanPipeline(light)", t["ours_draft"], t["pipe_light"], "<= 1.02"))
    rows.append(("heavy vs WanPipeline(heavy)", t["ours_heavy"], t["pipe_heavy"], "<= 1.02"))

    # 3. UPFB fusion at the real 480p latent shape
    gen = torch.Generator().manual_seed(0)
    shape = (1, 16, 21, 60, 104)
    v_l, v_h = torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)
    fused = timed(lambda: fuse_velocities(v_l, v_h, 0.6), args.repeats)
    literal = timed(lambda: literal_fusion(v_l, v_h, 0.6, dtype=torch.float32), args.repeats)
    rows.append(("UPFB fusion 480p vs literal two-blur form", fused, literal, "< 1"))
    step_events = []
    fresh()
    rt.render(req.replace(mode="upfb", handoff=0.6), emit=step_events.append)
    upfb_step = statistics.median(b.elapsed - a.elapsed for a, b in zip(step_events, step_events[1:]))

    # 4. light-lead refine resumed from the draft cache vs from scratch
    k0 = args.steps // 2
    refine = req.replace(mode="upfb", handoff=0.6, upfb=UPFBParams(light_lead=k0))

    def scratch():
        fresh()
        return rt.sample(refine)

    def resumed():
        if len(rt.draft_cache) == 0:
            rt.render(draft_req)  # the draft the creator already has (not timed: made before the slider moves)
        t0 = time.perf_counter()
        rt.sample(refine)
        return time.perf_counter() - t0

    res_times, scr_times = [], []
    for _ in range(args.repeats):  # alternate, so that machine load hits both alike
        fresh()
        res_times.append(resumed())
        t0 = time.perf_counter()
        scratch()
        scr_times.append(time.perf_counter() - t0)
    t_res, t_scr = statistics.median(res_times), statistics.median(scr_times)
    events = []
    fresh()
    t0 = time.perf_counter()
    rt.sample(refine, emit=events.append)
    # the work a perfect cache still has to do: the bridging steps, timed inside the scratch run itself
    bridging = sum(b.elapsed - a.elapsed for a, b in zip(events, events[1:]) if b.phase == "bridging")
    bridging += events[0].elapsed if events[0].phase == "bridging" else 0.0
    ideal = bridging / (time.perf_counter() - t0)
    rows.append((f"refine k0={k0}/{args.steps} resumed vs scratch", t_res, t_scr,
                 f"<= {ideal + 0.05:.3f} (ideal {ideal:.3f}; steps {(args.steps - k0) / args.steps:.2f})"))

    # 5. preview emission share of the step time
    fresh()
    x = torch.randn(1, 16, (args.frames - 1) // 4 + 1, args.size // 8, args.size // 8)
    v = torch.randn_like(x)
    preview_s = timed(lambda: rt.previewer(x - 0.5 * v), args.repeats * 20)
    draft_events = []
    rt.render(draft_req, emit=draft_events.append)
    light_step = statistics.median(b.elapsed - a.elapsed for a, b in zip(draft_events, draft_events[1:]))

    print(f"\nLumos engine bench: tiny models, {args.size}x{args.size}, {args.frames} frames, {args.steps} steps, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}\n")
    print(f"{'measure':48s} {'ours s':>9s} {'base s':>9s} {'ratio':>7s}  target")
    for name, ours, base, target in rows:
        print(f"{name:48s} {ours:9.4f} {base:9.4f} {ours / base:7.3f}  {target}")
    print(f"\nUPFB fusion at [1,16,21,60,104]: {fused * 1e3:.1f} ms "
          f"(= {fused / upfb_step:.2f}x one tiny-model UPFB step of {upfb_step * 1e3:.1f} ms at {args.size}px)")
    tiny_shape = (1, 16, (args.frames - 1) // 4 + 1, args.size // 8, args.size // 8)
    vt_l, vt_h = torch.randn(tiny_shape), torch.randn(tiny_shape)
    fused_tiny = timed(lambda: fuse_velocities(vt_l, vt_h, 0.6), args.repeats * 20)
    print(f"UPFB fusion at the tiny latent {list(tiny_shape)}: {fused_tiny * 1e3:.3f} ms "
          f"= {100 * fused_tiny / upfb_step:.2f}% of a UPFB step")
    print(f"preview (x0 -> RGB uint8, all frames): {preview_s * 1e3:.3f} ms = "
          f"{100 * preview_s / light_step:.2f}% of a {light_step * 1e3:.1f} ms draft step (target <= 3%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
