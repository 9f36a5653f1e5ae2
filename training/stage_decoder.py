"""Stage 5: tune the shared VAE's decoder with its encoder frozen, so the latent space stays exactly the same.

The VAE stage weighs every frame alike, so frame 0 (which the causal VAE encodes alone) is 1/17 of its loss, and
there the decoder draws shapes smaller and off in hue (a red triangle comes out pink). The instruction scorer
compares a shape's first frames with its last, so the VAE round trip of the ground truth itself failed 23 % of the
"stays still" checks. This stage trains the decoder alone on the cached training latents, frame 0 weighted
FRAME0_WEIGHT× and shape pixels as in the VAE stage. The encoder, and so every latent the generators train on, is
untouched: the stage can run (or be redone) after the generators without retraining them.

With `Budget.decoder_base_dim` wider than the VAE's own width, the stage replaces the decoder by a fresh, wider one
(`decoder_base_dim`, as Wan2.2's VAE has) on the same frozen encoder: first `decoder_crop_steps` steps on
latent-aligned crops (CROP_CELLS latent cells square, a quarter of a frame's cost), then `decoder_steps` on whole
clips. Issue 18: the round trip of the truth is the ceiling of every generator's detail, and a decoder alone can
raise it without moving the latent space the generators were trained in.

Run alone: ``python -m training.stage_decoder [--tiny|--quick]`` (needs the vae and latents stages); ``--into FAMILY``
then puts the decoder into a trained family whose VAE has the same encoder (its generators stay valid).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from engine.vae_widths import decoder_base_dim
from miniworld import instruction_score, psnr, render

from .common import Timer, add_common_args, load_ckpt, log, lr_at, run_from_args, save_ckpt
from .data import eval_scenes, scenes
from .stage_vae import reconstruction_psnr, round_trip, shape_weight, to_tensor

FRAME0_WEIGHT = 4.0
PEAK_LR = 3e-4
BATCH = 4
TUNED = "vae_decoder_tuned"  # folder under run.export; export ships it in place of the VAE stage's
ENCODER_SIDE = ("encoder.", "quant_conv.")  # what a wider decoder keeps from the VAE stage
CROP_CELLS = 4  # latent cells a side in the crop phase: 32×32 pixels at 8×
CROP_BATCH = 8
CROP_PEAK_LR = 1e-3  # a fresh decoder, as the VAE stage's base phase


def decoder_params(vae) -> list[torch.nn.Parameter]:
    """Freeze the encoder side; return what decodes a latent (post_quant_conv + decoder)."""
    for p in list(vae.encoder.parameters()) + list(vae.quant_conv.parameters()):
        p.requires_grad_(False)
    return [p for p in vae.parameters() if p.requires_grad]


def with_decoder_width(vae, width: int | None, seed: int = 0):
    """``vae`` itself where ``width`` is None or its decoder's width; else a VAE with ``vae``'s encoder (the same
    latents, exactly) and a fresh decoder ``width`` wide."""
    from diffusers import AutoencoderKLWan

    if width is None or width == decoder_base_dim(vae.config):
        return vae
    torch.manual_seed(seed)
    # without the private keys: "_use_default_values" would put a defaulted decoder_base_dim back to its default
    config = {k: v for k, v in vae.config.items() if not k.startswith("_")}
    wide = AutoencoderKLWan.from_config({**config, "decoder_base_dim": int(width)})
    keep = {k: v for k, v in vae.state_dict().items() if k.startswith(ENCODER_SIDE)}
    missing = set(wide.load_state_dict(keep, strict=False).missing_keys)
    assert not any(k.startswith(ENCODER_SIDE) for k in missing), "the encoder side must carry over whole"
    return wide


def crop_batch(lat, clips, rng, spatial: int):
    """CROP_BATCH whole-clip crops CROP_CELLS latent cells square, with the pixels those cells decode to."""
    cells = min(CROP_CELLS, lat.shape[-1])
    zs, xs = [], []
    for i in rng.integers(len(lat), size=CROP_BATCH):
        y0, x0 = (int(v) for v in rng.integers(0, lat.shape[-1] - cells + 1, size=2))
        zs.append(lat[i, :, :, y0: y0 + cells, x0: x0 + cells])
        xs.append(clips[i, :, spatial * y0: spatial * (y0 + cells), spatial * x0: spatial * (x0 + cells)])
    return torch.from_numpy(np.stack(zs)), to_tensor(np.stack(xs))


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
    if len(lat) != len(clips):  # latent i must be clip i's: another scene count pairs them wrongly
        raise SystemExit(f"the run's latents cover {len(lat)} clips but its scenes are {len(clips)}; "
                         f"pass the scene count the latents stage used (--scenes {len(lat)})")
    held = eval_scenes(3 * run.budget.eval_clips)  # the instruction score needs more clips than PSNR
    base = AutoencoderKLWan.from_pretrained(run.export / "vae")
    mean = torch.tensor(base.config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(base.config.latents_std).view(1, -1, 1, 1, 1)
    sd = run.stage_dir("decoder")
    ck = load_ckpt(sd / "ckpt.pt")
    before = ck["before"] if ck else held_out(base, held)  # measured once, on the VAE stage's decoder
    vae = with_decoder_width(base, run.budget.decoder_base_dim, run.seed + 59)
    params = decoder_params(vae)
    opt = torch.optim.AdamW(params, lr=PEAK_LR, betas=(0.9, 0.99), weight_decay=0.0)
    step = 0
    timer.resume(ck)
    if ck:
        vae.load_state_dict(ck["vae"]), opt.load_state_dict(ck["opt"])
        step = ck["step"]
    crops = run.budget.decoder_crop_steps if vae is not base else 0  # a tuned decoder needs no crop phase
    total = crops + run.budget.decoder_steps
    spatial = int(vae.config.scale_factor_spatial)
    rng = np.random.default_rng(run.seed + 53 + step)
    bar = tqdm(total=total, initial=step, desc="vae decoder", mininterval=5)
    vae.train()
    loss_avg = None
    while step < total:
        if step < crops:
            z, x = crop_batch(lat, clips, rng, spatial)
            lr = lr_at(step, crops, CROP_PEAK_LR, warmup=50)
        else:
            idx = np.sort(rng.choice(len(lat), size=min(BATCH, len(lat)), replace=False))
            z, x = torch.from_numpy(np.array(lat[idx])), to_tensor(clips[idx])
            lr = lr_at(step - crops, total - crops, PEAK_LR, warmup=20)
        for gr in opt.param_groups:
            gr["lr"] = lr
        loss = loss_fn(vae.decode(z * std + mean).sample, x)
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
    info = {"wall_s": timer.s, "steps": total, "crop_steps": crops, "decoder_base_dim": decoder_base_dim(vae.config),
            "encoder_base_dim": int(vae.config.base_dim), "loss": loss_avg, "frame0_weight": FRAME0_WEIGHT,
            "heldout_before": before, "heldout_after": after}
    run.mark_done("decoder", **info)
    return info


def install(run, family: Path) -> Path:
    """Put this run's decoder into a trained ``family`` in place of its VAE. Only where the family's encoder is the
    run's: the generators were trained on that encoder's latents, which a decoder swap must leave exactly as they are."""
    from diffusers import AutoencoderKLWan

    from .export import record_metrics
    from .family_parts import install_parts

    ours = AutoencoderKLWan.from_pretrained(run.export / TUNED).state_dict()
    theirs = AutoencoderKLWan.from_pretrained(Path(family) / "light" / "vae").state_dict()
    encoder = [k for k in ours if k.startswith(ENCODER_SIDE)]
    if any(k not in theirs or not torch.equal(ours[k], theirs[k]) for k in encoder):
        raise SystemExit(f"{family}'s VAE has another encoder than this run's: its generators learnt other latents")
    out = install_parts(run, Path(family), Path(family), ("light/vae",), ("decoder",), sources={"light/vae": TUNED})
    record_metrics(run, out, {})
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    add_common_args(p)
    p.add_argument("--into", type=Path, default=None,
                   help="then put the decoder into this trained family (its VAE must have the run's encoder)")
    a = p.parse_args(argv)
    run = run_from_args(a)
    train(run)
    if a.into is not None:
        install(run, a.into)


if __name__ == "__main__":
    main()
