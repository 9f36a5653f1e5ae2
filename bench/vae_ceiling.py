"""The detail room of shared VAEs: the correctness detail score of the ground truth's round trip (the most detail any
generator can show through that VAE), on the mini VR-Bench's explicit instructions, beside the first VAE given.

    python -m bench.vae_ceiling [VAE ...] [--per-category N]

A VAE is a saved folder (default: the shipped lumos-mini VAE) or a stage_vae checkpoint (`ckpt.pt`; its layout from
the run's run.json). Printed per VAE: the score, its shape and background halves, shapes that move vs shapes that
stay (the VAE's 4× temporal compression smears moving texture), PSNR, and each against the first VAE (ratio).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def load_vae(path: Path):
    """A saved VAE folder, or the weights in a stage_vae checkpoint (layout from its run's run.json)."""
    from diffusers import AutoencoderKLWan

    path = Path(path)
    if path.is_dir():
        return AutoencoderKLWan.from_pretrained(path).eval(), str(path)
    from training.common import load_ckpt
    from training.stage_vae import make_vae

    budget = json.loads((path.parent.parent / "run.json").read_text())["budget"]
    ck = load_ckpt(path)
    vae = make_vae(0, budget.get("vae_z_dim", 16), budget.get("vae_spatial", 8), budget.get("vae_temporal", 4))
    vae.load_state_dict(ck["vae"])
    return vae.eval(), f"{path} (step {ck['step']})"


def measure(vae, items, truth: np.ndarray) -> dict:
    from miniworld import psnr
    from miniworld.detail import detail_correctness
    from training.stage_vae import round_trip

    outs = round_trip(vae, truth)
    rows = [detail_correctness(o, ex.scene, t) for o, (ex, _), t in zip(outs, items, truth)]
    moving = np.array([any(s.motion != "still" for s in ex.scene.shapes) for ex, _ in items])
    shapes = np.array([r["shapes"] for r in rows])
    return {"score": float(np.mean([r["score"] for r in rows])), "shapes": float(shapes.mean()),
            "background": float(np.mean([r["background"] for r in rows])),
            "shapes_moving": float(shapes[moving].mean()) if moving.any() else None,
            "shapes_still": float(shapes[~moving].mean()) if (~moving).any() else None,
            "psnr": float(np.mean([psnr(o, t) for o, t in zip(outs, truth)])),
            "spatial": int(vae.config.scale_factor_spatial), "temporal": int(vae.config.scale_factor_temporal)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("vaes", nargs="*", type=Path, help="VAE folders or stage_vae ckpt.pt files (first: the baseline)")
    p.add_argument("--per-category", type=int, default=None, help="explicit instructions to use (default all 36)")
    p.add_argument("--out", type=Path, default=None, help="write the numbers as JSON")
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from bench.vrbench import bench_items
    from engine.models import DEFAULT_FAMILY
    from miniworld.render import render

    items = [it for it in bench_items(None) if it[0].category == "explicit"][: a.per_category or None]
    truth = np.stack([render(ex.scene) for ex, _ in items])
    results = []
    for path in a.vaes or [Path(DEFAULT_FAMILY) / "light" / "vae"]:
        started = time.time()
        vae, name = load_vae(path)
        results.append({"vae": name, "path": str(path), **measure(vae, items, truth), "s": time.time() - started})
    base = results[0]
    print(f"{len(items)} explicit instructions; ratios against {base['vae']}")
    print("| VAE | spatial / temporal | detail | × base | shapes (moving / still) | background | PSNR dB |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        split = (f"{r['shapes_moving']:.3f} / {r['shapes_still']:.3f}" if r["shapes_moving"] is not None
                 and r["shapes_still"] is not None else "—")
        print(f"| {r['vae']} | {r['spatial']}× / {r['temporal']}× | {r['score']:.3f} | {r['score'] / base['score']:.3f} | "
              f"{r['shapes']:.3f} ({split}) | {r['background']:.3f} | {r['psnr']:.2f} |")
    if a.out:
        from engine.atomic_files import atomic_write_json

        atomic_write_json(a.out, {"items": len(items), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
