"""The mini world: a procedural world of coloured, textured shapes, its language, and its scorer.

numpy + opencv only (no torch), so the scorer and data generator run anywhere.
"""

from .language import (
    CATEGORIES, REASONING_CATEGORIES, REGISTERS, Example, PlanParseError, ShapeSentence, layout_text, parse_plan,
    plan_text, sample_example, shape_sentences,
)
from .render import render
from .scene import NUM_FRAMES, HEIGHT, WIDTH, Scene, Shape, random_layout, trajectory
from .score import detail_score, instruction_score, placement_score, psnr, score_clip, shape_checks, ssim
from .split import bench_set, sample_train_example, split_of

__all__ = [
    "CATEGORIES", "REASONING_CATEGORIES", "REGISTERS", "Example", "PlanParseError", "ShapeSentence",
    "shape_sentences", "layout_text", "parse_plan",
    "plan_text", "sample_example", "render", "NUM_FRAMES", "HEIGHT", "WIDTH", "Scene", "Shape", "random_layout",
    "trajectory", "detail_score", "instruction_score", "placement_score", "psnr", "score_clip", "shape_checks", "ssim", "bench_set",
    "sample_train_example", "split_of",
]
