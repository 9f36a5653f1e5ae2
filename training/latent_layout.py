"""The mini family's latent layout: one place for the VAE's factors and the generators' patch.

A 64×64×17 clip is encoded 8× spatially (4× on trial: stage_vae.VAE_LAYOUTS says why) and 4× temporally (5 latent
frames), and a generator token covers 16×16 pixels of one latent frame, so the generators see a 5 × 4 × 4 token
grid whatever the VAE's spatial factor: their cost does not grow with the latents.
"""

from __future__ import annotations

import json
from pathlib import Path

FRAME = 64          # the world's frame side, pixels
FRAMES = 17         # frames a clip
SPATIAL = 8         # the shipped VAE's spatial factor (Budget.vae_spatial; 4 on trial, issue 18)
TEMPORAL = 4        # its temporal factor; latent frame 0 holds video frame 0 alone (causal VAE)
CHANNELS = 16       # latent channels (Wan2.1's)
TOKEN_PX = 16       # pixels a generator token covers, per side
LATENT_FRAMES = (FRAMES - 1) // TEMPORAL + 1
POSITION_GRID = (LATENT_FRAMES, FRAME // TOKEN_PX, FRAME // TOKEN_PX)  # tokens: 5 latent frames × 4 × 4


def patch_for(spatial: int) -> tuple[int, int, int]:
    """The generator patch that keeps a token at TOKEN_PX pixels for a VAE of this spatial factor."""
    return (1, TOKEN_PX // spatial, TOKEN_PX // spatial)


def vae_factors(vae_folder: Path) -> tuple[int, int, int]:
    """(channels, spatial, temporal) of a saved VAE: stages follow their run's own VAE, whatever the defaults."""
    cfg = json.loads((Path(vae_folder) / "config.json").read_text())
    return int(cfg["z_dim"]), int(cfg.get("scale_factor_spatial", 8)), int(cfg.get("scale_factor_temporal", 4))


PATCH = patch_for(SPATIAL)
