"""What a loaded model pair can render (size, frames, text tokens), read from its configs."""

from __future__ import annotations

import math

from .request import MAX_FRAMES, MAX_SIDE, ModelLimits


def model_limits(models) -> ModelLimits:
    """What a loaded pair can render, from its configs (see `ModelLimits`): per axis, the fewest tokens any of its
    position signals covers (Wan's RoPE table, `rope_max_seq_len`; our absolute `position_grid`), in pixels and frames
    through the patch and the VAE's compression."""
    vae = models.vae.config
    spatial, temporal = int(vae.scale_factor_spatial), int(vae.scale_factor_temporal)
    tokens = [None, None, None]  # time, height, width
    step = 16
    for model in (models.light, models.heavy):
        cfg = model.config
        patch = tuple(int(p) for p in cfg.patch_size)
        rope = getattr(cfg, "rope_max_seq_len", None)
        grid = getattr(cfg, "position_grid", None) or (None, None, None)
        for axis in range(3):
            for cap in (rope, grid[axis]):
                if cap:
                    cover = int(cap) * patch[axis]  # latent units
                    tokens[axis] = cover if tokens[axis] is None else min(tokens[axis], cover)
        step = math.lcm(step, spatial * patch[1], spatial * patch[2])
    max_frames = MAX_FRAMES if tokens[0] is None else min(MAX_FRAMES, (tokens[0] - 1) * temporal + 1)
    max_height = MAX_SIDE if tokens[1] is None else min(MAX_SIDE, tokens[1] * spatial)
    max_width = MAX_SIDE if tokens[2] is None else min(MAX_SIDE, tokens[2] * spatial)
    name = models.defaults.get("name") if isinstance(models.defaults.get("name"), str) else "this model pair"
    return ModelLimits(name=name, max_width=max_width - max_width % step, max_height=max_height - max_height % step,
                       max_frames=max_frames, size_step=step, text_tokens=models.max_sequence_length)
