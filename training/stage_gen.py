"""Stages 4–6: latents and text embeddings, then the light and the heavy WanTransformer3DModel.

Conditioning contract (the engine does the same at inference):
* text embeddings exactly as ``WanPipeline.encode_prompt(prompt, max_sequence_length=L)`` computes them
  (tokenize padded to L, encode with the mask, trim to the real length, zero-pad back to L) → [L, text_dim];
* **light**: ``cat([text_embeds(plan), connector(LM(instruction <plan> plan))])`` → [L + Q, text_dim], with the
  connector trained jointly (the LM stays frozen) — the paper's stage 1 "mixed context", whose text half encodes
  the understanding block's plan (recipe ``text``; ``instruction`` is the paper's own choice);
* **heavy**: ``text_embeds(instruction)`` only, and trained on explicit instructions (plans) only, like the paper's
  frozen pretrained G_H that never saw the reasoning signal;
* both: 10 % condition dropout to the "" condition (text "" and, for light, context of ("", "")) so CFG works.
Flow matching in the Wan convention: x_t = (1 − σ)·x0 + σ·noise, target v = noise − x0, timestep = 1000·σ, σ drawn
from the same shifted distribution the UniPC flow scheduler uses at inference; x0 are VAE latents normalised with
the VAE config's latents_mean / latents_std.

Run alone: ``python -m training.stage_gen {latents,light,heavy} [--tiny|--quick]``.
"""

from __future__ import annotations

import argparse
import copy
import os

import numpy as np
import torch
from tqdm import tqdm

from .common import Budget, Timer, add_common_args, load_ckpt, log, lr_at, run_from_args, save_ckpt
from .data import scenes
from .latent_layout import CHANNELS, FRAME, LATENT_FRAMES, PATCH, POSITION_GRID, patch_for, vae_factors
from .slot_labels import SlotHeads, batch_labels
from .stage_text import MAX_SEQUENCE_LENGTH, TEXT_DIM

FLOW_SHIFT = 2.0
LOW_NOISE_MAX = 0.35  # recipe "low_noise_share": that share of samples draws σ uniformly below this
NUM_QUERIES = 16
COND_DROPOUT = 0.1


def light_size(budget) -> dict:
    """The light generator's transformer size from the budget (``light_heads`` × ``light_head_dim`` wide, FFN 4× that,
    ``light_layers`` blocks)."""
    width = budget.light_heads * budget.light_head_dim
    return dict(num_attention_heads=budget.light_heads, attention_head_dim=budget.light_head_dim, ffn_dim=4 * width,
                num_layers=budget.light_layers)


def size_of(state: dict, head_dim: int = 32) -> dict:
    """A generator's transformer size read from its weights (the head split is not in them: ``head_dim``)."""
    width = state["patch_embedding.weight"].shape[0]
    return dict(num_attention_heads=width // head_dim, attention_head_dim=head_dim,
                ffn_dim=state["blocks.0.ffn.net.0.proj.weight"].shape[0],
                num_layers=1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks.")))


def size_in(config) -> dict:
    """A transformer's size (the keys ``light_size`` sets) from its config."""
    return {k: config[k] for k in ("num_attention_heads", "attention_head_dim", "ffn_dim", "num_layers")}


# The recipe's light (issue 18; was 4 layers × 128, 1.24M): 3 layers × 96, 0.56M, heavy 9.2× it.
LIGHT = light_size(Budget())
HEAVY = dict(num_attention_heads=6, attention_head_dim=32, ffn_dim=768, num_layers=8)
# Training recipe per generator: peak learning rate, batch size, and the extra loss weight of latent positions that
# shapes cover (loss weight 1 + shape_weight · coverage; see shape_cover.py). `main` can override them for trials.
# Light only: `self_layers` bidirectional connector layers over the LM states, `slot_weight`, the weight of the
# connector's slot supervision (training/slot_labels.py) against the flow loss, and `text`, what the text half of
# the mixed context encodes: the plan (as the engine does for families with "light_text": "plan") or the instruction.
RECIPE = {"light": dict(lr=1e-3, batch=16, shape_weight=4.0, positions=True, queries=NUM_QUERIES, self_layers=1,
                        slot_weight=0.5, text="plan"),
          "heavy": dict(lr=6e-4, batch=16, shape_weight=4.0, positions=True)}


def token_width_problem(width: int, channels: int, patch: tuple[int, int, int]) -> str | None:
    """Why a generator this wide cannot draw a clean clip at this patch, or None. Its output projection maps a
    ``width``-wide token to ``channels × patch`` latent values, so its velocity lies in a subspace of at most
    ``width`` dimensions: in the other directions the sampler never removes the starting noise. Measured (issue 18):
    the 96-wide light on 4×4 cells of a 16-channel 4× VAE (256 values a token) drew noisy backgrounds after 1500
    steps, where the same light at 2×2 cells (64 values) draws clean ones."""
    values = channels * int(np.prod(patch))
    if width < values:
        return (f"a generator {width} wide cannot denoise {values} latent values a token ({channels} channels × "
                f"{'×'.join(map(str, patch))} patch): it needs a width of at least {values}, a smaller patch, or "
                "fewer latent channels")
    return None


def make_transformer(size: dict, seed: int = 0, positions: bool = True, patch: tuple[int, int, int] = PATCH,
                     channels: int = CHANNELS):
    """A mini generator: Wan's transformer, by default with an absolute position embedding (see
    engine/positional_transformer.py for why) over the world's token grid (5 latent frames × 4 × 4 patches;
    training/latent_layout.py), reading and writing ``channels`` latent channels (the run's VAE's z_dim). Refuses a
    width below the latent values of a token (``token_width_problem``)."""
    from diffusers import WanTransformer3DModel

    from engine.positional_transformer import PositionalWanTransformer3DModel

    problem = token_width_problem(size["num_attention_heads"] * size["attention_head_dim"], channels, patch)
    if problem:
        raise ValueError(problem)
    torch.manual_seed(seed)
    common = dict(patch_size=patch, in_channels=channels, out_channels=channels, text_dim=TEXT_DIM, freq_dim=128,
                  cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=64, **size)
    if positions:
        return PositionalWanTransformer3DModel(position_grid=POSITION_GRID, **common)
    return WanTransformer3DModel(**common)


def make_like(trained, patch: tuple[int, int, int] | None = None, size: dict | None = None):
    """An empty generator shaped as ``trained`` (size, position embedding, latent channels), at ``patch`` and of
    ``size`` (default: its own): the fresh config a fine-tune starts from, the frame a bridge maps the weights into,
    or the larger one a trained generator grows into (training/grow.py)."""
    from engine.positional_transformer import PositionalWanTransformer3DModel

    return make_transformer(size or size_in(trained.config),
                            positions=isinstance(trained, PositionalWanTransformer3DModel),
                            patch=patch or tuple(trained.config.patch_size), channels=trained.config.in_channels)


def make_scheduler():
    from diffusers import UniPCMultistepScheduler

    return UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, num_train_timesteps=1000,
                                   flow_shift=FLOW_SHIFT)


def load_text(run):
    from transformers import AutoTokenizer, UMT5EncoderModel

    tok = AutoTokenizer.from_pretrained(run.export / "tokenizer", local_files_only=True)
    enc = UMT5EncoderModel.from_pretrained(run.export / "text_encoder", local_files_only=True).eval()
    return tok, enc


@torch.no_grad()
def encode_texts(tok, enc, texts: list[str], max_len: int = MAX_SEQUENCE_LENGTH) -> torch.Tensor:
    """[N, L, text_dim] exactly as WanPipeline._get_t5_prompt_embeds (prompt_clean, pad, trim, zero-pad)."""
    from diffusers.pipelines.wan.pipeline_wan import prompt_clean

    out = []
    for i in range(0, len(texts), 256):
        chunk = [prompt_clean(t) for t in texts[i: i + 256]]
        b = tok(chunk, padding="max_length", max_length=max_len, truncation=True, add_special_tokens=True,
                return_attention_mask=True, return_tensors="pt")
        h = enc(b.input_ids, b.attention_mask).last_hidden_state
        lens = b.attention_mask.gt(0).sum(1)
        h = torch.stack([torch.cat([u[:v], u.new_zeros(max_len - v, u.size(1))]) for u, v in zip(h, lens)])
        out.append(h)
    return torch.cat(out)


@torch.no_grad()
def normalised_latents(vae, clips: np.ndarray) -> torch.Tensor:
    """uint8 clips [N, F, H, W, 3] → the VAE's latents (posterior mode), normalised with its latents_mean / _std."""
    from .stage_vae import to_tensor

    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
    return (vae.encode(to_tensor(clips)).latent_dist.mode() - mean) / std


def build_latents(run) -> dict:
    """Encode every training clip (normalised latents) and every text (embeddings) once; also their shape coverage
    (before the light and heavy stages start side by side, so they never both compute it)."""
    shape_cover(run)
    if run.done("latents"):
        return run.done("latents")
    from diffusers import AutoencoderKLWan

    timer = Timer()
    rows, clips = scenes(run)
    vae = AutoencoderKLWan.from_pretrained(run.export / "vae").eval()
    spatial = int(vae.config.scale_factor_spatial)
    sd = run.stage_dir("latents")
    path = sd / "latents.npy"
    lat = np.lib.format.open_memmap(sd / "latents.tmp.npy", mode="w+", dtype=np.float32,
                                    shape=(len(clips), vae.config.z_dim, LATENT_FRAMES, FRAME // spatial, FRAME // spatial))
    for i in tqdm(range(0, len(clips), 16), desc="encode latents", mininterval=5):
        lat[i: i + 16] = normalised_latents(vae, clips[i: i + 16]).numpy()
    lat.flush()
    del lat
    (sd / "latents.tmp.npy").replace(path)
    tok, enc = load_text(run)
    texts = sorted({""} | {r["instruction"] for r in rows} | {r["plan"] for r in rows})
    emb = encode_texts(tok, enc, texts).half()
    torch.save({"texts": texts, "emb": emb}, sd / "text_embeds.pt")
    info = {"wall_s": timer.s, "clips": len(clips), "texts": len(texts)}
    run.mark_done("latents", **info)
    return info


class Data:
    """Latents + conditioning rows for one generator."""

    def __init__(self, run):
        rows, _ = scenes(run)
        sd = run.stage_dir("latents")
        self.rows = rows
        self.lat = torch.from_numpy(np.load(sd / "latents.npy"))
        te = torch.load(sd / "text_embeds.pt")  # our own cache file from build_latents
        self.index = {t: i for i, t in enumerate(te["texts"])}
        self.emb = te["emb"]

    def text(self, texts: list[str]) -> torch.Tensor:
        return self.emb[[self.index[t] for t in texts]].float()


def sample_sigmas(n: int, g: torch.Generator) -> torch.Tensor:
    u = torch.rand(n, generator=g)
    return FLOW_SHIFT * u / (1 + (FLOW_SHIFT - 1) * u)


def draw_sigmas(n: int, g: torch.Generator, recipe: dict, step: int) -> torch.Tensor:
    """`sample_sigmas`, with recipe "low_noise_share" of them drawn uniformly below LOW_NOISE_MAX from step
    "low_noise_from" on: low noise is where texture is decided (the refiner's job; stage_handoff.py)."""
    sig = sample_sigmas(n, g)
    if recipe.get("low_noise_share") and step >= recipe.get("low_noise_from", 0):
        low = torch.rand(n, generator=g) < recipe["low_noise_share"]
        sig = torch.where(low, torch.rand(n, generator=g) * LOW_NOISE_MAX, sig)
    return sig


class LightCond:
    """Mixed context for the light generator: text embeds ⧺ connector(frozen LM states)."""

    def __init__(self, run, connector=None, num_queries: int = NUM_QUERIES, self_layers: int = 0):
        from transformers import AutoTokenizer

        from engine.understanding import Connector, load_lm

        folder = run.export / "understanding" / "lm"
        self.tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.lm = load_lm(folder).eval()
        for p in self.lm.parameters():
            p.requires_grad_(False)
        self.connector = connector or Connector(self.lm.config.hidden_size, TEXT_DIM, num_queries,
                                                self_layers=self_layers)

        self._cache: dict[tuple[str, str], int] = {}
        self._states = self._masks = None

    def _lm_states(self, pairs: list[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor]:
        from engine.understanding import lm_hidden_states

        return lm_hidden_states(self.lm, self.tok, pairs)

    def precompute(self, pairs: list[tuple[str, str]], chunk: int = 256) -> None:
        """Run the frozen LM once over every pair training will ask for (it was ~40 % of a light step).
        `lm_hidden_states` pads on the right, which leaves real tokens' states unchanged, so stored rows equal
        per-batch ones."""
        pairs = sorted(set(pairs))
        parts = [self._lm_states(pairs[i: i + chunk]) for i in tqdm(range(0, len(pairs), chunk), desc="LM states",
                                                                    mininterval=5)]
        n = max(h.shape[1] for h, _ in parts)
        self._states = torch.cat([torch.nn.functional.pad(h, (0, 0, 0, n - h.shape[1])) for h, _ in parts]).half()
        self._masks = torch.cat([torch.nn.functional.pad(m, (0, n - m.shape[1])) for _, m in parts])
        self._cache = {p: k for k, p in enumerate(pairs)}

    def context(self, pairs: list[tuple[str, str]]) -> torch.Tensor:
        if self._cache and all(p in self._cache for p in pairs):
            idx = torch.tensor([self._cache[p] for p in pairs])
            mask = self._masks[idx]
            n = int(mask.sum(1).max())
            return self.connector(self._states[idx, :n].float(), mask[:, :n])
        return self.connector(*self._lm_states(pairs))


def _conditions(which: str, rows: list[dict], g: torch.Generator, phrased: list[list[str]] | None = None
                ) -> list[tuple[str, str]]:
    """(instruction, plan) per sample; ("", "") for the dropped condition. ``phrased[k]``: free phrasings of row k
    with the same plan (stage_phrasing), used instead of the template instruction half of the time."""
    out = []
    for r, alts in zip(rows, phrased or [None] * len(rows)):
        u = torch.rand(2, generator=g).tolist()
        if u[0] < COND_DROPOUT:
            out.append(("", ""))
        elif alts and 0.3 <= u[1] < 0.65:  # only fine-tunes draw here: the base recipe's random stream is unchanged
            out.append((alts[int(torch.randint(len(alts), (1,), generator=g))], r["plan"]))
        elif which == "heavy" or u[1] < 0.3:
            out.append((r["plan"], r["plan"]))  # explicit register: the instruction is the plan
        else:
            out.append((r["instruction"], r["plan"]))
    return out


def shape_cover(run) -> torch.Tensor:
    """Latent shape coverage of every training clip, [N, 1, F', h, w] (cached beside the latents)."""
    from .data import scene_examples
    from .shape_cover import latent_shape_cover

    path = run.stage_dir("latents") / "shape_cover.npy"
    if not path.exists():
        exs = scene_examples(run)
        spatial = vae_factors(run.export / "vae")[1]
        cover = np.stack([latent_shape_cover(e.scene, spatial) for e in tqdm(exs, desc="shape cover", mininterval=5)])
        tmp = path.with_name(f"shape_cover.{os.getpid()}.tmp.npy")  # per process: a second writer cannot clash
        np.save(tmp, cover)
        tmp.replace(path)
    return torch.from_numpy(np.load(path)).unsqueeze(1)


def train(run, which: str, recipe: dict | None = None, threads_when_alone: int | None = None,
          stage: str | None = None, init: bool = False, phrased: list[list[str]] | None = None,
          steps: int | None = None) -> dict:
    """Train one generator. `threads_when_alone`: once the other generator's stage is done (in train_all it trains
    beside this one, each on one core), use that many threads. Fine-tuning (stage_phrasing): `stage` names the
    stage folder (default `which`), `init` starts from the generator (and connector) in run/export, `phrased` gives
    free phrasings per scene row (see `_conditions`), `steps` overrides the budget's."""
    stage = stage or which
    if run.done(stage):
        return run.done(stage)
    recipe = {**RECIPE[which], **(recipe or {})}
    timer = Timer()
    data = Data(run)
    cover = shape_cover(run)
    if init:  # fine-tune: the exported generator, whatever its size (a family trained before LIGHT changed too)
        from engine.positional_transformer import load_transformer

        trained = load_transformer(run.export / which / "transformer")
        model = make_like(trained)
        model.load_state_dict(trained.state_dict())  # a fresh config: no local path recorded in the shipped one
    else:
        size = light_size(run.budget) if which == "light" else HEAVY
        channels, spatial, _ = vae_factors(run.export / "vae")
        model = make_transformer(size, run.seed + (1 if which == "light" else 2), positions=recipe["positions"],
                                 patch=patch_for(spatial), channels=channels)
    cond = (LightCond(run, num_queries=recipe["queries"], self_layers=recipe["self_layers"]) if which == "light"
            else None)
    slots = SlotHeads(TEXT_DIM) if cond and recipe["slot_weight"] > 0 else None
    if init:  # fine-tune: start from the exported connector too
        from engine.understanding import Connector

        if cond:
            cond.connector.load_state_dict(Connector.from_pretrained(run.export / "understanding" / "connector")
                                           .state_dict())
    if cond:
        pairs = [("", "")] + [(r[k], r["plan"]) for r in data.rows for k in ("instruction", "plan")]
        pairs += [(t, r["plan"]) for r, alts in zip(data.rows, phrased or []) for t in alts]
        cond.precompute(pairs)
    params = (list(model.parameters()) + (list(cond.connector.parameters()) if cond else [])
              + (list(slots.parameters()) if slots else []))
    peak = recipe["lr"]
    opt = torch.optim.AdamW(params, lr=peak, betas=(0.9, 0.99), weight_decay=0.01)
    ema = copy.deepcopy(model).eval()
    ema_conn = copy.deepcopy(cond.connector).eval() if cond else None
    sd = run.stage_dir(stage)
    step, history = 0, []
    ck = load_ckpt(sd / "ckpt.pt")
    timer.resume(ck)
    wanted = size_in(model.config)
    held = size_of(ck["model"], wanted["attention_head_dim"]) if ck else wanted
    if held != wanted:
        raise SystemExit(f"{sd / 'ckpt.pt'} holds a {which} generator of size {held}, not the "
                         f"{wanted} this budget asks for: resume with the flags the run started with "
                         "(--light-heads, --light-head-dim, --light-layers), or delete that checkpoint to start over")
    if ck:
        model.load_state_dict(ck["model"]), ema.load_state_dict(ck["ema"]), opt.load_state_dict(ck["opt"])
        if cond:
            cond.connector.load_state_dict(ck["conn"]), ema_conn.load_state_dict(ck["ema_conn"])
        if slots:
            slots.load_state_dict(ck["slots"])
        step, history = ck["step"], ck["history"]
    total = steps or (run.budget.light_steps if which == "light" else run.budget.heavy_steps)
    g = torch.Generator().manual_seed(run.seed + 41 + step + (0 if which == "light" else 7))
    bar = tqdm(total=total, initial=step, desc=which, mininterval=5)
    model.train()
    loss_avg = slot_avg = None
    bs = recipe["batch"]
    other = "heavy" if which == "light" else "light"
    while step < total:
        if threads_when_alone and step % run.budget.log_every == 0 and run.done(other):
            torch.set_num_threads(threads_when_alone)
            log.info("%s: the %s stage is done; %d threads from step %d", which, other, threads_when_alone, step)
            threads_when_alone = None
        idx = torch.randint(len(data.rows), (bs,), generator=g)
        rows = [data.rows[i] for i in idx.tolist()]
        pairs = _conditions(which, rows, g, [phrased[i] for i in idx.tolist()] if phrased else None)
        x0 = data.lat[idx]
        text = data.text([p[1] if cond and recipe["text"] == "plan" else p[0] for p in pairs])
        semantic = cond.context(pairs) if cond else None
        ctx = torch.cat([text, semantic], 1) if cond else text
        sig = draw_sigmas(bs, g, recipe, step)
        noise = torch.randn(x0.shape, generator=g)
        s = sig.view(-1, 1, 1, 1, 1)
        xt = (1 - s) * x0 + s * noise
        for gr in opt.param_groups:
            gr["lr"] = lr_at(step, total, peak, warmup=100)
        v = model(hidden_states=xt, timestep=sig * 1000, encoder_hidden_states=ctx, return_dict=False)[0]
        w = 1.0 + recipe["shape_weight"] * cover[idx]
        loss = (w * (v - (noise - x0)) ** 2).mean() / w.mean()
        flow_loss = loss.detach()
        if slots:
            slot_loss = slots.loss(semantic, batch_labels([p[1] for p in pairs]))
            loss = loss + recipe["slot_weight"] * slot_loss
            slot_avg = slot_loss.item() if slot_avg is None else 0.98 * slot_avg + 0.02 * slot_loss.item()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema.parameters(), model.parameters()):
                e.lerp_(p, 1 - decay)
            if cond:
                for e, p in zip(ema_conn.parameters(), cond.connector.parameters()):
                    e.lerp_(p, 1 - decay)
        loss_avg = flow_loss.item() if loss_avg is None else 0.98 * loss_avg + 0.02 * flow_loss.item()
        bar.update(1)
        if step % run.budget.log_every == 0:
            log.info("%s step %d loss %.4f%s (%.0f s)", which, step, loss_avg,
                     f" slot loss {slot_avg:.4f}" if slots else "", timer.s)
            history.append((step, loss_avg, timer.s))
        if step % run.budget.ckpt_every == 0 or step == total:
            state = dict(model=model.state_dict(), ema=ema.state_dict(), opt=opt.state_dict(), step=step,
                         history=history)
            if cond:
                state.update(conn=cond.connector.state_dict(), ema_conn=ema_conn.state_dict())
            if slots:
                state.update(slots=slots.state_dict())
            save_ckpt(sd / "ckpt.pt", wall_s=timer.s, **state)
    bar.close()
    ema.save_pretrained(run.export / which / "transformer", safe_serialization=True)
    if cond:
        ema_conn.save_pretrained(run.export / "understanding" / "connector")
    info = {"wall_s": timer.s, "steps": total, "recipe": recipe, "loss": loss_avg, "slot_loss": slot_avg, "params": sum(p.numel() for p in model.parameters()),
            "history": history[-20:]}
    run.mark_done(stage, **info)
    return info


def snapshot(run, which: str, stage: str | None = None) -> dict | None:
    """Write the EMA weights of an unfinished generator stage (default: the generator's own; the heavy continuations
    "heavy_refine" and "heavy_detail" too) from its last checkpoint into run/export (as a finished stage does), so a
    family can be exported and measured while training goes on. Returns its partial info."""
    stage = stage or which
    if run.done(stage):
        return run.done(stage)
    ck = load_ckpt(run.stage_dir(stage) / "ckpt.pt")
    if ck is None:
        return None
    positions = any(k.startswith("patch_embedding.position") for k in ck["ema"])
    head_dim = run.budget.light_head_dim if which == "light" else HEAVY["attention_head_dim"]
    model = make_transformer(size_of(ck["ema"], head_dim), positions=positions,
                             patch=tuple(ck["ema"]["patch_embedding.weight"].shape[2:]),
                             channels=ck["ema"]["patch_embedding.weight"].shape[1])
    model.load_state_dict(ck["ema"])
    model.save_pretrained(run.export / which / "transformer", safe_serialization=True)
    if which == "light":
        from transformers import AutoConfig

        from engine.understanding import Connector

        lm_cfg = AutoConfig.from_pretrained(run.export / "understanding" / "lm", local_files_only=True)
        layers = {k.split(".")[2] for k in ck["ema_conn"] if k.startswith("encoder.layers.")}
        conn = Connector(lm_cfg.hidden_size, TEXT_DIM, ck["ema_conn"]["queries"].shape[0], self_layers=len(layers))
        conn.load_state_dict(ck["ema_conn"])
        conn.save_pretrained(run.export / "understanding" / "connector")
    total = getattr(run.budget, f"{stage}_steps")  # every generator stage's budget is Budget.<stage>_steps
    hist = ck.get("history") or []
    info = {"wall_s": float(ck.get("wall_s", 0.0)), "steps": int(ck["step"]), "of_steps": total, "partial": True,
            "loss": hist[-1][1] if hist else None, "params": sum(p.numel() for p in model.parameters()),
            "history": hist[-20:]}
    log.info("%s snapshot at step %d of %s", stage, ck["step"], total)
    return info


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("stage", choices=["latents", "light", "heavy"])
    add_common_args(p)
    p.add_argument("--steps", type=int, default=None, help="override the budget's steps for this generator")
    p.add_argument("--lr", type=float, default=None, help="override the recipe's peak learning rate")
    p.add_argument("--batch", type=int, default=None, help="override the recipe's batch size")
    p.add_argument("--shape-weight", type=float, default=None, help="override the recipe's shape loss weight")
    p.add_argument("--queries", type=int, default=None, help="override the light recipe's connector query count")
    p.add_argument("--self-layers", type=int, default=None,
                   help="override the light recipe's bidirectional connector layers over the LM states")
    p.add_argument("--slot-weight", type=float, default=None,
                   help="override the light recipe's slot supervision weight (0: off)")
    p.add_argument("--text", choices=["plan", "instruction"], default=None,
                   help="override what the light generator's text tokens encode (the family's lumos.json light_text)")
    p.add_argument("--threads-when-alone", type=int, default=None,
                   help="threads to use once the other generator's stage is done (train_all: heavy takes both cores)")
    p.add_argument("--no-positions", dest="positions", action="store_const", const=False, default=None,
                   help="plain WanTransformer3DModel, without the absolute position embedding")
    a = p.parse_args(argv)
    run = run_from_args(a)
    if a.steps is not None:
        setattr(run.budget, f"{a.stage}_steps", a.steps)
    recipe = {k: v for k, v in (("lr", a.lr), ("batch", a.batch), ("shape_weight", a.shape_weight),
                                                   ("positions", a.positions), ("queries", a.queries),
                                                   ("self_layers", a.self_layers), ("slot_weight", a.slot_weight),
                                                   ("text", a.text))
              if v is not None}
    build_latents(run) if a.stage == "latents" else train(run, a.stage, recipe, a.threads_when_alone)


if __name__ == "__main__":
    main()
