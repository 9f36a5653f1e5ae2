"""Cheap step previews: the x0 estimate projected to RGB by a linear latent -> RGB map, at latent resolution."""

from __future__ import annotations

import numpy as np
import torch

# Wan2.1 VAE, normalised latents -> RGB in [-1, 1] (published with ComfyUI's latent formats, class Wan21).
WAN21_LATENTS_MEAN_HEAD = (-0.7571, -0.7089, -0.9113, 0.1075)
WAN21_RGB_FACTORS = (
    (-0.1299, -0.1692, 0.2932), (0.0671, 0.0406, 0.0442), (0.3568, 0.2548, 0.1747), (0.0372, 0.2344, 0.1420),
    (0.0313, 0.0189, -0.0328), (0.0296, -0.0956, -0.0665), (-0.3477, -0.4059, -0.2925), (0.0166, 0.1902, 0.1975),
    (-0.0412, 0.0267, -0.1364), (-0.1293, 0.0740, 0.1636), (0.0680, 0.3019, 0.1128), (0.0032, 0.0581, 0.0639),
    (-0.1251, 0.0927, 0.1699), (0.0060, -0.0633, 0.0005), (0.3477, 0.2275, 0.2950), (0.1984, 0.0913, 0.1861),
)
WAN21_RGB_BIAS = (-0.1835, -0.0868, -0.3360)


class LatentPreviewer:
    """Maps normalised latents [1, C, F, h, w] to uint8 RGB frames [F, h, w, 3] with one small matmul."""

    def __init__(self, factors: torch.Tensor, bias: torch.Tensor, source: str):
        self.factors = factors.float()  # [C, 3]
        self.bias = bias.float()  # [3]
        self.source = source  # "wan2.1 published factors" or "least-squares fit"

    def __call__(self, latents: torch.Tensor) -> np.ndarray:
        x = latents[0].float()  # [C, F, h, w]
        rgb = torch.einsum("cfhw,ck->fhwk", x, self.factors.to(x.device)) + self.bias.to(x.device)
        rgb = ((rgb + 1.0) * 127.5).clamp_(0, 255).to(torch.uint8)
        return np.ascontiguousarray(rgb.cpu().numpy())

    @classmethod
    def for_vae(cls, vae, seed: int = 0) -> "LatentPreviewer":
        """Published factors for the Wan2.1 VAE; otherwise a least-squares fit through this VAE's own encoder."""
        cfg = vae.config
        mean = list(cfg.latents_mean or [])
        if cfg.z_dim == 16 and len(mean) == 16 and np.allclose(mean[:4], WAN21_LATENTS_MEAN_HEAD, atol=1e-3):
            return cls(torch.tensor(WAN21_RGB_FACTORS), torch.tensor(WAN21_RGB_BIAS), "wan2.1 published factors")
        return cls.fit(vae, seed=seed)

    @classmethod
    @torch.no_grad()
    def fit(cls, vae, size: int = 64, count: int = 12, seed: int = 0) -> "LatentPreviewer":
        """Encode still clips of smooth random colour fields; solve [latent, 1] @ M = area-averaged RGB.

        Clips of 1 + 2 * temporal-factor frames, so the fit sees the first latent frame (encoded alone) and the
        later ones (encoded in groups), which a VAE may map differently.
        """
        gen = torch.Generator().manual_seed(seed)
        scale = int(vae.config.scale_factor_spatial)
        frames = 1 + 2 * int(vae.config.scale_factor_temporal)
        coarse = torch.rand(count, 3, 4, 4, generator=gen) * 2 - 1
        images = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic",
                                                 align_corners=False).clamp(-1, 1).unsqueeze(2)
        device = next(vae.parameters()).device
        clips = images.expand(-1, -1, frames, -1, -1).contiguous()
        z = vae.encode(clips.to(device, vae.dtype)).latent_dist.mode().float().cpu()
        mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
        std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
        z = (z - mean) / std
        target = torch.nn.functional.avg_pool2d(images[:, :, 0], scale).unsqueeze(2).expand(-1, -1, z.shape[2], -1, -1)
        xs = z.permute(0, 2, 3, 4, 1).reshape(-1, z.shape[1])
        ys = target.permute(0, 2, 3, 4, 1).reshape(-1, 3)
        design = torch.cat([xs, torch.ones(len(xs), 1)], dim=1).double()
        solution = torch.linalg.lstsq(design, ys.double()).solution.float()
        return cls(solution[:-1], solution[-1], "least-squares fit")
