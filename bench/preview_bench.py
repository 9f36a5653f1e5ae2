"""Step preview of the embedded family: quality against the VAE decode, and what it costs (CPU, same run).

    .venv/bin/python bench/preview_bench.py [--drafts 4] [--repeats 3]

1. preview vs decode of each draft's x0 at the middle and last step: mean |error| (0..255), per-channel correlation
2. the fit at load: uncached (light generator samples + decode + solve) and cached, beside one draft's sampling
3. one preview per step as a share of a draft step                                     target <= 3%
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LUMOS_STUDIO_HOME", tempfile.mkdtemp(prefix="lumos-preview-bench-"))  # cache kept aside

import numpy as np  # noqa: E402
import torch  # noqa: E402

import engine.preview as preview  # noqa: E402
from engine.api import RenderRequest  # noqa: E402
from engine.runtime import Runtime  # noqa: E402

PROMPTS = ("a small red striped circle moves to the left", "a big blue checked square at the top moves down",
           "a small yellow dotted star at the bottom right grows. slate dotted background.",
           "a big green plain triangle in the center bounces. gray striped background.")


def latent_target(frames, spatial, temporal):
    t, h, w, _ = frames.shape
    pooled = frames.reshape(t, h // spatial, spatial, w // spatial, spatial, 3).astype(np.float64).mean((2, 4))
    count = (t - 1) // temporal + 1
    return np.stack([pooled[0]] + [pooled[1 + temporal * (j - 1): 1 + temporal * j].mean(0) for j in range(1, count)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--drafts", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rt = Runtime(cache_bytes=64 << 20)
    rt.load(None)
    vae, d = rt.models.vae, rt.models.defaults
    spatial, temporal = int(vae.config.scale_factor_spatial), int(vae.config.scale_factor_temporal)
    fitted = rt.previewer
    captured = []
    rt.previewer = lambda x0: (captured.append(x0.detach().cpu().clone()), fitted(x0))[1]
    results = {"mid": ([], [], []), "last": ([], [], [])}
    step_times = []
    for seed in range(args.drafts):
        captured.clear()
        req = RenderRequest(prompt=PROMPTS[seed % len(PROMPTS)], mode="light", steps=d["steps"], seed=seed,
                            num_frames=d["num_frames"], width=d["width"], height=d["height"],
                            guidance_light=d["guidance_light"])
        events = []
        rt.sample(req, emit=events.append)
        step_times += [b.elapsed - a.elapsed for a, b in zip(events, events[1:])]
        for name, x0 in (("mid", captured[len(captured) // 2]), ("last", captured[-1])):
            p, t = fitted(x0).astype(np.float64), latent_target(rt.decode(x0), spatial, temporal)
            results[name][0].append(np.abs(p - t).mean())
            results[name][1].append(p.reshape(-1, 3))
            results[name][2].append(t.reshape(-1, 3))
    rt.previewer = fitted
    print(f"\nPreview of {rt.models.light_id}: {fitted.source}, {args.drafts} drafts "
          f"{d['width']}x{d['height']}x{d['num_frames']}, {d['steps']} steps\n")
    for name, (errors, ps, ts) in results.items():
        p, t = np.concatenate(ps), np.concatenate(ts)
        corr = [np.corrcoef(p[:, c], t[:, c])[0, 1] for c in range(3)]
        print(f"{name:5s} step: mean |error| {np.mean(errors):5.1f} (max {np.max(errors):5.1f})  "
              f"correlation R {corr[0]:.3f} G {corr[1]:.3f} B {corr[2]:.3f}")

    block = rt.models.understanding
    modules = (rt.models.light, rt.models.text_encoder) + ((block.lm, block.connector) if block is not None else ())

    def uncached():
        preview._MEMORY.clear()
        preview.LatentPreviewer.for_vae(vae, samples=rt._preview_samples, modules=modules, cache_dir=None)

    def cached():
        preview._MEMORY.clear()
        preview.LatentPreviewer.for_vae(vae, samples=rt._preview_samples, modules=modules)

    req = RenderRequest(prompt=PROMPTS[0], mode="light", steps=d["steps"], num_frames=d["num_frames"],
                        width=d["width"], height=d["height"], guidance_light=d["guidance_light"])
    fns = {"fit, uncached": uncached, "fit, from the disk cache": cached,
           "one draft's sampling": lambda: rt.sample(req)}
    times = {k: [] for k in fns}
    for _ in range(args.repeats):  # interleaved, so that machine load hits all alike
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    print()
    for k, v in times.items():
        print(f"{k:26s} {statistics.median(v):7.3f} s")
    x0 = torch.randn(1, 16, (d["num_frames"] - 1) // temporal + 1, d["height"] // spatial, d["width"] // spatial)
    n = 200
    t0 = time.perf_counter()
    for _ in range(n):
        fitted(x0)
    per_call = (time.perf_counter() - t0) / n
    step = statistics.median(step_times)
    print(f"preview per step           {per_call * 1e3:7.3f} ms = {100 * per_call / step:.1f}% of a draft step "
          f"({step * 1e3:.1f} ms)  target <= 3%")


if __name__ == "__main__":
    main()
