"""Ground truth of the mini world: plans round-trip, renders score 1.0 on their own scene, wrong clips score low."""

import numpy as np
import pytest

from miniworld import (
    CATEGORIES, bench_set, detail_score, instruction_score, layout_text, parse_plan, plan_text, psnr, render,
    sample_example, sample_train_example, shape_sentences, split_of, ssim,
)
from miniworld.scene import collides


@pytest.fixture(scope="module")
def examples():
    rng = np.random.default_rng(7)
    return [sample_example(rng, c) for c in CATEGORIES for _ in range(12)]


def test_render_shape_and_dtype(examples):
    clip = render(examples[0].scene)
    assert clip.shape == (17, 64, 64, 3) and clip.dtype == np.uint8 and clip.flags.c_contiguous


def test_plan_round_trip(examples):
    for ex in examples:
        assert plan_text(parse_plan(ex.plan)) == ex.plan
        assert parse_plan(ex.plan) == ex.scene
        assert not collides(ex.scene)


def test_shape_sentences_find_every_shape_of_plans_and_layouts(examples):
    for ex in examples:
        for text, with_motion in ((ex.plan, True), (layout_text(ex.scene), False), (ex.instruction, None)):
            found = shape_sentences(text)
            assert [(f.colour, f.kind, f.size, f.texture, f.slot) for f in found] == \
                [(s.colour, s.kind, s.size, s.texture, s.slot) for s in ex.scene.shapes], text
            for f in found:
                a, b = f.field_spans["colour"]
                assert text[a:b] == f.colour and text[f.span[0]:f.span[1]].startswith("a ")
                if with_motion is not None:
                    assert (f.motion is not None) == with_motion
    # a target named inside another shape's sentence is not a sentence of its own
    assert len(shape_sentences("a big red plain circle at the left moves toward the blue square. "
                               "a small blue dotted square in the center stays still. gray checked background.")) == 2


def test_explicit_instruction_is_its_plan_and_reasoning_is_not(examples):
    for ex in examples:
        assert (ex.instruction == ex.plan) == (ex.category == "explicit")


def test_rendered_scene_scores_one_on_its_own_instruction(examples):
    for ex in examples:
        clip = render(ex.scene)
        assert instruction_score(clip, ex.scene) == 1.0, ex.plan
        assert detail_score(clip, clip) == pytest.approx(1.0)
        assert ssim(clip, clip) == pytest.approx(1.0)


def test_wrong_motion_scores_low(examples):
    """Same shapes and places, every motion changed: only the 'is it there' questions can pass."""
    for ex in examples:
        moving = [s for s in ex.scene.shapes if s.motion != "still"]
        wrong = ex.scene.with_motions([("still", None) if s.motion != "still" else ("grow", None)
                                       for s in ex.scene.shapes])
        assert instruction_score(render(wrong), ex.scene) <= 1 / 3 + 1e-9, (ex.plan, moving)


def test_still_clip_fails_a_moving_instruction():
    ex = sample_example(np.random.default_rng(3), "cause")
    frozen = np.repeat(render(ex.scene)[:1], 17, axis=0)
    assert instruction_score(frozen, ex.scene) < 1.0


def test_blur_loses_detail_and_psnr(examples):
    import cv2

    clip = render(examples[1].scene)
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 2.0) for f in clip])
    assert detail_score(blurred, clip) < 0.8
    assert psnr(blurred, clip) < 30
    noisy = np.clip(clip + np.random.default_rng(0).normal(0, 40, clip.shape), 0, 255).astype(np.uint8)
    assert detail_score(noisy, clip) < 0.8


def test_bench_is_balanced_held_out_and_deterministic():
    bench = bench_set()
    assert len(bench) >= 200
    counts = {c: sum(e.category == c for e, _ in bench) for c in CATEGORIES}
    assert len(set(counts.values())) == 1
    assert all(split_of(e.plan) == "bench" for e, _ in bench)
    assert [e.instruction for e, _ in bench[:5]] == [e.instruction for e, _ in bench_set()[:5]]
    rng = np.random.default_rng(0)
    assert all(split_of(sample_train_example(rng, c).plan) == "train" for c in CATEGORIES for _ in range(20))


def test_world_imports_without_torch():
    import subprocess
    import sys

    code = "import sys; sys.modules['torch'] = None; import miniworld as m; m.render(m.sample_example(__import__('numpy').random.default_rng(0), 'relation').scene)"
    subprocess.run([sys.executable, "-c", code], check=True)
