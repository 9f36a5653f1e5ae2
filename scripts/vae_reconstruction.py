"""Held-out clips (frames 0, 8, 16, left) beside their VAE reconstructions (right): docs/vae_reconstruction.png.

    PYTHONPATH=. python scripts/vae_reconstruction.py [VAE_FOLDER]   # default: the shipped lumos-mini VAE
"""

import sys

import cv2
import numpy as np
import torch


def main(folder: str = "resources/models/lumos-mini/light/vae", out: str = "docs/vae_reconstruction.png") -> None:
    from diffusers import AutoencoderKLWan

    from training.data import eval_clips
    from training.stage_vae import round_trip

    torch.set_num_threads(1)
    vae = AutoencoderKLWan.from_pretrained(folder).eval()
    clips = eval_clips(16)[:3]
    rec = round_trip(vae, clips)
    rows = [np.concatenate([c[i] for i in (0, 8, 16)] + [r[i] for i in (0, 8, 16)], 1) for c, r in zip(clips, rec)]
    img = cv2.resize(np.concatenate(rows, 0), None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)
    cv2.imwrite(out, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    main(*sys.argv[1:2])
