"""Stage 3: the shared AutoencoderKLWan (8× spatial — 4× on trial, `VAE_LAYOUTS` —, 4× temporal, 16 channels).

Trained on whole 17-frame clips (all five latent frames: with 9-frame clips the causal caches drift on the later
ones), in three phases (`phase_at`; the budget can switch texture and settle off, see training/README.md):
- *base*: random 32×32 crops (4× cheaper per clip; the network is convolutional), then whole 64×64×17 clips;
- *texture*: 32×32 crops centred on a shape, shape pixels weighted 8×. After the base phase the VAE draws shapes as
  flat blobs (stripes, checks and dots gone; 19 dB on shape pixels) while it keeps background textures: shapes
  cover ~10 % of a frame, so few steps ever see their textures;
- *settle*: whole clips again at the base weights, which restores the backgrounds the texture phase let slip.
Loss: L1 + MSE on [-1, 1] pixels, shape pixels weighted up, plus a tiny penalty on latent magnitude. The encoder
is used deterministically (posterior mode). Afterwards latents_mean / latents_std in the config are set to the
per-channel statistics of the encoder's outputs on training clips, so WanPipeline un-normalises generated latents
exactly as we normalised them. Held-out PSNR is checked against an 8× area-downsample + bicubic-upsample baseline
during training.

Run alone: ``python -m training.stage_vae [--tiny|--quick]``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from miniworld import psnr

from .common import Timer, add_common_args, load_ckpt, log, lr_at, run_from_args, save_ckpt
from .data import eval_clips, scenes
from .latent_layout import CHANNELS, SPATIAL, TEMPORAL

Z_DIM = CHANNELS
# The layouts, by spatial factor; both 4× temporal, 16 channels (Budget.vae_spatial picks one).
# 8× (the shipped family): 2×2 pixel patchify (as Wan2.2's VAE) then two 2× downsamples; measured here at equal wall
# time against the Wan2.1 layout (base_dim 16, dim_mult [1, 2, 2, 2], no patchify): 20 % faster per step and lower
# loss per step, since no convolution runs at full 64×64 resolution.
# 4× (on trial, issue 18): at 8× a shape of 12–20 px spans one or two latent cells, and the round trip keeps too
# little of its texture for any generator to draw more (correctness detail 0.734; 48 channels at 8× gained nothing).
# At 4× the VAE keeps 4× the values per frame; the generators patchify 4×4 latent cells, so their token count, hence
# their cost, is what it was. No input patchify: two downsample stages give 4× (each Wan downsample stage halves
# space); the first stage runs at full resolution, so it is narrower.
VAE_LAYOUTS = {8: dict(base_dim=32, dim_mult=[1, 2, 2], patch_size=2, in_channels=12, out_channels=12),
               4: dict(base_dim=16, dim_mult=[1, 2, 4], patch_size=None, in_channels=3, out_channels=3)}
VAE_CONFIG = dict(z_dim=Z_DIM, num_res_blocks=1, attn_scales=[], dropout=0.0)
# Temporal factor → which downsample stages also halve time (Wan's "downsample3d"). 2× (on trial, issue 18): moving
# shapes lose the most texture in the round trip, and 4× puts four frames of a moving texture in one latent frame;
# 2× gives 9 latent frames of a 17-frame clip (the generators' tokens grow 1.8×).
TEMPORAL_DOWNSAMPLE = {4: [True, True], 2: [False, True]}


def make_vae(seed: int = 0, z_dim: int = Z_DIM, spatial: int = SPATIAL, temporal: int = TEMPORAL):
    from diffusers import AutoencoderKLWan

    if spatial not in VAE_LAYOUTS:
        raise ValueError(f"VAE spatial factor {spatial}: one of {sorted(VAE_LAYOUTS)}")
    if temporal not in TEMPORAL_DOWNSAMPLE:
        raise ValueError(f"VAE temporal factor {temporal}: one of {sorted(TEMPORAL_DOWNSAMPLE)}")
    torch.manual_seed(seed)
    return AutoencoderKLWan(latents_mean=[0.0] * z_dim, latents_std=[1.0] * z_dim,
                            **dict(VAE_CONFIG, **VAE_LAYOUTS[spatial], z_dim=z_dim, scale_factor_spatial=spatial,
                                   temperal_downsample=TEMPORAL_DOWNSAMPLE[temporal], scale_factor_temporal=temporal))


def to_tensor(clips: np.ndarray) -> torch.Tensor:
    """uint8 [B, F, H, W, 3] → float [B, 3, F, H, W] in [-1, 1]."""
    return torch.from_numpy(np.array(clips)).permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> np.ndarray:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 4, 1).numpy()


SHAPE_WEIGHT = 3.0  # extra loss weight on saturated (shape) pixels: shapes cover ~10 % of a frame but carry the
                    # instruction; with a plain loss the first few hundred steps learn the background only.
TEXTURE_SHAPE_WEIGHT = 8.0  # in the texture phase, whose crops are mostly shape


@dataclass(frozen=True)
class Phase:
    """What one VAE step trains on: `crop` (random 32×32), `shape_crop` (32×32 around a shape) or `full` clips."""

    name: str
    batch: str
    lr: float
    shape_weight: float


PHASE_BUDGET = ("vae_steps", "vae_full_steps", "vae_texture_steps", "vae_settle_steps")  # Budget fields, in order


def phase_at(step: int, budget) -> Phase:
    """The phase of `step`: base (one warm-up + cosine schedule over crops then whole clips), texture, settle (each
    with its own short schedule, as fine-tunes of what came before)."""
    base = budget.vae_steps + budget.vae_full_steps
    if step < base:
        return Phase("base", "crop" if step < budget.vae_steps else "full", lr_at(step, base, 1e-3, warmup=100),
                     SHAPE_WEIGHT)
    step -= base
    if step < budget.vae_texture_steps:
        return Phase("texture", "shape_crop", lr_at(step, budget.vae_texture_steps, 3e-4, warmup=50),
                     TEXTURE_SHAPE_WEIGHT)
    step -= budget.vae_texture_steps
    return Phase("settle", "full", lr_at(step, budget.vae_settle_steps, 2e-4, warmup=20), SHAPE_WEIGHT)


def saturated(x: torch.Tensor) -> torch.Tensor:
    """Shape pixels [B, 1, F, H, W] of [-1, 1] clips: HSV saturation > 0.4 (shapes; backgrounds are below 0.3)."""
    rgb = (x + 1) / 2
    mx, mn = rgb.max(1, keepdim=True).values, rgb.min(1, keepdim=True).values
    return ((mx - mn) / mx.clamp_min(1e-3)) > 0.4


def shape_weight(x: torch.Tensor, weight: float = SHAPE_WEIGHT) -> torch.Tensor:
    """Per-pixel loss weight [B, 1, F, H, W]: 1 + `weight` on shape pixels."""
    return 1.0 + weight * saturated(x).float()


def blur_baseline(clips: np.ndarray) -> float:
    out = []
    for clip in clips:
        up = np.stack([cv2.resize(cv2.resize(f, (8, 8), interpolation=cv2.INTER_AREA), (64, 64),
                                  interpolation=cv2.INTER_CUBIC) for f in clip])
        out.append(psnr(up, clip))
    return float(np.mean(out))


@torch.no_grad()
def round_trip(vae, clips: np.ndarray, batch: int = 4) -> np.ndarray:
    """uint8 clips [N, F, H, W, 3] encoded (posterior mode) and decoded by `vae`, `batch` clips at a time."""
    was_training = vae.training
    vae.eval()
    out = [to_uint8(vae.decode(vae.encode(to_tensor(clips[i: i + batch])).latent_dist.mode()).sample)
           for i in range(0, len(clips), batch)]
    vae.train(was_training)
    return np.concatenate(out)


def reconstruction_psnr(rec: np.ndarray, clips: np.ndarray, shapes_only: bool = False) -> float:
    """Mean PSNR of reconstructions (shapes_only: over the saturated, shape pixels of the ground truth only)."""
    if not shapes_only:
        return float(np.mean([psnr(r, c) for r, c in zip(rec, clips)]))
    masks = saturated(to_tensor(clips))[:, 0].numpy()
    err = ((rec.astype(np.float64) - clips.astype(np.float64)) ** 2).mean(-1)
    return float(np.mean([10 * np.log10(255.0**2 / max(e[k].mean(), 1e-6)) for e, k in zip(err, masks) if k.any()]))


def evaluate(vae, clips: np.ndarray, shapes_only: bool = False) -> float:
    return reconstruction_psnr(round_trip(vae, clips), clips, shapes_only)


def _crop_batch(clips, rng, n: int, frames: int, size: int) -> np.ndarray:
    idx = rng.integers(len(clips), size=n)
    out = np.empty((n, frames, size, size, 3), np.uint8)
    for k, i in enumerate(idx):
        t0 = rng.integers(0, clips.shape[1] - frames + 1)
        y0, x0 = rng.integers(0, 64 - size + 1, size=2)
        out[k] = clips[i, t0: t0 + frames, y0: y0 + size, x0: x0 + size]
    return out


def _shape_crop_batch(clips, rng, n: int, size: int = 32, jitter: int = 6) -> np.ndarray:
    """Whole-clip 17-frame crops around a random shape pixel (any frame), ± `jitter` px; random where none."""
    out = np.empty((n, clips.shape[1], size, size, 3), np.uint8)
    for k, i in enumerate(rng.integers(len(clips), size=n)):
        clip = clips[i]
        ys, xs = np.nonzero(saturated(to_tensor(clip[None]))[0, 0].any(0).numpy())
        if len(ys):
            j = rng.integers(len(ys))
            y0, x0 = (int(np.clip(c - size // 2 + rng.integers(-jitter, jitter + 1), 0, clip.shape[1] - size))
                      for c in (ys[j], xs[j]))
        else:
            y0, x0 = rng.integers(0, clip.shape[1] - size + 1, size=2)
        out[k] = clip[:, y0: y0 + size, x0: x0 + size]
    return out


def batch_for(phase: Phase, clips, rng) -> torch.Tensor:
    if phase.batch == "crop":
        return to_tensor(_crop_batch(clips, rng, 4, 17, 32))
    if phase.batch == "shape_crop":
        return to_tensor(_shape_crop_batch(clips, rng, 4))
    return to_tensor(_crop_batch(clips, rng, 2, 17, 64))


def train(run, init: Path | None = None) -> dict:
    """The VAE stage; ``init``: a saved VAE folder to continue from instead of fresh weights."""
    if run.done("vae"):
        return run.done("vae")
    timer = Timer()
    _, clips = scenes(run)
    held = eval_clips(run.budget.eval_clips)
    base = blur_baseline(held)
    log.info("vae: held-out blur baseline %.2f dB", base)
    vae = make_vae(run.seed, run.budget.vae_z_dim, run.budget.vae_spatial, run.budget.vae_temporal)
    if init is not None and not load_ckpt(run.stage_dir("vae") / "ckpt.pt"):
        # a trained VAE of the same layout continues with this run's schedule (fresh optimiser moments; each
        # phase's warm-up covers them)
        from diffusers import AutoencoderKLWan

        vae.load_state_dict(AutoencoderKLWan.from_pretrained(init).state_dict())
        log.info("vae: continuing %s", init)
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.0)
    sd = run.stage_dir("vae")
    step = 0
    ck = load_ckpt(sd / "ckpt.pt")
    timer.resume(ck)
    history = []
    if ck:
        vae.load_state_dict(ck["vae"]), opt.load_state_dict(ck["opt"])
        step, history = ck["step"], ck["history"]
    b = run.budget
    if ck and "phase_steps" in ck:  # a resume keeps the phases it started with, whatever this invocation asks
        for k, v in ck["phase_steps"].items():
            setattr(b, k, v)
    phase_steps = {k: getattr(b, k) for k in PHASE_BUDGET}
    total = sum(phase_steps.values())
    rng = np.random.default_rng(run.seed + 31 + step)
    bar = tqdm(total=total, initial=step, desc="vae", mininterval=5)
    vae.train()
    loss_avg = None
    eval_every = max(run.budget.ckpt_every, total // 10, 10)
    while step < total:
        # Whole 17-frame clips in every phase: trained on 9 frames only, the causal caches drift on latent frames 3
        # and 4 (measured: 17.7 dB on frames 0-8 but 11.4 dB on frame 16 after 300 steps).
        phase = phase_at(step, b)
        x = batch_for(phase, clips, rng)
        for gr in opt.param_groups:
            gr["lr"] = phase.lr
        mu = vae.encode(x).latent_dist.mode()
        y = vae.decode(mu).sample
        w = shape_weight(x, phase.shape_weight)
        d = y - x
        loss = ((d.abs() + d**2) * w).mean() / w.mean() + 1e-5 * (mu**2).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        loss_avg = loss.item() if loss_avg is None else 0.98 * loss_avg + 0.02 * loss.item()
        bar.update(1)
        if step % run.budget.log_every == 0:
            log.info("vae step %d loss %.4f (%.0f s)", step, loss_avg, timer.s)
        phase_ends = step == total or phase_at(step, b).name != phase.name  # so the record shows what each phase did
        if step % eval_every == 0 or phase_ends:
            p, ps = evaluate(vae, held), evaluate(vae, held, shapes_only=True)
            history.append((step, p, ps, timer.s))
            log.info("vae step %d (%s) held-out PSNR %.2f dB, on shapes %.2f dB (blur baseline %.2f)", step,
                     phase.name, p, ps, base)
        if step % run.budget.ckpt_every == 0 or phase_ends:
            save_ckpt(sd / "ckpt.pt", wall_s=timer.s, vae=vae.state_dict(), opt=opt.state_dict(), step=step,
                      history=history, phase_steps=phase_steps)
    bar.close()
    vae.eval()
    final, final_shapes = evaluate(vae, held), evaluate(vae, held, shapes_only=True)
    # Latent statistics of the encoder on training clips → config, so the pipeline's un-normalisation is exact.
    with torch.no_grad():
        sample = np.random.default_rng(run.seed + 5).choice(len(clips), size=min(256, len(clips)), replace=False)
        mus = torch.cat([vae.encode(to_tensor(clips[np.sort(sample[i: i + 16])])).latent_dist.mode()
                         for i in range(0, len(sample), 16)])
    mean = mus.mean(dim=(0, 2, 3, 4)).tolist()
    std = mus.std(dim=(0, 2, 3, 4)).clamp_min(1e-3).tolist()
    vae.register_to_config(latents_mean=mean, latents_std=std)
    vae.save_pretrained(run.export / "vae", safe_serialization=True)
    phases = {"base": b.vae_steps + b.vae_full_steps, "texture": b.vae_texture_steps, "settle": b.vae_settle_steps}
    info = {"wall_s": timer.s, "steps": total, "phases": phases, "loss": loss_avg, "heldout_psnr": final,
            "heldout_psnr_shapes": final_shapes, "blur_baseline_psnr": base,
            "history": history, "params": sum(p.numel() for p in vae.parameters())}
    run.mark_done("vae", **info)
    return info


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    add_common_args(p)
    p.add_argument("--z-dim", type=int, default=None, help=f"latent channels (default {Z_DIM})")
    p.add_argument("--spatial", type=int, choices=sorted(VAE_LAYOUTS), default=None,
                   help=f"spatial factor (default {SPATIAL}; VAE_LAYOUTS)")
    p.add_argument("--temporal", type=int, choices=sorted(TEMPORAL_DOWNSAMPLE), default=None,
                   help=f"temporal factor (default {TEMPORAL}; TEMPORAL_DOWNSAMPLE)")
    p.add_argument("--init", type=Path, default=None, help="a saved VAE folder (same layout) to continue from")
    a = p.parse_args(argv)
    run = run_from_args(a)
    if a.z_dim is not None:
        run.budget.vae_z_dim = a.z_dim
    if a.spatial is not None:
        run.budget.vae_spatial = a.spatial
    if a.temporal is not None:
        run.budget.vae_temporal = a.temporal
    run.save_meta()
    train(run, a.init)


if __name__ == "__main__":
    main()
