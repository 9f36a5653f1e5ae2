"""Research probe (issue 18): does UPFB move the (reasoning, detail) frontier if the light generator keeps more of
the low band than the published fusion gives it?

    python -m bench.upfb_low_band --family DIR --hold 0.3 --sigma 1.0 --point 0.5:10 --point 0.6:10 --out x.json

The published fusion at k = 3, σ ≤ 0.7 is nearly a time blend, (1 − w)·v_H + w·v_L (docs/design.md §2). This
variant splits both velocities at a wider σ (kernel 5) and gives the heavy generator only ``hold`` × (1 − w) of the
low band, the published share of the high band:

    LF_x = G_σ * v_x,  w_lf = 1 − hold·(1 − w)
    v    = w_lf·LF_L + (1 − w_lf)·LF_H + (1 − w)·HF_H + w·γ_hf·HF_L,  then the same energy rebalance.

hold = 1 and σ = the published σ(w) give the published fusion. The variant replaces the sampler's fusion in this
process only; the engine does not offer it (docs/handoff.md, sixth round, says why). Each point renders the same
120 reasoning and 24 explicit clips as bench.handoff_curve (12 per category, 2 seeds).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def held_low_band_fusion(hold: float, sigma: float, kernel: int = 5):
    """The variant fusion, with the sampler's call signature (a ``kernel``-wide Gaussian: 5 reaches 2σ at σ = 1)."""
    from engine.upfb import fuse_velocities, gaussian_blur_hw, rms

    def fuse(v_light, v_heavy, w_t, *, gamma_hf, sigma_min, sigma_max):
        if w_t >= 1.0:
            return fuse_velocities(v_light, v_heavy, w_t, gamma_hf=gamma_hf, sigma_min=sigma_min, sigma_max=sigma_max)
        w_lf = 1.0 - (1.0 - w_t) * hold
        lf_l, lf_h = gaussian_blur_hw(v_light, sigma, kernel), gaussian_blur_hw(v_heavy, sigma, kernel)
        fused = w_lf * lf_l + (1 - w_lf) * lf_h + (1 - w_t) * (v_heavy - lf_h) + w_t * gamma_hf * (v_light - lf_l)
        return fused * (rms(v_light) / rms(fused).clamp_min(1e-12)).to(fused.dtype)

    return fuse


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", default=None, help="family folder (default: the embedded lumos-mini)")
    p.add_argument("--hold", type=float, required=True, help="the heavy's share of the low band × (1 − w)")
    p.add_argument("--sigma", type=float, default=1.0, help="the split's Gaussian σ in latent cells")
    p.add_argument("--point", action="append", required=True, metavar="S:LEAD", help="hand-off s and light lead")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args(argv)

    import engine.sampler as sampler
    from bench.handoff_curve import _worker
    from bench.vrbench import Mode
    from engine.models import DEFAULT_FAMILY

    sampler.fuse_velocities = held_low_band_fusion(a.hold, a.sigma)
    modes = []
    for point in a.point:
        s, lead = point.split(":")
        modes.append(Mode(f"upfb s={float(s):.1f} lead{int(lead)} hold{a.hold:g}", "upfb", handoff=float(s),
                          light_lead=int(lead)))
    results = _worker(str(a.family or DEFAULT_FAMILY), 12, 2, modes)
    rows = [{"mode": m.name, "hold": a.hold, "sigma": a.sigma, "reasoning": float(np.mean(r)),
             "detail": float(np.mean(d)), "reasoning_clips": r, "detail_clips": d} for m, (r, d, _) in zip(modes, results)]
    if a.out:
        a.out.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
