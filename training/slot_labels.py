"""Slot supervision of the connector: its first queries must each say one whole shape of the plan.

Trained on the flow loss alone, the connector's queries carried the plan's words but not which colour went with
which place: with the true plan given, the light generator scored no better on reasoning instructions (0.53 on the
mini VR-Bench) than with the understanding LM's own, sometimes wrong, plan. So during the light stage, query k
(k < MAX_SHAPES) also predicts every attribute of the plan's k-th shape ("none" when the plan has fewer shapes) and
query MAX_SHAPES the background, through small linear heads that are dropped after training. A query that can name
"small, red, dotted, square, top left, moves right" at once has bound them, and the generator reads that query.
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from miniworld.language import PlanParseError, parse_plan
from miniworld.scene import BG_COLOURS, BG_TEXTURES, COLOURS, KINDS, MOTIONS, SIZES, SLOT_NAMES, TEXTURES

IGNORE = -100
MAX_SHAPES = 3
NONE = "none"
# Per shape slot: attribute → classes ("none" marks an empty slot, so the query also says how many shapes there are).
SHAPE_ATTRIBUTES: dict[str, tuple] = {
    "kind": KINDS + (NONE,), "colour": tuple(COLOURS), "size": tuple(SIZES), "texture": TEXTURES,
    "place": tuple(SLOT_NAMES), "motion": MOTIONS, "target": tuple(range(MAX_SHAPES)),
}
BACKGROUND_ATTRIBUTES: dict[str, tuple] = {"bg_colour": tuple(BG_COLOURS), "bg_texture": BG_TEXTURES}
NUM_SLOTS = MAX_SHAPES + 1


def slot_labels(plan: str) -> dict[str, list[int]]:
    """Class index per slot for every attribute (IGNORE where it does not apply); all IGNORE for an empty or
    unreadable plan (the dropped condition)."""
    out = {k: [IGNORE] * MAX_SHAPES for k in SHAPE_ATTRIBUTES} | {k: [IGNORE] for k in BACKGROUND_ATTRIBUTES}
    try:
        scene = parse_plan(plan) if plan.strip() else None
    except PlanParseError:
        scene = None
    if scene is None:
        return out
    for k in range(MAX_SHAPES):
        if k >= len(scene.shapes):
            out["kind"][k] = SHAPE_ATTRIBUTES["kind"].index(NONE)
            continue
        s = scene.shapes[k]
        for name, value in (("kind", s.kind), ("colour", s.colour), ("size", s.size), ("texture", s.texture),
                            ("place", s.slot), ("motion", s.motion)):
            out[name][k] = SHAPE_ATTRIBUTES[name].index(value)
        if s.target is not None:
            out["target"][k] = s.target
    out["bg_colour"][0] = BACKGROUND_ATTRIBUTES["bg_colour"].index(scene.bg_colour)
    out["bg_texture"][0] = BACKGROUND_ATTRIBUTES["bg_texture"].index(scene.bg_texture)
    return out


def batch_labels(plans: list[str]) -> dict[str, torch.Tensor]:
    """`slot_labels` of a batch: attribute → [B, slots] long tensor."""
    rows = [_cached_labels(p) for p in plans]
    return {k: torch.tensor([r[k] for r in rows]) for k in rows[0]}


@functools.lru_cache(maxsize=1 << 16)
def _cached_labels(plan: str) -> dict[str, list[int]]:
    return slot_labels(plan)  # read only: callers copy into tensors


class SlotHeads(nn.Module):
    """Linear heads reading the connector's first NUM_SLOTS output tokens [B, Q, width] (Q ≥ NUM_SLOTS)."""

    def __init__(self, width: int):
        super().__init__()
        self.heads = nn.ModuleDict({k: nn.Linear(width, len(v))
                                    for k, v in (SHAPE_ATTRIBUTES | BACKGROUND_ATTRIBUTES).items()})

    def loss(self, tokens: torch.Tensor, labels: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean cross-entropy over the attributes that have any label in the batch."""
        losses = []
        for name, head in self.heads.items():
            y = labels[name]
            if not (y != IGNORE).any():
                continue
            first = 0 if name in SHAPE_ATTRIBUTES else MAX_SHAPES
            logits = head(tokens[:, first: first + y.shape[1]])
            losses.append(nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=IGNORE))
        return torch.stack(losses).mean() if losses else tokens.sum() * 0.0

    @torch.no_grad()
    def accuracy(self, tokens: torch.Tensor, labels: dict[str, torch.Tensor]) -> dict[str, float]:
        out = {}
        for name, head in self.heads.items():
            y = labels[name]
            first = 0 if name in SHAPE_ATTRIBUTES else MAX_SHAPES
            pred = head(tokens[:, first: first + y.shape[1]]).argmax(-1)
            keep = y != IGNORE
            if keep.any():
                out[name] = float((pred[keep] == y[keep]).float().mean())
        return out
