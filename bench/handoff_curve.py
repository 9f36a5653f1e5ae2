"""The paper's trade-off curve on the mini VR-Bench: reasoning against detail, UPFB against a hard switch at equal
compute, paired over the same instructions and seeds.

    .venv/bin/python -m bench.handoff_curve [--family DIR] [--per-category 12] [--seeds 2] [--jobs 2] [--out docs/]
                                            [--set-default]

For every mode (light only, heavy only, UPFB at several hand-off values, hard switches) it renders the bench's
reasoning instructions (instruction score, miniworld/score.py) and explicit instructions (correctness detail score,
miniworld/detail.py: there the scene is known exactly). It prints and writes (``--out``: handoff_curve.json / .md /
.png):

- the detail ladder the score was validated on (truth, blurs, swapped and missing texture; bench/detail_ladder.py);
- the VAE round trip of the truth (the detail ceiling of the shared latent space);
- each mode's reasoning score, detail score and compute (transformer parameters × calls, CFG included);
- heavy − light on detail with a paired bootstrap 95 % interval, and the seed-to-seed spread;
- the targets of issue 18, and the slider default picked from the curve (``--set-default`` writes it to lumos.json).

**Equal compute.** A UPFB step calls both generators; a switch step calls one. So the switches here run more steps:
for a switch at fraction f of the run, N_s = N (P_L + P_H) / (f P_L + (1 − f) P_H) steps (P: parameters), which costs
what UPFB's N steps cost; "heavy = UPFB compute" likewise. A UPFB point is dominated when some switch point is at
least as good on both axes and better on one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.handoff_detail import paired_interval  # noqa: E402
from bench.vrbench import REASONING_MARGIN, EngineGenerator, Mode, bench_items  # noqa: E402
from miniworld import REASONING_CATEGORIES, render  # noqa: E402
from miniworld.detail import detail_correctness  # noqa: E402
from miniworld.score import instruction_score  # noqa: E402

HANDOFFS = (0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0)
SWITCH_FRACTIONS = (0.25, 0.5, 0.75)
KEEP_REASONING = 0.95   # issue 18: UPFB keeps ≥ 95 % of light's reasoning score …
REACH_DETAIL = 0.90     # … and gets ≥ 90 % of heavy's detail gain over light


@dataclass
class Point:
    """One mode's place on the (reasoning, detail) plane, with its per-clip scores for paired statistics."""

    mode: Mode
    cost: float                                   # parameter-calls per clip, relative to one heavy step
    reasoning_clips: list[float] = field(default_factory=list)
    detail_clips: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def reasoning(self) -> float:
        return float(np.mean(self.reasoning_clips))

    @property
    def detail(self) -> float:
        return float(np.mean(self.detail_clips))

    def row(self) -> dict:
        return {"mode": self.mode.name, "kind": self.mode.mode, "handoff": self.mode.handoff,
                "switch_step": self.mode.switch_step, "steps": self.mode.steps, "cost": self.cost,
                "reasoning": self.reasoning, "detail": self.detail, "seconds": self.seconds,
                "reasoning_clips": self.reasoning_clips, "detail_clips": self.detail_clips}


def compute_cost(m: Mode, steps: int, ratio: float, flow_shift: float) -> float:
    """Generator calls of one clip in heavy-step units (light step = ``ratio``), from the sampler's own step plan."""
    from engine.handoff import flow_timesteps, handoff_to_gamma_w
    from engine.sampler import SamplerSettings, plan_step

    n = m.steps or steps
    gamma = handoff_to_gamma_w(m.handoff or 0.0, flow_shift) if m.mode == "upfb" else 0.0
    settings = SamplerSettings(m.mode, gamma_w=gamma, switch_step=m.switch_step or 0, light_lead=m.light_lead)
    plans = [plan_step(settings, i, t) for i, t in enumerate(flow_timesteps(n, flow_shift))]
    return float(sum(ratio * p.run_light + p.run_heavy for p in plans))


def curve_modes(steps: int, ratio: float, lead: int = 0) -> list[Mode]:
    """light, heavy, UPFB over HANDOFFS (and with a `lead`-step light lead, UPFB's own extension, when given), and
    heavy / switches given UPFB's compute."""
    out = [Mode("light", "light"), Mode("heavy", "heavy")]
    out += [Mode(f"upfb s={s:.1f}", "upfb", handoff=s) for s in HANDOFFS]
    if lead:
        out += [Mode(f"upfb s={s:.1f} lead{lead}", "upfb", handoff=s, light_lead=lead) for s in HANDOFFS]
    budget = steps * (1 + ratio)
    out.append(Mode(f"heavy {round(budget)} steps", "heavy", steps=round(budget)))
    for f in SWITCH_FRACTIONS:
        n = round(budget / (f * ratio + 1 - f))
        out.append(Mode(f"switch {f:.2f} ({n} steps)", "switch", switch_step=round(f * n), steps=n))
    return out


def items_for(per_category: int, seeds: int, skip: int = 0):
    """(example, seed) pairs: every bench category's first `per_category` instructions after its first `skip`, each at
    `seeds` seeds."""
    base = bench_items(per_category, skip)
    return [(ex, seed + 1000 * k) for k in range(seeds) for ex, seed in base]


def score(gen, m: Mode, items, refs) -> tuple[list[float], list[float], float]:
    t0 = time.time()
    clips = gen.generate_many([gen.request(ex.instruction, seed, m) for ex, seed in items])
    reasoning, detail = [], []
    for (ex, _), ref, frames in zip(items, refs, clips):
        if ex.category in REASONING_CATEGORIES:
            reasoning.append(instruction_score(frames, ex.scene))
        elif ex.category == "explicit":
            detail.append(detail_correctness(frames, ex.scene, ref)["score"])
    return reasoning, detail, time.time() - t0


def _worker(family, per_category, seeds, mode_list, skip: int = 0) -> list[tuple[list[float], list[float], float]]:
    gen = EngineGenerator(family, 1)
    try:
        items = items_for(per_category, seeds, skip)
        refs = [render(ex.scene) for ex, _ in items]
        out = []
        for m in mode_list:
            out.append(score(gen, m, items, refs))
            print(f"  {m.name}: reasoning {np.mean(out[-1][0]):.3f} detail {np.mean(out[-1][1]):.3f} "
                  f"({out[-1][2]:.0f} s)", file=sys.stderr, flush=True)
        return out
    finally:
        gen.close()


def dominated(p: Point, others: list[Point]) -> bool:
    return any(o.reasoning >= p.reasoning and o.detail >= p.detail and (o.reasoning > p.reasoning
               or o.detail > p.detail) for o in others)


def targets(points: list[Point]) -> dict:
    by = {p.mode.name: p for p in points}
    light, heavy = by["light"], by["heavy"]
    gap = paired_interval(heavy.detail_clips, light.detail_clips)
    gain = heavy.detail - light.detail
    switches = [p for p in points if p.mode.mode == "switch" or (p.mode.mode == "heavy" and p.mode.steps)]
    upfb = [p for p in points if p.mode.mode == "upfb"]
    meets = [p for p in upfb if p.reasoning >= KEEP_REASONING * light.reasoning
             and p.detail >= light.detail + REACH_DETAIL * gain]
    best = max(meets, key=lambda p: p.detail) if meets and gain > 0 else None
    return {
        "heavy_minus_light_detail": {"mean": gap[0], "low": gap[1], "high": gap[2]},
        "heavy_detail_above_light": gap[1] > 0,
        "light_reasoning_ge_0.85": light.reasoning >= 0.85,
        "heavy_reasoning_clearly_below_light": heavy.reasoning <= light.reasoning - REASONING_MARGIN,
        "upfb_keeps_95pct_reasoning_and_90pct_detail_gain": best is not None,
        "upfb_meeting": [p.mode.name for p in meets] if gain > 0 else [],
        "upfb_dominated_by_switch": {p.mode.name: dominated(p, switches) for p in upfb},
        "upfb_not_dominated": any(not dominated(p, switches) for p in upfb)
        and (best is None or not dominated(best, switches)),
        "default_handoff": pick_default(light, heavy, [p for p in upfb if not p.mode.light_lead],
                                       best if best is not None and not best.mode.light_lead else None),
    }


def pick_default(light: Point, heavy: Point, upfb: list[Point], best: Point | None) -> float | None:
    """The slider default: the most detailed UPFB point that meets both targets; else the most detailed one that keeps
    95 % of light's reasoning (a default must not give up instruction following for detail it cannot reach); else
    the one closest to both targets (the larger of its two shortfalls, relative to the targets, smallest)."""
    if best is not None:
        return best.mode.handoff
    gain = heavy.detail - light.detail
    if not upfb or gain <= 0:
        return None
    keep = [p for p in upfb if p.reasoning >= KEEP_REASONING * light.reasoning]
    if keep:
        return max(keep, key=lambda p: (p.detail, -p.mode.handoff)).mode.handoff

    def shortfall(p):
        keep = max(0.0, KEEP_REASONING * light.reasoning - p.reasoning) / max(light.reasoning, 1e-9)
        reach = max(0.0, light.detail + REACH_DETAIL * gain - p.detail) / gain
        return max(keep, reach)

    return min(upfb, key=shortfall).mode.handoff


def table(points: list[Point], ceiling: float) -> str:
    lines = ["| mode | compute (heavy steps) | reasoning | detail (correctness) | s |", "|---|---|---|---|---|"]
    lines += [f"| {p.mode.name} | {p.cost:.1f} | {p.reasoning:.3f} | {p.detail:.3f} | {p.seconds:.0f} |"
              for p in points]
    lines.append(f"| VAE round trip of the truth (ceiling) | — | — | {ceiling:.3f} | |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", default=None, help="family folder (default: the embedded lumos-mini)")
    p.add_argument("--per-category", type=int, default=12, help="bench instructions per category (at most 36)")
    p.add_argument("--seeds", type=int, default=2, help="seeds per instruction")
    p.add_argument("--jobs", type=int, default=1, help="processes, each rendering a share of the modes on one thread")
    p.add_argument("--ladder-scenes", type=int, default=12, help="explicit scenes for the detail ladder (0: skip)")
    p.add_argument("--out", type=Path, default=None, help="folder for handoff_curve.json / .md / .png")
    p.add_argument("--set-default", action="store_true", help="write the picked slider default to lumos.json")
    p.add_argument("--lead", type=int, default=0, help="also UPFB with this many light-lead steps (0: none)")
    p.add_argument("--skip", type=int, default=0,
                   help="skip each category's first SKIP instructions: a held-out check of points chosen on them "
                        "(e.g. --skip 12 after a curve on the first 12)")
    p.add_argument("--only", nargs="+", default=None, metavar="MODE",
                   help="only these modes (names as printed; light and heavy always run), for a first look")
    a = p.parse_args(argv)
    if a.skip < 0 or a.skip + a.per_category > 36:
        p.error(f"--skip {a.skip} with --per-category {a.per_category}: the bench has 36 instructions a category")
    if a.skip and a.set_default:
        p.error("--set-default picks the slider from the curve's own instructions; run it without --skip")
    import torch

    torch.set_num_threads(1)  # before anything else: a busy machine makes an OpenMP team wait a time slice per op
    from bench.curve_plot import plot_curve
    from bench.handoff_detail import vae_ceiling
    from engine.models import DEFAULT_FAMILY
    from miniworld.detail import RUNGS, ladder

    started = time.time()
    family = Path(a.family) if a.family else Path(DEFAULT_FAMILY)
    lad = None
    if a.ladder_scenes:
        explicit = [ex.scene for ex, _ in bench_items(None) if ex.category == "explicit"][: a.ladder_scenes]
        lad = ladder(explicit)
        print(f"detail ladder on {len(explicit)} explicit scenes: " + ", ".join(
            f"{n} {np.mean(lad['rungs'][n]):.3f}" for n in RUNGS) + f"; strictly ordered: {lad['ordered']}; "
            f"truth − 1.5× blur {lad['gap_truth_blur15']:.3f} vs spread {lad['spread_truth_blur15']:.4f}")
    explicit_items = [it for it in items_for(a.per_category, a.seeds, a.skip) if it[0].category == "explicit"]
    ceiling = float(vae_ceiling(str(family), explicit_items)[0].mean())
    print(f"VAE round trip of the truth: detail {ceiling:.3f}")
    probe = EngineGenerator(str(family), 1)
    steps, shift = int(probe.defaults.get("steps", 20)), probe.engine.runtime.model_flow_shift
    models = probe.engine.runtime.models
    ratio = sum(q.numel() for q in models.light.parameters()) / sum(q.numel() for q in models.heavy.parameters())
    probe.close()
    mode_list = [m for m in curve_modes(steps, ratio, a.lead)
                 if a.only is None or m.name in ("light", "heavy") or m.name in a.only]
    print(f"light / heavy parameters: {ratio:.3f} (heavy {1 / ratio:.1f}× light); {len(mode_list)} modes × "
          f"{len(items_for(a.per_category, a.seeds, a.skip))} clips", flush=True)
    from bench.mode_pool import map_modes

    from functools import partial

    done = map_modes(partial(_worker, skip=a.skip), (str(family), a.per_category, a.seeds), mode_list, a.jobs)
    points = [Point(m, compute_cost(m, steps, ratio, shift), *r) for m, r in zip(mode_list, done)]
    t = targets(points)
    text = table(points, ceiling)
    light_spread = None
    if a.seeds > 1:  # light's per-instruction spread over seeds, on detail
        light = next(p for p in points if p.mode.name == "light")
        per_seed = np.array(light.detail_clips).reshape(a.seeds, -1)
        light_spread = float(np.mean(np.std(per_seed, axis=0)))
    gap = t["heavy_minus_light_detail"]
    summary = (f"heavy − light detail {gap['mean']:+.3f} [{gap['low']:+.3f}, {gap['high']:+.3f}] (paired bootstrap "
               f"95 %, {len(points[0].detail_clips)} clips)" + (f"; light's seed-to-seed spread {light_spread:.4f}"
                                                                 if light_spread is not None else ""))
    print(text)
    print(summary)
    print("targets: " + json.dumps(t, default=float))
    print(f"({time.time() - started:.0f} s)")
    if a.out:
        from engine.atomic_files import atomic_write_json, atomic_write_text

        a.out.mkdir(parents=True, exist_ok=True)
        rep = {"family": str(family), "per_category": a.per_category, "skip": a.skip, "seeds": a.seeds,
               "light_over_heavy": ratio,
               "ceiling": ceiling, "light_seed_spread": light_spread, "points": [p.row() for p in points],
               "targets": t, "ladder": ({n: float(np.mean(lad["rungs"][n])) for n in RUNGS} if lad else None)}
        atomic_write_json(a.out / "handoff_curve.json", json.loads(json.dumps(rep, default=float)))
        atomic_write_text(a.out / "handoff_curve.md", text + "\n\n" + summary + "\n\nTargets: "
                          + json.dumps(t, default=float) + "\n")
        plot_curve(points, ceiling, a.out / "handoff_curve.png")
    if a.set_default and t["default_handoff"] is not None:
        from bench.vrbench import write_default_handoff

        write_default_handoff(family, t["default_handoff"])
        print(f"default hand-off {t['default_handoff']:.2f} written to {family / 'lumos.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
