"""Assemble a run's weights into a family folder (default resources/models/lumos-mini/) and evaluate it.

Layout (a contract with engine/models.py)::

    light/                 full diffusers WanPipeline folder (model_index.json, scheduler/, text_encoder/,
                           tokenizer/, transformer/, vae/)
    heavy/transformer/     bare WanTransformer3DModel folder, same in/out channels, text_dim and patch as light
    understanding/lm/      causal or seq2seq LM + tokenizer;   understanding/connector/   Connector
    lumos.json             family defaults
    MODEL_CARD.md          what they are, how they were trained, measured numbers, limits

Run alone: ``python -m training.export [--tiny|--quick] [--out DIR] [--eval N]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from engine.atomic_files import atomic_write_text
from miniworld.phrasing import KNOWN_WORDS

from .common import FAMILY_DIR, Timer, add_common_args, log, run_from_args
from .grammar_file import write_grammar
from .stage_gen import FLOW_SHIFT, NUM_QUERIES as NUM_Q, RECIPE, make_scheduler
from .stage_text import MAX_SEQUENCE_LENGTH

DEFAULTS = {"name": "lumos-mini", "max_sequence_length": MAX_SEQUENCE_LENGTH, "width": 64, "height": 64,
            "num_frames": 17, "steps": 20, "guidance_light": 4.0, "guidance_heavy": 4.0, "fps": 8,
            "flow_shift": FLOW_SHIFT}


def light_text(recipe: dict | None) -> str:
    """lumos.json's "light_text" for a light generator trained with `recipe` (its done.json's; None, as for a
    snapshot of a stage still training: today's recipe): "plan" if it learnt from the plan's text tokens, which the
    engine then gives it (engine/runtime.py), else "prompt", the paper's instruction tokens."""
    return "plan" if (recipe or RECIPE["light"]).get("text") == "plan" else "prompt"


STAGES = ("text", "lm", "vae", "latents", "decoder", "light", "heavy", "heavy_refine", "heavy_detail",
          "lm_phrasing", "light_phrasing")


def vae_folder(run) -> str:
    """The VAE to ship: the decoder-tuned one once stage_decoder is done (same encoder, same latent space)."""
    from .stage_decoder import TUNED

    return TUNED if run.done("decoder") else "vae"


def assemble(run, out: Path) -> Path:
    """Write the family folder from run/export (atomically: built next to `out`, then swapped in)."""
    from diffusers import AutoencoderKLWan, WanPipeline
    from transformers import AutoTokenizer, UMT5EncoderModel

    from engine.positional_transformer import load_transformer

    src = run.export
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    pipe = WanPipeline(
        tokenizer=AutoTokenizer.from_pretrained(src / "tokenizer", local_files_only=True),
        text_encoder=UMT5EncoderModel.from_pretrained(src / "text_encoder", local_files_only=True),
        vae=AutoencoderKLWan.from_pretrained(src / vae_folder(run)),
        transformer=load_transformer(src / "light" / "transformer"),
        scheduler=make_scheduler(),
    )
    pipe.save_pretrained(tmp / "light", safe_serialization=True)
    # Keep light/ a stock WanPipeline folder: its index names Wan's transformer class (which ours subclasses), and
    # transformer/config.json the exact class, which load_transformer reads. diffusers cannot load a component
    # class from outside its own libraries by index, so stock loaders pass transformer=load_transformer(...).
    index_path = tmp / "light" / "model_index.json"
    index = json.loads(index_path.read_text())
    index["transformer"] = ["diffusers", "WanTransformer3DModel"]
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    shutil.copytree(src / "heavy" / "transformer", tmp / "heavy" / "transformer")
    shutil.copytree(src / "understanding", tmp / "understanding")
    write_grammar(tmp / "understanding")  # plans always parse and keep what the instruction states
    cfg = dict(DEFAULTS, light_text=light_text((run.done("light") or {}).get("recipe")))
    # every word the family was trained on: the engine marks the others in an instruction as unknown
    cfg["vocabulary"] = sorted(KNOWN_WORDS)
    if (out / "lumos.json").exists():  # keep tuned defaults (guidance, steps) across re-exports
        old = json.loads((out / "lumos.json").read_text())
        cfg.update({k: old[k] for k in ("steps", "guidance_light", "guidance_heavy", "fps", "handoff") if k in old})
    if (out / "guidance_tuning.json").exists():  # and the tuning run those defaults came from
        shutil.copy2(out / "guidance_tuning.json", tmp / "guidance_tuning.json")
    (tmp / "lumos.json").write_text(json.dumps(cfg, indent=2) + "\n")
    if (run.root / "metrics.json").exists():
        shutil.copy(run.root / "metrics.json", tmp / "training_metrics.json")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    log.info("family written to %s (%.1f MB)", out, size / 1e6)
    return out


def quick_eval(folder: Path, per_category: int = 2, seed: int = 0) -> dict:
    """Light-only and heavy-only scores on the first bench instructions of each category (reference sampler)."""
    from miniworld import CATEGORIES, bench_set, score_clip

    from .sample import MiniFamily

    fam = MiniFamily(folder)
    chosen = []
    for cat in CATEGORIES:
        chosen += [(e, s) for e, s in bench_set() if e.category == cat][:per_category]
    res = {}
    for mode in ("light", "heavy"):
        clips = fam.generate([e.instruction for e, _ in chosen], mode=mode, seeds=[s for _, s in chosen])
        scores = [score_clip(c, e.scene) for c, (e, _) in zip(clips, chosen)]
        by = {}
        for cat in CATEGORIES:
            sub = [s for s, (e, _) in zip(scores, chosen) if e.category == cat]
            by[cat] = float(np.mean([s["instruction"] for s in sub]))
        res[mode] = {
            "instruction_explicit": by["explicit"],
            "instruction_reasoning": float(np.mean([by[c] for c in CATEGORIES if c != "explicit"])),
            "instruction_by_category": by,
            "detail": float(np.mean([s["detail"] for s in scores])),
            "psnr": float(np.mean([s["psnr"] for s in scores])),
            "ssim": float(np.mean([s["ssim"] for s in scores])),
        }
    plans_ok = np.mean([fam.understanding.plan(e.instruction) == e.plan for e, _ in chosen])
    res["plan_exact"] = float(plans_ok)
    return res


def _params(folder: Path) -> int:
    from safetensors import safe_open

    n = 0
    for f in folder.glob("*.safetensors"):
        with safe_open(str(f), "pt") as st:
            for k in st.keys():
                n += int(np.prod(st.get_slice(k).get_shape()))
    return n


def _decoder_line(m: dict | None) -> str:
    if not m:
        return "not run"
    b, a = m["heldout_before"], m["heldout_after"]
    wide = (f"a fresh decoder {m['decoder_base_dim']} wide (the encoder: {m['encoder_base_dim']}), "
            f"{m['crop_steps']} steps on latent-aligned crops then {m['steps'] - m['crop_steps']} on whole clips; "
            if m.get("crop_steps") else "")
    return (f"{wide}round-trip instruction score {b['instruction']:.3f} → **{a['instruction']:.3f}**, PSNR {b['psnr']:.2f} → "
            f"{a['psnr']:.2f} dB, frame 0 {b['psnr_frame0']:.2f} → {a['psnr_frame0']:.2f} dB")


def _vae_recipe(m: dict) -> str:
    """The VAE's phases as the stage recorded them (families trained before the phases existed had only the base)."""
    ph = m.get("phases") or {"base": m.get("steps", 0), "texture": 0, "settle": 0}
    text = f"17-frame 32×32 crops then whole 64×64×17 clips ({ph['base']} steps)"
    if ph["texture"] or ph["settle"]:
        text += (f", then crops around shapes with shape pixels weighted 8× ({ph['texture']} steps) and whole clips "
                 f"again ({ph['settle']} steps)")
    return text


def _vae_layout(family: Path) -> str:
    cfg = json.loads((family / "light" / "vae" / "config.json").read_text())
    gen = json.loads((family / "light" / "transformer" / "config.json").read_text())
    patch = gen.get("patch_size", [1, 2, 2])
    return (f"{cfg.get('scale_factor_spatial', 8)}× spatial, {cfg.get('scale_factor_temporal', 4)}× temporal, "
            f"{cfg['z_dim']} channels; the generators patchify {patch[1]}×{patch[2]} latent cells")


def _bridge_line(metrics: dict) -> str:
    """The generators' carry into a new VAE (training/stage_bridge.py), where the family went through one."""
    fit, light, heavy = metrics.get("bridge"), metrics.get("light_bridge"), metrics.get("heavy_bridge")
    if not (fit and light and heavy):
        return ""
    return (f"\n- The generators above were trained on an earlier 8× VAE and carried into this one "
            f"(`training/stage_bridge.py`): their blocks kept, their patch embedding and output projection mapped "
            f"through ridge least-squares maps between the two VAEs' tokens of {fit['clips']} training clips (the map "
            f"explains {fit['light']['explained_old']:.2f} of the old tokens' energy), then light + connector "
            f"continued {light['steps']} steps with free phrasings (final loss {light['loss']:.4f}) and heavy "
            f"{heavy['steps']} steps (final loss {heavy['loss']:.4f}) on this VAE's latents.")


def _architecture(folder: Path) -> str:
    """The transformers class a saved model names in its config (the LM may be causal or encoder-decoder)."""
    return (json.loads((folder / "config.json").read_text()).get("architectures") or ["?"])[0]


def _phrasing_line(metrics: dict) -> str:
    lm, light = metrics.get("lm_phrasing"), metrics.get("light_phrasing")
    if not lm:
        return "not run (the LM knows the template language only)."
    first = metrics.get("lm_phrasing_round1")
    text = (f"the LM fine-tuned {lm['steps']} steps"
            + (f" (a second round, after a first of {first['steps']} steps on narrower wordings)" if first else "")
            + " on rows a third template instructions, two thirds free phrasings (final loss "
            f"{lm.get('loss', float('nan')):.4f}), then light + connector {(light or {}).get('steps', '-')} steps with "
            "free phrasings beside the template instructions. Omitted size, texture, place and background get "
            "the world's defaults (small, plain, center / left–right / three spread places, gray checked). The LM's "
            "tokenizer reads clear synonyms as the world's word and has a piece per training word; the text encoder "
            "is unchanged, so the heavy generator is too. Plans are decoded under the family's plan grammar "
            "(understanding/plan_grammar.json), keeping what each shape's own words state and the motions a "
            "reasoning rule resolves to, read by the rule's form (docs/plain_phrasing.md).")
    bench, old = metrics.get("phrasing_bench"), metrics.get("phrasing_bench_before")
    if bench:
        def pair(name, key, fmt):
            now = bench[name].get(key, float("nan"))
            was = f"{old[name].get(key, float('nan')):{fmt}} → " if old else ""
            return f"{was}**{now:{fmt}}**"

        text += (" Mini VR-Bench (`python -m bench.vrbench_phrasing`, 216 template instructions and 216 held-out "
                 "phrasings" + (", the family it replaced → this one" if old else "") + "): template set: plans parse "
                 f"{pair('template', 'parse', '.2f')}, honour every stated attribute and motion "
                 f"{pair('template', 'honour', '.3f')}, light instruction score {pair('template', 'instruction', '.3f')};"
                 f" held-out phrasings: parse {pair('heldout', 'parse', '.2f')}, honour {pair('heldout', 'honour', '.3f')},"
                 f" light instruction score {pair('heldout', 'instruction', '.3f')}.")
    return text


def write_card(run, out: Path, metrics: dict) -> None:
    """MODEL_CARD.md from the measured numbers of this run (never edited by hand, so it cannot go stale)."""
    parts = {"light/transformer": "light generator (WanTransformer3DModel + absolute positions)",
             "heavy/transformer": "heavy generator (WanTransformer3DModel + absolute positions)", "light/vae": "shared VAE (AutoencoderKLWan)",
             "light/text_encoder": "shared text encoder (UMT5EncoderModel)",
             "understanding/lm": f"understanding LM ({_architecture(out / 'understanding' / 'lm')})",
             "understanding/connector": "connector (learned queries)"}
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    rows = "\n".join(f"| {desc} | `{sub}/` | {_params(out / sub) / 1e6:.2f} M |" for sub, desc in parts.items())

    def steps(m):
        m = m or {}
        return f"{m.get('steps', '-')} of {m['of_steps']} (snapshot, still training)" if m.get("partial") else \
            m.get("steps", "-")

    wall = "\n".join(f"| {s} | {steps(metrics.get(s))} | "
                      f"{(metrics.get(s) or {}).get('wall_s', float('nan')) / 60:.1f} |"
                      for s in STAGES)
    vae, lm, qe = metrics.get("vae") or {}, metrics.get("lm") or {}, metrics.get("quick_eval") or {}
    plan = lm.get("heldout_exact_plan") or {}

    def q(mode, key):
        v = (qe.get(mode) or {}).get(key)
        return "n/a" if v is None else f"{v:.3f}"

    lm_objective = f"reading the instruction {lm.get('readings', 1)}× before the plan, loss on the plan"
    if lm.get("binding_weight"):
        lm_objective += (f" plus a binding objective (weight {lm['binding_weight']}, final loss "
                         f"{lm.get('binding_loss', float('nan')):.4f}): at its middle layer every token of a shape "
                         "sentence from its place words on names that shape's size, colour, texture and kind")
        if lm.get("binding_motion"):
            lm_objective += (", and one layer before the last its resolved motion (in the plan, and in the last "
                             "reading, which comes after the rule)")
        lm_objective += ", through heads dropped after training"
    cfg = json.loads((out / "lumos.json").read_text())
    text = f"""# lumos-mini — the embedded default family of Lumos Studio

Small, honestly trained models for the procedural **mini world** (`miniworld`: one to three coloured,
textured shapes moving on textured backgrounds, 64×64, 17 frames), in the same formats as the real Wan2.1 pair,
so the whole draft → refine loop (docs/design.md §3) runs offline on a CPU laptop and the method (UPFB, docs/design.md §2) is
measurable. {size / 1e6:.1f} MB in all, safetensors only.

| part | folder | parameters |
|---|---|---|
{rows}

Mirrors the paper's stage 1: the light generator is conditioned on the *mixed context* (UMT5 text tokens, padded to
{cfg.get('max_sequence_length')}, then {NUM_Q} connector tokens from the understanding LM's last hidden states over
the instruction and its plan). Unlike the paper, the text tokens are those of the understanding block's **plan**, not of
the instruction (`lumos.json` `"light_text": "plan"`): through the connector alone the plan reached the light generator
weakly (training/README.md measures it); the heavy generator — {_params(out / 'heavy/transformer') / max(1, _params(out / 'light/transformer')):.1f}× the light one's
parameters — sees the raw instruction's text tokens only and was trained on explicit instructions only, like the
paper's frozen pretrained G_H: larger and trained longer, but never taught to resolve reasoning instructions.

## How it was trained

One command reproduces every file: `python -m training.train_all{'' if run.name == 'full' else ' --' + run.name}`
(seeded, fp32, resumable; see training/README.md). Data: the world's train split only — every
scene whose plan hashes into the bench bucket is rejected, so the {len(__import__('miniworld', fromlist=['bench_set']).bench_set())}
mini VR-Bench instructions are never trained on.

| stage | steps | wall time on the dev machine (min; one or two threads of a shared 2-core CPU with other work; `train_all` runs light and heavy side by side) |
|---|---|---|
{wall}

- Tokenizer: Unigram over the world's words (+ letters, so any text tokenizes), lower-cases. Text encoder:
  masked-token prediction on instructions and plans (final MLM loss {(metrics.get('text') or {}).get('mlm_loss', float('nan')):.3f}) plus a binding
  objective: every token of a shape sentence also predicts that sentence's size, colour, texture, kind, place and
  motion (`training/clause_labels.py`; final loss {(metrics.get('text') or {}).get('binding_loss', float('nan')):.3f}), so the state at "top left" says which shape is there.
- Understanding LM: instruction → plan, {lm_objective}.
  Held-out exact plan match (greedy): {json.dumps({k: round(v, 2) for k, v in plan.items()})}.
- Free phrasing (`training/stage_phrasing.py`, `miniworld/phrasing.py`): {_phrasing_line(metrics)}
- VAE ({_vae_layout(out)}): L1 + MSE, {_vae_recipe(vae)}. Held-out PSNR **{vae.get('heldout_psnr', float('nan')):.2f} dB** (on shape pixels
  {vae.get('heldout_psnr_shapes', float('nan')):.2f} dB)
  (8× area-down + bicubic-up baseline {vae.get('blur_baseline_psnr', float('nan')):.2f} dB on the same clips).
  latents_mean / latents_std in `light/vae/config.json` are the encoder's statistics on training clips.
- VAE decoder tuned alone (encoder frozen, so the latent space is unchanged), frame 0 weighted 4×: held-out
  {_decoder_line(metrics.get('decoder'))}.
- Generators: flow matching (Wan convention, σ from the shift-{cfg.get('flow_shift')} schedule), 10 % condition dropout
  to "" for CFG, EMA weights; the loss weighs latent cells covered by shapes up to 5× (`training/shape_cover.py`).
  Recipes (peak LR, batch, shape weight): light {json.dumps((metrics.get('light') or {}).get('recipe'))}, heavy
  {json.dumps((metrics.get('heavy') or {}).get('recipe'))}. Final losses (shape-weighted where the recipe says so):
  light {(metrics.get('light') or {}).get('loss', float('nan')):.4f}, heavy {(metrics.get('heavy') or {}).get('loss', float('nan')):.4f}.
- Both generators are `PositionalWanTransformer3DModel` (`engine/positional_transformer.py`): Wan's transformer with a
  learned absolute position embedding (time + row + column) added to the patch embedding, because RoPE alone is
  relative and cannot tell a place in a featureless latent. `transformer/config.json` names the class; load it with
  `engine.positional_transformer.load_transformer(folder)` (stock diffusers: `WanPipeline.from_pretrained(light,
  transformer=load_transformer(light / "transformer"))`; `light/model_index.json` names Wan's base class).{_bridge_line(metrics)}

## Measured (reference sampler, light only / heavy only, {cfg.get('steps')} steps, first bench instructions per category)

| | instruction, explicit | instruction, reasoning | detail | PSNR | SSIM |
|---|---|---|---|---|---|
| light | {q('light', 'instruction_explicit')} | {q('light', 'instruction_reasoning')} | {q('light', 'detail')} | {q('light', 'psnr')} | {q('light', 'ssim')} |
| heavy | {q('heavy', 'instruction_explicit')} | {q('heavy', 'instruction_reasoning')} | {q('heavy', 'detail')} | {q('heavy', 'psnr')} | {q('heavy', 'ssim')} |

The full mini VR-Bench over every mode (UPFB curve, switch, light lead) is `python -m bench.vrbench`; results in
docs/vrbench.md.

## Limits

- Only the mini world: its shapes, colours, textures, places and motions, at 64×64×17 (8 fps). Anything else in a
  prompt is outside what these models know; the tokenizer spells unknown words letter by letter.
- Small and trained for about 5 hours on 2 CPU cores: the numbers above and in docs/vrbench.md are what it does, not
  what the real Wan pair does. Shapes come out in the named colours, mostly at the named places; motions and reasoning
  instructions fail more often. How much more correct detail the heavy generator draws than the light one, and what
  the hand-off keeps of each, is measured by `python -m bench.handoff_curve` (docs/handoff.md); both are capped by
  the shared VAE, whose round trip of the ground truth the same bench reports. A linear probe (`scripts/text_binding_probe.py`) finds a shape's colour in the shared text encoder's
  state at its place words (and the place at its colour word) on every held-out shape; the connector's bidirectional
  layer and slot supervision bind the LM's states, and the plan's text tokens carry the rest. A wrong plan from the LM
  means a wrong clip: edit the plan.
- The CFG scales in `lumos.json` come from `training/tune.py` on a validation draw, never the bench
  (`guidance_tuning.json` keeps the scores of the last tuning and which scale won).
- The understanding LM knows the world's rule types (relation, negation, comparison, counting, cause–effect) in the
  template language and in the free phrasings it was fine-tuned on; `lumos.json` `"vocabulary"` lists every word it
  was trained on, and a word outside it (spelt in letter pieces) may be misread. The plan it writes can be wrong, and
  the app lets the user edit it.
"""
    atomic_write_text(out / "MODEL_CARD.md", text)


def record_metrics(run, family: Path, updates: dict) -> dict:
    """Merge `updates` into a family's training_metrics.json (atomic) and rewrite its MODEL_CARD.md from them."""
    family = Path(family)
    path = family / "training_metrics.json"
    metrics = json.loads(path.read_text()) if path.exists() else {}
    metrics.update(updates)
    atomic_write_text(path, json.dumps(metrics, indent=2, default=float))
    write_card(run, family, metrics)
    return metrics


def export(run, out: Path = FAMILY_DIR, eval_per_category: int = 2, snapshot: bool = False) -> dict:
    """snapshot: export unfinished generator stages from their last checkpoints (marked partial in the metrics)."""
    from .stage_gen import snapshot as take_snapshot

    timer = Timer()
    # each heavy continuation after the stage before it: an unfinished one overwrites the finished one's weights
    partial = {stage: take_snapshot(run, which, stage) for which, stage in
               (("light", "light"), ("heavy", "heavy"), ("heavy", "heavy_refine"), ("heavy", "heavy_detail"))
               } if snapshot else {}
    assemble(run, out)
    metrics = {s: run.done(s) or partial.get(s) for s in STAGES}
    if eval_per_category:
        metrics["quick_eval"] = quick_eval(out, eval_per_category)
        log.info("quick eval: %s", json.dumps(metrics["quick_eval"]))
    metrics["wall_s_total"] = sum((m or {}).get("wall_s", 0) for m in metrics.values() if isinstance(m, dict))
    metrics["budget"] = run.name
    atomic_write_text(run.root / "metrics.json", json.dumps(metrics, indent=2, default=float))
    atomic_write_text(out / "training_metrics.json", json.dumps(metrics, indent=2, default=float))
    write_card(run, out, metrics)
    log.info("export done in %.0f s", timer.s)
    return metrics


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    add_common_args(p)
    p.add_argument("--out", type=Path, default=FAMILY_DIR)
    p.add_argument("--eval", type=int, default=2, help="bench instructions per category for the quick check")
    p.add_argument("--card-only", action="store_true", help="rewrite MODEL_CARD.md from the run's metrics.json")
    p.add_argument("--snapshot", action="store_true",
                   help="export the light/heavy generators from their last checkpoints if still training")
    a = p.parse_args(argv)
    run = run_from_args(a)
    if a.card_only:
        metrics = json.loads((run.root / "metrics.json").read_text())
        write_card(run, a.out, metrics)
        return
    export(run, a.out, a.eval, snapshot=a.snapshot)


if __name__ == "__main__":
    main()
