"""The default loop on the embedded lumos-mini family, as a user meets it: draft, then refine at the default hand-off.

    .venv/bin/python bench/default_loop.py [--repeats 3] [--threads N]

Prints the draft and the refine (resumed from the draft cache, as the app does) against the issue's budget of
10 s for both on a 2-core CPU, and against a heavy-only render of the same clip measured in the same run; first with
step previews decoded to pixels where their budget allows (what the app does, engine/decoded_preview.py), then with
projected previews only, so the cost of seeing the frames sharpen is printed as a ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BUDGET_S = 10.0
PROMPT = "the larger shape moves toward the smaller one"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    a = ap.parse_args(argv)

    import torch

    from engine.api import ModelSpec, RenderRequest
    from engine.handoff import default_handoff
    from engine.runtime import Runtime

    if a.threads:
        torch.set_num_threads(a.threads)
    from engine.decoded_preview import DEFAULT_FRACTION

    totals = {}

    def shown(event):  # a listener, as the app is: step previews are made for it
        pass

    for share in (DEFAULT_FRACTION, 0.0):
        rt = Runtime(preview_decode=share)
        t0 = time.perf_counter()
        summary = rt.load(ModelSpec())
        load_s = time.perf_counter() - t0
        d = summary["defaults"]
        handoff, _ = default_handoff(d)  # the app's amber mark
        base = RenderRequest(prompt=PROMPT, mode="light", steps=int(d["steps"]), num_frames=int(d["num_frames"]),
                             width=int(d["width"]), height=int(d["height"]), guidance_light=float(d["guidance_light"]),
                             guidance_heavy=float(d["guidance_heavy"]))
        rt.render(base.replace(seed=999))  # warm-up (first calls allocate, the LM writes its first plan)
        draft, refine, heavy = [], [], []
        for seed in range(a.repeats):
            rt.takes_cache.clear()
            rt.draft_cache.clear()
            req = base.replace(seed=seed)
            t = time.perf_counter()
            rt.render(req, emit=shown)
            draft.append(time.perf_counter() - t)
            t = time.perf_counter()
            rt.render(req.replace(mode="upfb", handoff=handoff), emit=shown)
            refine.append(time.perf_counter() - t)
            t = time.perf_counter()
            rt.render(req.replace(mode="heavy"), emit=shown)
            heavy.append(time.perf_counter() - t)
        dm, rm, hm = (statistics.median(x) for x in (draft, refine, heavy))
        print(f"family: {summary['light']} · {torch.get_num_threads()} threads · {d['width']}x{d['height']}x"
              f"{d['num_frames']}, {d['steps']} steps · load {load_s:.1f} s · step previews "
              + (f"decoded within {share:.0%} of step time" if share else "projected only"))
        print(f"draft                    {dm:6.2f} s")
        print(f"refine at s={handoff:.2f}         {rm:6.2f} s   ({rm / hm:.2f}x a heavy-only render, {hm:.2f} s)")
        totals[share] = total = dm + rm
        print(f"draft + refine           {total:6.2f} s   ({total / BUDGET_S:.2f}x the {BUDGET_S:.0f} s budget: "
              f"{'met' if total <= BUDGET_S else 'NOT met'})")
    print(f"decoded previews cost {totals[DEFAULT_FRACTION] / totals[0.0]:.2f}x the loop with projected ones")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
