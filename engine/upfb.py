"""Unified Progressive Frequency Bridging (Lumos-Nexus, docs/design.md §2): pure tensor code, no models.

Per step, both generators' CFG velocities v_L, v_H at the same (x_t, t) are fused:

    tau   = clamp(t / 999, 0, 1)
    w_t   = 1/2 (1 + cos(pi (1 - tau)^gamma_w))                       # temporal semantic gate
    sigma = sigma_min + (sigma_max - sigma_min) w_t                   # time-varying split width
    LF_x  = G_sigma * v_x,  HF_x = v_x - LF_x                         # 2-D Gaussian over (H, W)
    LF    = w_t LF_L + (1 - w_t) LF_H
    HF    = (1 - w_t) HF_H + w_t gamma_hf HF_L
    v     = (LF + HF) * rms(v_L) / rms(LF + HF)                       # energy rebalance
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .gate import gate  # noqa: F401 - step 2 of the method, re-exported beside steps 3-5
from .request import UPFBParams

_OFFICIAL = UPFBParams()


def blur_kernel_size(height: int, width: int) -> int:
    """k = max(3, 2 floor(sqrt(H W) / 1024) + 1): 3 at every practical latent size."""
    return max(3, 2 * int(math.sqrt(height * width) // 1024) + 1)


def blur_sigma(w_t: float, sigma_min: float, sigma_max: float) -> float:
    return sigma_min + (sigma_max - sigma_min) * w_t


def gaussian_blur_hw(x: torch.Tensor, sigma: float, kernel_size: int | None = None) -> torch.Tensor:
    """Separable Gaussian blur over the last two dims (H, W) of a [..., H, W] tensor, reflect-padded."""
    h, w = x.shape[-2:]
    k = kernel_size or blur_kernel_size(h, w)
    half = k // 2
    pos = torch.arange(k, dtype=torch.float32, device=x.device) - half
    g = torch.exp(-0.5 * (pos / max(sigma, 1e-6)) ** 2)
    g = (g / g.sum()).to(x.dtype)
    flat = x.reshape(-1, 1, h, w)
    # reflect padding needs a side longer than the pad; tiny latents fall back to replicate
    mode = "reflect" if min(h, w) > half else "replicate"
    flat = F.pad(flat, (half, half, half, half), mode=mode)
    flat = F.conv2d(flat, g.view(1, 1, 1, k))
    flat = F.conv2d(flat, g.view(1, 1, k, 1))
    return flat.reshape(x.shape)


def rms(x: torch.Tensor) -> torch.Tensor:
    """Root mean square per sample, shaped [B, 1, ...] to broadcast: a batch rebalances each clip on its own."""
    return x.float().pow(2).mean(dim=tuple(range(1, x.ndim)), keepdim=True).sqrt()


def fuse_velocities(v_light: torch.Tensor, v_heavy: torch.Tensor, w_t: float, *,
                    gamma_hf: float = _OFFICIAL.gamma_hf, sigma_min: float = _OFFICIAL.sigma_min,
                    sigma_max: float = _OFFICIAL.sigma_max) -> torch.Tensor:
    """UPFB steps 3-5 for one step's velocities [B, C, F, H, W] and gate value w_t (module docstring).

    The two splits need only one blur: since LF_H + HF_H = v_H, the fused velocity is
        LF + HF = (1 - w_t) v_H + w_t (gamma_hf v_L + (1 - gamma_hf) G_sigma * v_L),
    which is exactly the published fusion with one convolution instead of two and no HF tensors.
    """
    if w_t >= 1.0:
        fused = gamma_hf * v_light + (1.0 - gamma_hf) * gaussian_blur_hw(v_light, blur_sigma(1.0, sigma_min, sigma_max))
    elif w_t <= 0.0:
        fused = v_heavy
    else:
        lf_light = gaussian_blur_hw(v_light, blur_sigma(w_t, sigma_min, sigma_max))
        fused = torch.lerp(v_heavy, gamma_hf * v_light + (1.0 - gamma_hf) * lf_light, w_t)
    scale = rms(v_light) / rms(fused).clamp_min(1e-12)
    return fused * scale.to(fused.dtype)
