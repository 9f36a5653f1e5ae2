"""Stage: carry a trained family's generators into a new latent space (issue 18: a new or re-laid-out VAE).

Training the light generator from scratch took 16000 steps before it reasoned well, and the heavy one 10000; the
blocks that learnt where shapes go, how they move and what the words mean do not depend on the VAE. So the new
generators keep every block of the old ones and only their two ends change:

* the old and the new VAE encode the same training clips; a token of each (the patch a generator sees, e.g. 2×2
  latent cells at 8×, 4×4 at 4×: the same 16×16 pixels) is a vector, and ``fit_bridge`` finds ridge least-squares maps
  A (new → old) and B (old → new), the ridge chosen so that A keeps unit Gaussian noise at unit variance on average,
  as the old generator saw it at high noise;
* the new patch embedding is the old one after A, and the new output projection maps the old velocity on with B
  (``bridge_transformer``). At step 0 the new generator draws what the old one drew as far as the maps carry it
  (measured 8× → 4×: they explain 0.69 of the old tokens' energy, and the bridged light reasoned at 0.20; a warm
  start, not a copy);
* both then continue on the new latents (light with phrasings, as ``stage_phrasing``; heavy with low-noise draws,
  as ``heavy_refine``), heavy for more steps: the detail that only the new latents can hold is theirs to learn.

    python -m training.stage_bridge --run training/runs/NEW --scenes 3000 --out training/runs/NEW/family

The new layout must keep the token grid (a token = 16×16 pixels of one latent frame) and give each generator at
least as many dimensions as a token has latent values (``stage_gen.token_width_problem``): the shipped 96-wide light
cannot take 4×4 cells of a 16-channel 4× VAE, which the pilot run (docs/handoff.md) showed as noise it never removes.

The run must already hold the new VAE in ``export/vae`` (``training.stage_vae`` with the same ``--run``). Resumable;
heavy in a child process beside light, one thread each.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from miniworld.phrasing import phrase

from . import stage_gen, stage_phrasing
from .common import add_common_args, add_family_args, beside, log, run_from_args
from .data import scene_examples, scenes
from .family_parts import install_parts

FIT_CLIPS = 512      # clips whose tokens fit A (512 × 80 tokens against 256 unknowns per row: well determined)
LIGHT_LR = 6e-4      # above stage_phrasing's 3e-4: the two ends start far from trained
HEAVY_LR = 4e-4


def tokens(z: torch.Tensor, patch: tuple[int, int, int], order: str = "conv") -> torch.Tensor:
    """Latents [N, C, F, H, W] → one row per generator token. ``order="conv"``: (C, pt, ph, pw), the layout of the
    patch embedding's Conv3d weight; ``"proj"``: (pt, ph, pw, C), the layout of Wan's output projection."""
    n, c, f, h, w = z.shape
    pt, ph, pw = patch
    z = z.reshape(n, c, f // pt, pt, h // ph, ph, w // pw, pw)
    z = z.permute(0, 2, 4, 6, 1, 3, 5, 7) if order == "conv" else z.permute(0, 2, 4, 6, 3, 5, 7, 1)
    return z.reshape(-1, c * pt * ph * pw)


def proj_to_conv(channels: int, patch: tuple[int, int, int]) -> torch.Tensor:
    """Index k of a token in "proj" order → its index in "conv" order."""
    ids = torch.arange(channels * int(np.prod(patch)), dtype=torch.float64).view(1, channels, *patch)
    return tokens(ids, patch, "proj")[0].long()


def _ridge(x: torch.Tensor, y: torch.Tensor, relative: float) -> torch.Tensor:
    """M with y ≈ x · Mᵀ, ridge ``relative`` × the mean feature energy."""
    gram = x.T @ x
    eye = torch.eye(gram.shape[0], dtype=gram.dtype)
    return torch.linalg.solve(gram + relative * gram.diagonal().mean() * eye, x.T @ y).T


def fit_bridge(old: torch.Tensor, new: torch.Tensor, old_patch, new_patch) -> dict:
    """Linear maps between the tokens of two latent spaces (normalised latents of the same clips, "conv" order):
    ``a`` [d_old, d_new] with old ≈ a · new, ``b`` [d_new, d_old] with new ≈ b · old.

    Plain least squares fits the clean latents well but amplifies directions in which the new latents hardly vary
    (gains of 100 measured), and the generator's input is mostly noise early on. So the ridge is the one at which
    ``a`` carries unit Gaussian noise at unit variance on average (mean diag(a·aᵀ) = 1), which is what the old
    generator saw; ``b`` takes the same relative ridge. Also returned: the share of each side's token energy the map
    explains (1 − residual / energy) and the ridge."""
    u, w = tokens(old.double(), old_patch), tokens(new.double(), new_patch)
    low, high = -8.0, 1.0  # log10 of the relative ridge; the noise gain falls as the ridge grows
    for _ in range(40):
        mid = (low + high) / 2
        gain = float((_ridge(w, u, 10**mid) ** 2).sum(1).mean())
        low, high = (mid, high) if gain > 1.0 else (low, mid)
    ridge = 10**high
    a, b = _ridge(w, u, ridge), _ridge(u, w, ridge)

    def explained(x, y, m):
        return 1.0 - float(((y - x @ m.T) ** 2).sum() / (y**2).sum())

    return {"a": a.float(), "b": b.float(), "ridge": ridge, "explained_old": explained(w, u, a),
            "explained_new": explained(u, w, b), "noise_gain": float((a**2).sum(1).mean())}


@torch.no_grad()
def bridge_transformer(old, a: torch.Tensor, b: torch.Tensor, new_patch: tuple[int, int, int], make):
    """A generator for the new latents: ``old``'s blocks, its patch embedding after ``a`` (new → old tokens) and its
    output projection mapped on by ``b`` (old → new). ``make(patch)`` builds the empty new model (same size,
    position embedding or not)."""
    channels = old.config.in_channels
    old_patch = tuple(old.config.patch_size)
    new = make(new_patch)
    state = {k: v for k, v in old.state_dict().items()
             if k not in ("patch_embedding.weight", "proj_out.weight", "proj_out.bias")}
    dim = old.patch_embedding.weight.shape[0]
    embed = old.patch_embedding.weight.reshape(dim, -1) @ a  # conv order in, conv order out
    state["patch_embedding.weight"] = embed.reshape(dim, channels, *new_patch)
    onward = b[proj_to_conv(channels, new_patch)][:, proj_to_conv(channels, old_patch)]  # proj order both sides
    state["proj_out.weight"] = onward @ old.proj_out.weight
    state["proj_out.bias"] = onward @ old.proj_out.bias
    new.load_state_dict(state)
    return new


def seed_without_vae(run, family: Path) -> None:
    """run/export gets the family's parts, but keeps the run's own (new) VAE."""
    if not (run.export / "vae").exists():
        raise SystemExit(f"{run.export / 'vae'}: no new VAE in this run; train it first (python -m training.stage_vae "
                         f"--run {run.root})")
    stage_phrasing.seed_from_family(run, family, keep_vae=True)


@torch.no_grad()
def old_latents(family: Path, clips: np.ndarray) -> torch.Tensor:
    """Normalised latents of ``clips`` under the family's (old) VAE."""
    from diffusers import AutoencoderKLWan

    vae = AutoencoderKLWan.from_pretrained(Path(family) / "light" / "vae").eval()
    return torch.cat([stage_gen.normalised_latents(vae, clips[i: i + 16]) for i in range(0, len(clips), 16)])


def check_widths(run, family: Path) -> None:
    """Refuse, before any work, a new VAE whose tokens hold more latent values than a generator is wide."""
    from .latent_layout import patch_for, vae_factors

    new_patch = patch_for(vae_factors(run.export / "vae")[1])
    for which in ("light", "heavy"):
        cfg = json.loads((Path(family) / which / "transformer" / "config.json").read_text())
        problem = stage_gen.token_width_problem(cfg["num_attention_heads"] * cfg["attention_head_dim"],
                                                cfg["in_channels"], new_patch)
        if problem:
            raise SystemExit(f"cannot bridge the {which} generator to {run.export / 'vae'}: {problem}")


def bridge(run, family: Path) -> dict:
    """Fit A and write both bridged generators into run/export (once)."""
    if run.done("bridge"):
        return run.done("bridge")
    from engine.positional_transformer import load_transformer

    from .common import Timer
    from .latent_layout import patch_for, vae_factors

    timer = Timer()
    _, clips = scenes(run)
    n = min(FIT_CLIPS, len(clips))
    old = old_latents(family, clips[:n])
    new = torch.from_numpy(np.load(run.stage_dir("latents") / "latents.npy", mmap_mode="r")[:n].copy())
    new_patch = patch_for(vae_factors(run.export / "vae")[1])
    info, fits = {}, {}
    for which in ("light", "heavy"):
        folder = Path(family) / which / "transformer"
        trained = load_transformer(folder)
        old_patch = tuple(trained.config.patch_size)
        if old_patch not in fits:  # the fit depends on the latents and the patch only: both generators share it
            fits[old_patch] = fit_bridge(old, new, old_patch, new_patch)
        fit = fits[old_patch]
        model = bridge_transformer(trained, fit["a"], fit["b"], new_patch,
                                   lambda patch: stage_gen.make_like(trained, patch))
        model.save_pretrained(run.export / which / "transformer", safe_serialization=True)
        info[which] = {"old_patch": list(old_patch), "new_patch": list(new_patch),
                       **{k: v for k, v in fit.items() if k not in ("a", "b")}}
        log.info("bridge %s: %s", which, info[which])
    run.mark_done("bridge", wall_s=timer.s, clips=n, **info)
    return run.done("bridge")


def train_light(run) -> dict:
    """The bridged light + connector continue on the new latents, with free phrasings (stage_phrasing's mix)."""
    rng = np.random.default_rng(run.seed + 505)
    phrased = [[phrase(e, rng, "train", keep_scene=True).instruction
                for _ in range(stage_phrasing.PHRASINGS_PER_SCENE)] for e in scene_examples(run)]
    return stage_gen.train(run, "light", {"lr": LIGHT_LR}, stage="light_bridge", init=True, phrased=phrased,
                           steps=run.budget.phrasing_light_steps)


def train_heavy(run, threads: int | None = None) -> dict:
    """The bridged heavy continues on the new latents, half its late batches at low noise (as heavy_refine)."""
    from .stage_handoff import LOW_NOISE_FROM, LOW_NOISE_SHARE

    steps = run.budget.heavy_refine_steps
    recipe = {"lr": HEAVY_LR, "low_noise_share": LOW_NOISE_SHARE, "low_noise_from": int(LOW_NOISE_FROM * steps)}
    return stage_gen.train(run, "heavy", recipe, threads_when_alone=threads, stage="heavy_bridge", init=True,
                           steps=steps)


def install(run, family: Path, out: Path, eval_per_category: int = 2) -> Path:
    """``family`` with the run's VAE (its tuned decoder where stage_decoder ran), both generators and the connector
    (built beside ``out``, then swapped in)."""
    from .export import quick_eval, record_metrics
    from .stage_decoder import TUNED

    vae = TUNED if run.done("decoder") else "vae"
    out = install_parts(run, family, out, ("light/vae", "light/transformer", "heavy/transformer",
                                           "understanding/connector"),
                        ("vae", "latents", "decoder", "bridge", "light_bridge", "heavy_bridge"),
                        sources={"light/vae": vae})
    record_metrics(run, out, {"quick_eval": quick_eval(out, eval_per_category)} if eval_per_category else {})
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    add_family_args(p, "family whose generators to carry")
    p.add_argument("--light-steps", type=int, default=None, help="light steps on the new latents")
    p.add_argument("--heavy-steps-new", type=int, default=None, help="heavy steps on the new latents")
    p.add_argument("--only", choices=["heavy"], default=None, help="run heavy only (the child process)")
    a = p.parse_args(argv)
    run = run_from_args(a)
    for name, v in (("phrasing_light_steps", a.light_steps), ("heavy_refine_steps", a.heavy_steps_new)):
        if v is not None:
            setattr(run.budget, name, v)
    run.save_meta()
    seed_without_vae(run, a.family)
    check_widths(run, a.family)
    stage_gen.build_latents(run)
    bridge(run, a.family)
    if a.only == "heavy":
        return train_heavy(run, threads=2)  # both cores once light is done
    if not run.done("heavy_bridge"):
        extra = ["--from", str(a.family)]
        extra += [f"--heavy-steps-new={a.heavy_steps_new}"] if a.heavy_steps_new is not None else []
        beside(run, a, ["training.stage_bridge", "--only", "heavy"], "heavy_bridge", lambda: train_light(run),
               tuple(extra))
    else:
        train_light(run)
    train_heavy(run)
    if a.out is not None:
        install(run, a.family, a.out, 0 if a.tiny else 2)


if __name__ == "__main__":
    main()
