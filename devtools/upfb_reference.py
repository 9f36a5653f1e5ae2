"""UPFB written out literally as published (docs/design.md §2, steps 2-5), independent of engine/upfb.py: two blurs
with a 2-D kernel, explicit LF/HF tensors, the fusion, the global RMS rebalance.

The tests check the engine's one-blur fusion against it; the engine bench times it as the baseline.
"""

from __future__ import annotations

import math

import torch

from engine.api import UPFBParams


def literal_gate(t: float, gamma_w: float) -> float:
    """Step 2: w_t = 1/2 (1 + cos(pi (1 - tau)^gamma_w)), tau = clamp(t / 999, 0, 1)."""
    tau = min(max(t / 999, 0.0), 1.0)
    return 0.5 * (1 + math.cos(math.pi * (1 - tau) ** gamma_w))


def literal_fusion(v_l: torch.Tensor, v_h: torch.Tensor, w: float, params: UPFBParams = UPFBParams(), *,
                   dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Steps 3-5 for velocities [..., H, W] at gate value w, computed in `dtype` (float64 for checks)."""
    h, wd = v_l.shape[-2:]
    k = max(3, 2 * math.floor(math.sqrt(h * wd) / 1024) + 1)
    sigma = params.sigma_min + (params.sigma_max - params.sigma_min) * w
    r = torch.arange(k, dtype=dtype) - k // 2
    g1 = torch.exp(-(r**2) / (2 * sigma**2))
    kernel = torch.outer(g1, g1)
    kernel = kernel / kernel.sum()

    def blur(v):
        flat = v.to(dtype).reshape(-1, 1, h, wd)
        flat = torch.nn.functional.pad(flat, (k // 2,) * 4, mode="reflect")
        return torch.nn.functional.conv2d(flat, kernel.view(1, 1, k, k)).reshape(v.shape)

    v_l, v_h = v_l.to(dtype), v_h.to(dtype)
    lf_l, lf_h = blur(v_l), blur(v_h)
    hf_l, hf_h = v_l - lf_l, v_h - lf_h
    lf = w * lf_l + (1 - w) * lf_h
    hf = (1 - w) * hf_h + w * params.gamma_hf * hf_l
    v = lf + hf
    return v * torch.sqrt((v_l**2).mean()) / torch.sqrt((v**2).mean())


def literal_upfb(v_l: torch.Tensor, v_h: torch.Tensor, t: float, gamma_w: float,
                 params: UPFBParams = UPFBParams()) -> tuple[torch.Tensor, float]:
    """Steps 2-5: the fused velocity (float64) and the gate value w_t."""
    w = literal_gate(t, gamma_w)
    return literal_fusion(v_l, v_h, w, params), w
