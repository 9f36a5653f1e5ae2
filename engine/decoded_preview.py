"""When a step's preview is decoded to pixels instead of projected from the latent.

The latent projection (engine/preview.py) is nearly free but shows one colour per latent pixel (a 4× or 8× coarser
frame): it shows layout and motion, never the texture a refine adds. Decoding the step's x0 estimate with the
VAE shows the frames sharpening, at the cost of a VAE pass. So decoded previews may take at most ``fraction`` of the
time the render's steps take. A decode's cost is learnt from each take's own final decode, per clip size; before
the first take of a size the cost is unknown and previews stay projected, except for a small VAE (the embedded
family's), which is timed once when the models load.
"""

from __future__ import annotations

import time
from typing import Callable

DEFAULT_FRACTION = 0.5
SMALL_VAE_PARAMETERS = 20_000_000  # below this a VAE is timed at load (lumos-mini's: 3M, ~0.2 s; Wan2.1's: 127M)


class DecodePolicy:
    """Learnt decode costs per (frames, height, width) and the share of step time decoded previews may use."""

    def __init__(self, fraction: float = DEFAULT_FRACTION):
        self.fraction = max(0.0, float(fraction))
        self.cost: dict[tuple[int, int, int], float] = {}

    def learn(self, size: tuple[int, int, int], seconds: float) -> None:
        """A decode of a clip of ``size`` took ``seconds`` (a moving average: the machine's load changes)."""
        old = self.cost.get(size)
        self.cost[size] = seconds if old is None else 0.5 * (old + seconds)

    def decode_and_learn(self, size: tuple[int, int, int], decode: Callable, latents):
        """`decode(latents)`, its time learnt as the cost of a clip of `size`."""
        started = time.perf_counter()
        frames = decode(latents)
        self.learn(size, time.perf_counter() - started)
        return frames

    def time_small_vae(self, vae, defaults: dict, decode: Callable, device) -> None:
        """A small VAE (the embedded family's) is timed once at the family's default clip size, so the first
        draft's previews can already be decoded; a large one (Wan's: seconds a decode) learns from its first take."""
        import torch

        if self.fraction <= 0 or sum(p.numel() for p in vae.parameters()) > SMALL_VAE_PARAMETERS:
            return
        size = (int(defaults.get("num_frames", 17)), int(defaults.get("height", 64)), int(defaults.get("width", 64)))
        cfg = vae.config
        frames = (size[0] - 1) // int(cfg.scale_factor_temporal) + 1
        spatial = int(cfg.scale_factor_spatial)
        zeros = torch.zeros(1, int(cfg.z_dim), frames, size[1] // spatial, size[2] // spatial, device=device)
        self.decode_and_learn(size, decode, zeros)

    def budget(self, size: tuple[int, int, int], steps: int) -> "DecodeBudget":
        return DecodeBudget(self.cost.get(size) if self.fraction > 0 else None, self.fraction, steps)


class DecodeBudget:
    """One render's account: step time spent so far against decode time spent so far."""

    def __init__(self, cost: float | None, fraction: float, steps: int):
        self.cost, self.fraction, self.steps = cost, fraction, steps
        self.step_seconds = self.decode_seconds = 0.0
        self.decoded_any = False
        self._mark = time.perf_counter()

    def step_done(self) -> None:
        now = time.perf_counter()
        self.step_seconds += now - self._mark
        self._mark = now

    def allows(self, step_index: int) -> bool:
        """Decode after this step? Never after the last one: the take's own decode follows at once."""
        if self.cost is None or step_index >= self.steps - 1:
            return False
        return self.decode_seconds + self.cost <= self.fraction * self.step_seconds

    def decode(self, decode: Callable, latents):
        """`decode(latents)`, its time booked as decode time (not step time)."""
        started = time.perf_counter()
        frames = decode(latents)
        self.decoded(time.perf_counter() - started)
        return frames

    def decoded(self, seconds: float) -> None:
        self.decode_seconds += seconds
        self.decoded_any = True
        self._mark = time.perf_counter()  # the decode is not step time
