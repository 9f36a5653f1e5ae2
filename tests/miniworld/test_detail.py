"""The correctness detail score (miniworld/detail.py): validated on the ladder the hand-off issue asks for."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from miniworld.detail import RUNGS, blurred, detail_correctness, ladder, texture_missing, texture_swapped
from miniworld.render import render
from miniworld.split import bench_set


@pytest.fixture(scope="module")
def scenes():
    return [e.scene for e, _ in bench_set() if e.category == "explicit"][:8]


def test_the_truth_scores_one(scenes):
    for sc in scenes[:3]:
        assert detail_correctness(render(sc), sc)["score"] == pytest.approx(1.0, abs=1e-9)


def test_the_ladder_is_strictly_ordered_and_a_small_blur_is_far_outside_the_spread(scenes):
    result = ladder(scenes)
    means = [result["means"][n] for n in RUNGS]
    assert all(a > b for a, b in zip(means, means[1:])), dict(zip(RUNGS, means))
    rungs = np.array([result["rungs"][n] for n in RUNGS[:4]])  # truth and the three blurs: ordered on every scene
    assert np.all(rungs[:-1] > rungs[1:])
    assert result["gap_truth_blur15"] > 10 * result["spread_truth_blur15"]


def test_a_shape_drawn_a_pixel_off_is_judged_on_its_surface(scenes):
    sc = scenes[0]
    shifted = np.roll(render(sc), 2, axis=2)  # everything 2 px to the right
    assert detail_correctness(shifted, sc)["shapes"] > 0.95


def test_a_missing_shape_scores_zero_for_that_shape(scenes):
    sc = next(s for s in scenes if len(s.shapes) >= 2)
    without = replace(sc, shapes=sc.shapes[1:])
    out = detail_correctness(render(without), sc)
    assert out["per_shape"][0] < 0.05 and min(out["per_shape"][1:]) > 0.95
    assert out["per_shape_found"][0] == 0.0 and min(out["per_shape_found"][1:]) == 1.0


def test_detail_by_region_splits_moving_and_still_shapes(scenes):
    """bench.detail_by_region: each shape counts once, in its region; the truth scores 1 everywhere."""
    from bench.detail_by_region import by_region

    items = [(type("Example", (), {"scene": sc})(), 0) for sc in scenes]
    refs = [render(sc) for sc in scenes]
    truth = by_region(refs, items, refs)
    moving = sum(s.motion != "still" for sc in scenes for s in sc.shapes)
    assert truth["moving shapes"] == moving and truth["still shapes"] == sum(len(sc.shapes) for sc in scenes) - moving
    assert truth["moving"] == pytest.approx(1.0) and truth["background"] == pytest.approx(1.0)
    assert truth["moving found"] == 1.0
    blurred_moving = by_region([blurred(r, 3.0) for r in refs], items, refs)
    assert blurred_moving["moving"] < 0.9 and blurred_moving["score"] < truth["score"]


def test_the_old_energy_score_could_not_tell_a_wrong_texture(scenes):
    """Why this score exists: the energy score rates a wrong texture close to the truth; this one does not."""
    from miniworld.score import detail_score

    old, new = [], []
    for sc in scenes:
        truth, wrong = render(sc), render(texture_swapped(sc))
        old.append(detail_score(wrong, truth))
        new.append(detail_correctness(wrong, sc, truth)["score"])
    assert np.mean(old) > 0.8 and np.mean(new) < 0.5


def test_blur_and_texture_helpers_keep_the_clip_shape(scenes):
    sc = scenes[0]
    truth = render(sc)
    assert blurred(truth, 2.0).shape == truth.shape and texture_missing(sc).shape == truth.shape
    with pytest.raises(ValueError):
        detail_correctness(truth[:, :32], sc)


def test_the_paired_interval_of_the_hand_off_bench():
    from bench.handoff_detail import paired_interval

    rng = np.random.default_rng(0)
    light = rng.uniform(0.5, 0.7, 200)
    mean, lo, hi = paired_interval(light + 0.05 + rng.normal(0, 0.01, 200), light)
    assert lo < mean < hi and lo > 0.04 and hi < 0.06  # the pairing removes the spread between instructions
    mean, lo, hi = paired_interval(light, light)
    assert mean == lo == hi == 0.0


def test_detail_by_region_refuses_a_change_it_cannot_make():
    import argparse

    from bench.detail_by_region import request_change

    assert request_change("steps=40") == ("steps", 40) and request_change("scheduler=euler") == ("scheduler", "euler")
    for bad in ("seed=3", "steps=many", "steps"):
        with pytest.raises(argparse.ArgumentTypeError):
            request_change(bad)
