"""Stage 5: tune the shared VAE's decoder with its encoder frozen, so the latent space stays exactly the same.

The VAE stage weighs every frame alike, so frame 0 (which the causal VAE encodes alone) is 1/17 of its loss, and
there the decoder draws shapes smaller and off in hue (a red triangle comes out pink). The instruction scorer
compares a shape's first frames with its last, so the VAE round trip of the ground truth itself failed 23 % of the
"stays still" checks. This stage trains the decoder alone on the cached training latents, frame 0 weighted
FRAME0_WEIGHT× and shape pixels as in the VAE stage. The encoder, and so every latent the generators train on, is
untouched: the stage can run (or be redone) after the generators without retraining them.

Run alone: ``python -m training.stage_decoder [--tiny|--quick]`` (needs the vae and latents stages).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from tqdm import tqdm

from miniworld import instruction_score, psnr, render

from .common import Timer, add_common_args, load_ckpt, log, lr_at, run_from_args, save_ckpt
from .data import eval_scenes, scenes
from .stage_vae import reconstruction_psnr, round_trip, shape_weight, to_tensor

FRAME0_WEIGHT = 4.0
PEAK_LR = 3e-4
BATCH = 4
TUNED = "vae_decoder_tuned"  # folder under run.export; export ships it in place of the VAE stage's


def decoder_params(vae) -> list[torch.nn.Parameter]:
    """Freeze the encoder side; return what decodes a latent (post_quant_conv + decoder)."""
    for p in list(vae.encoder.parameters()) + list(vae.quant_conv.parameters()):
        p.requires_grad_(False)
    return [p for p in vae.parameters() if p.requires_grad]


def frame_weight(frames: int) -> torch.Tensor:
    w = torch.ones(1, 1, frames, 1, 1)
    w[:, :, 0] = FRAME0_WEIGHT
    return w


def loss_fn(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The VAE stage's L1 + MSE on [-1, 1] pixels with shape pixels and frame 0 weighted up."""
    w = shape_weight(x) * frame_weight(x.shape[2])
    d = y - x
    return ((d.abs() + d**2) * w).mean() / w.mean()


def held_out(vae, held_scenes: list) -> dict:
    """PSNR (all, shape pixels, frame 0) and the instruction score of the round trip of held-out clips: a perfect
    VAE keeps every clip at 1.0, so this is the ceiling of any generator decoded through it."""
    clips = np.stack([render(s) for s in held_scenes])
    rec = round_trip(vae, clips)
    return {"psnr": reconstruction_psnr(rec, clips), "psnr_shapes": reconstruction_psnr(rec, clips, shapes_only=True),
            "psnr_frame0": float(np.mean([psnr(r[:1], c[:1]) for r, c in zip(rec, clips)])),
            "instruction": float(np.mean([instruction_score(r, s) for r, s in zip(rec, held_scenes)]))}


def train(run) -> dict:
    if run.done("decoder"):
        return run.done("decoder")
    from diffusers import AutoencoderKLWan

    timer = Timer()
    _, clips = scenes(run)
    lat = np.load(run.stage_dir("latents") / "latents.npy", mmap_mode="r")
    held = eval_scenes(3 * run.budget.eval_clips)  # the instruction score needs more clips than PSNR
    vae = AutoencoderKLWan.from_pretrained(run.export / "vae")
    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
    sd = run.stage_dir("decoder")
    ck = load_ckpt(sd / "ckpt.pt")
    before = ck["before"] if ck else held_out(vae, held)  # measured once, on the VAE stage's decoder
    params = decoder_params(vae)
    opt = torch.optim.AdamW(params, lr=PEAK_LR, betas=(0.9, 0.99), weight_decay=0.0)
    step = 0
    timer.resume(ck)
    if ck:
        vae.load_state_dict(ck["vae"]), opt.load_state_dict(ck["opt"])
        step = ck["step"]
    total = run.budget.decoder_steps
    rng = np.random.default_rng(run.seed + 53 + step)
    bar = tqdm(total=total, initial=step, desc="vae decoder", mininterval=5)
    vae.train()
    loss_avg = None
    while step < total:
        idx = np.sort(rng.choice(len(lat), size=min(BATCH, len(lat)), replace=False))
        z = torch.from_numpy(np.array(lat[idx])) * std + mean
        x = to_tensor(clips[idx])
        for gr in opt.param_groups:
            gr["lr"] = lr_at(step, total, PEAK_LR, warmup=20)
        loss = loss_fn(vae.decode(z).sample, x)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        loss_avg = loss.item() if loss_avg is None else 0.98 * loss_avg + 0.02 * loss.item()
        bar.update(1)
        if step % run.budget.log_every == 0:
            log.info("decoder step %d loss %.4f (%.0f s)", step, loss_avg, timer.s)
        if step % run.budget.ckpt_every == 0 or step == total:
            save_ckpt(sd / "ckpt.pt", wall_s=timer.s, vae=vae.state_dict(), opt=opt.state_dict(), step=step,
                      before=before)
    bar.close()
    vae.eval()
    after = held_out(vae, held)
    log.info("decoder: held-out %s before, %s after", before, after)
    vae.save_pretrained(run.export / TUNED, safe_serialization=True)
    info = {"wall_s": timer.s, "steps": total, "loss": loss_avg, "frame0_weight": FRAME0_WEIGHT,
            "heldout_before": before, "heldout_after": after}
    run.mark_done("decoder", **info)
    return info


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    add_common_args(p)
    train(run_from_args(p.parse_args(argv)))


if __name__ == "__main__":
    main()
