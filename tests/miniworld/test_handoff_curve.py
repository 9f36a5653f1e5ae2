"""bench.handoff_curve: equal-compute switches, dominance, the issue-18 targets and the slider default, the plot, and a
scoring pass on a fake generator that draws the ground truth (light-led) or a blurred / frozen version (heavy)."""

import numpy as np
import pytest

from bench.handoff_curve import (Point, compute_cost, curve_modes, dominated, items_for, pick_default, score,
                                 targets)
from bench.vrbench import Mode
from miniworld import render


def _point(name, kind, reasoning, detail, handoff=None, steps=None, switch_step=None, n=40, seed=0):
    rng = np.random.default_rng(seed)
    return Point(Mode(name, kind, handoff=handoff, steps=steps, switch_step=switch_step), 20.0,
                 list(np.clip(reasoning + rng.normal(0, 0.01, n), 0, 1)),
                 list(np.clip(detail + rng.normal(0, 0.005, n), 0, 1)))


def test_switches_get_upfbs_compute():
    ratio = 0.11
    ml = curve_modes(20, ratio)
    upfb = [compute_cost(m, 20, ratio, 2.0) for m in ml if m.mode == "upfb"]
    # both generators at every step but the first (w = 1 at pure noise: heavy's weight is 0 and it is not called)
    assert all(20 * (1 + ratio) - 1 - 1e-9 <= c <= 20 * (1 + ratio) + 1e-9 for c in upfb), upfb
    assert compute_cost(Mode("light", "light"), 20, ratio, 2.0) == pytest.approx(20 * ratio)
    assert compute_cost(Mode("heavy", "heavy"), 20, ratio, 2.0) == pytest.approx(20)
    equal = [m for m in ml if m.steps]
    assert len(equal) == 4 and sum(m.mode == "switch" for m in equal) == 3
    for m in equal:  # each within one step of UPFB's budget, and the switches spread over the run
        assert abs(compute_cost(m, 20, ratio, 2.0) - 20 * (1 + ratio)) <= 1.0, m
    fractions = sorted(m.switch_step / m.steps for m in equal if m.mode == "switch")
    assert fractions == pytest.approx([0.25, 0.5, 0.75], abs=0.02)


def test_dominance_needs_both_axes():
    p = _point("upfb", "upfb", 0.9, 0.70, handoff=0.5)
    assert dominated(p, [_point("a", "switch", 0.92, 0.71)])
    assert not dominated(p, [_point("b", "switch", 0.95, 0.69), _point("c", "switch", 0.80, 0.75)])
    assert not dominated(p, [p])  # equal on both is not better


def test_targets_met_when_upfb_bridges_and_default_is_that_point():
    pts = [_point("light", "light", 0.92, 0.60), _point("heavy", "heavy", 0.55, 0.72, seed=1),
           _point("upfb s=0.5", "upfb", 0.91, 0.66, handoff=0.5), _point("upfb s=0.7", "upfb", 0.89, 0.715, 0.7),
           _point("upfb s=1.0", "upfb", 0.70, 0.72, 1.0),
           _point("switch", "switch", 0.85, 0.70, steps=40, switch_step=20)]
    t = targets(pts)
    assert t["heavy_detail_above_light"] and t["heavy_minus_light_detail"]["low"] > 0
    assert t["light_reasoning_ge_0.85"] and t["heavy_reasoning_clearly_below_light"]
    assert t["upfb_meeting"] == ["upfb s=0.7"] and t["upfb_keeps_95pct_reasoning_and_90pct_detail_gain"]
    assert t["upfb_not_dominated"] and t["default_handoff"] == 0.7


def test_targets_fail_when_heavy_draws_no_more_detail():
    pts = [_point("light", "light", 0.92, 0.70), _point("heavy", "heavy", 0.55, 0.70, seed=1),
           _point("upfb s=0.5", "upfb", 0.91, 0.70, handoff=0.5)]
    t = targets(pts)
    assert not t["heavy_detail_above_light"]
    assert not t["upfb_keeps_95pct_reasoning_and_90pct_detail_gain"] and t["upfb_meeting"] == []
    assert t["default_handoff"] is None  # nothing to trade: no default picked from noise


def test_default_keeps_reasoning_when_none_meets_both():
    light, heavy = _point("light", "light", 0.9, 0.6), _point("heavy", "heavy", 0.5, 0.7)
    keeps = _point("upfb s=0.2", "upfb", 0.9, 0.61, handoff=0.2)     # keeps reasoning, little detail
    trades = _point("upfb s=0.6", "upfb", 0.80, 0.68, handoff=0.6)   # detail bought with reasoning
    assert pick_default(light, heavy, [keeps, trades], None) == 0.2
    # none keeps 95 %: the point closest to both targets
    near = _point("upfb s=0.6", "upfb", 0.84, 0.68, handoff=0.6)
    far = _point("upfb s=0.9", "upfb", 0.6, 0.70, handoff=0.9)
    assert pick_default(light, heavy, [near, far], None) == 0.6


def test_plot_writes_a_png(tmp_path):
    from bench.curve_plot import plot_curve

    pts = [_point("light", "light", 0.92, 0.60), _point("heavy", "heavy", 0.55, 0.72),
           _point("upfb s=0.5", "upfb", 0.91, 0.66, handoff=0.5),
           _point("heavy 22 steps", "heavy", 0.56, 0.72, steps=22),
           _point("switch", "switch", 0.85, 0.70, steps=40, switch_step=20)]
    plot_curve(pts, 0.75, tmp_path / "c.png")
    import cv2

    img = cv2.imread(str(tmp_path / "c.png"))
    assert img.shape == (600, 900, 3) and (img < 250).any(axis=2).mean() > 0.01


class TruthOrBlur:
    """Light-led modes draw the ground truth; heavy draws it 3× blurred with its first frame frozen."""

    def __init__(self, items):
        self.scenes = {ex.instruction: ex.scene for ex, _ in items}

    def request(self, prompt, seed, m):
        return prompt, m

    def generate_many(self, reqs):
        from miniworld.detail import blurred

        out = []
        for prompt, m in reqs:
            clip = render(self.scenes[prompt])
            if m.mode == "heavy":
                clip = np.repeat(blurred(clip, 3.0)[:1], len(clip), axis=0)
            out.append(clip)
        return out


def test_scoring_separates_truth_from_a_frozen_blur():
    items = items_for(1, 1)
    refs = [render(ex.scene) for ex, _ in items]
    gen = TruthOrBlur(items)
    r_light, d_light, _ = score(gen, Mode("light", "light"), items, refs)
    r_heavy, d_heavy, _ = score(gen, Mode("heavy", "heavy"), items, refs)
    assert len(r_light) == 5 and len(d_light) == 1  # five reasoning categories, one explicit instruction
    assert np.mean(r_light) == pytest.approx(1.0) and d_light[0] == pytest.approx(1.0)
    assert np.mean(r_heavy) < 0.9 and d_heavy[0] < 0.8


def test_a_light_lead_costs_light_steps_only_and_is_no_slider_default():
    ratio = 0.11
    led = [m for m in curve_modes(20, ratio, lead=10) if m.light_lead]
    assert len(led) == 7 and all(m.light_lead == 10 for m in led)
    assert compute_cost(led[0], 20, ratio, 2.0) == pytest.approx(10 * ratio + 10 * (1 + ratio))
    pts = [_point("light", "light", 0.92, 0.60), _point("heavy", "heavy", 0.55, 0.72, seed=1),
           _point("upfb s=0.2", "upfb", 0.91, 0.61, handoff=0.2)]
    lead = _point("upfb s=0.8 lead10", "upfb", 0.91, 0.715, handoff=0.8)
    lead.mode = Mode(lead.mode.name, "upfb", handoff=0.8, light_lead=10)
    t = targets(pts + [lead])
    assert t["upfb_meeting"] == ["upfb s=0.8 lead10"]  # the lead meets both targets …
    assert t["default_handoff"] == 0.2  # … but the slider runs UPFB without one


def test_skip_gives_held_out_instructions_the_curve_never_saw():
    """--skip K: every category's instructions after its first K, the same count a category, none shared with the
    curve's own."""
    from bench.handoff_curve import items_for
    from miniworld import CATEGORIES

    curve, held = items_for(12, 2), items_for(12, 2, skip=12)
    assert len(held) == len(curve) == 12 * len(CATEGORIES) * 2
    assert not {ex.instruction for ex, _ in curve} & {ex.instruction for ex, _ in held}
    assert {ex.category for ex, _ in held} == set(CATEGORIES)
    # the second seed of each held-out instruction is its first + 1000, as in the curve
    half = len(held) // 2
    assert [s + 1000 for _, s in held[:half]] == [s for _, s in held[half:]]


@pytest.mark.parametrize("args, message", [
    (["--skip", "30", "--per-category", "12"], "the bench has 36 instructions a category"),
    (["--skip", "12", "--set-default"], "--set-default picks the slider from the curve's own instructions"),
])
def test_a_held_out_run_that_cannot_be_is_refused_before_rendering(args, message, capsys):
    from bench.handoff_curve import main

    with pytest.raises(SystemExit):
        main(args)
    assert message in capsys.readouterr().err
