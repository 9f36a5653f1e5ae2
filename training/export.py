"""Assemble a run's weights into a family folder (default resources/models/lumos-mini/) and evaluate it.

Layout (a contract with engine/models.py)::

    light/                 full diffusers WanPipeline folder (model_index.json, scheduler/, text_encoder/,
                           tokenizer/, transformer/, vae/)
    heavy/transformer/     bare WanTransformer3DModel folder, same in/out channels, text_dim and patch as light
    understanding/lm/      causal LM + tokenizer;   understanding/connector/   Connector
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

from .common import FAMILY_DIR, Timer, add_common_args, log, run_from_args
from .stage_gen import FLOW_SHIFT, make_scheduler
from .stage_text import MAX_SEQUENCE_LENGTH

DEFAULTS = {"name": "lumos-mini", "max_sequence_length": MAX_SEQUENCE_LENGTH, "width": 64, "height": 64,
            "num_frames": 17, "steps": 20, "guidance_light": 4.0, "guidance_heavy": 4.0, "fps": 8,
            "flow_shift": FLOW_SHIFT}


def assemble(run, out: Path) -> Path:
    """Write the family folder from run/export (atomically: built next to `out`, then swapped in)."""
    from diffusers import AutoencoderKLWan, WanPipeline, WanTransformer3DModel
    from transformers import AutoTokenizer, UMT5EncoderModel

    src = run.export
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    pipe = WanPipeline(
        tokenizer=AutoTokenizer.from_pretrained(src / "tokenizer", local_files_only=True),
        text_encoder=UMT5EncoderModel.from_pretrained(src / "text_encoder", local_files_only=True),
        vae=AutoencoderKLWan.from_pretrained(src / "vae"),
        transformer=WanTransformer3DModel.from_pretrained(src / "light" / "transformer"),
        scheduler=make_scheduler(),
    )
    pipe.save_pretrained(tmp / "light", safe_serialization=True)
    shutil.copytree(src / "heavy" / "transformer", tmp / "heavy" / "transformer")
    shutil.copytree(src / "understanding", tmp / "understanding")
    cfg = dict(DEFAULTS)
    if (out / "lumos.json").exists():  # keep tuned defaults (guidance, steps) across re-exports
        old = json.loads((out / "lumos.json").read_text())
        cfg.update({k: old[k] for k in ("steps", "guidance_light", "guidance_heavy", "fps") if k in old})
    (tmp / "lumos.json").write_text(json.dumps(cfg, indent=2) + "\n")
    card = out / "MODEL_CARD.md"
    if card.exists():
        shutil.copy(card, tmp / "MODEL_CARD.md")
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
    from engine.miniworld import CATEGORIES, bench_set, score_clip

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


def export(run, out: Path = FAMILY_DIR, eval_per_category: int = 2) -> dict:
    timer = Timer()
    assemble(run, out)
    metrics = {s: run.done(s) for s in ("text", "lm", "vae", "latents", "light", "heavy")}
    if eval_per_category:
        metrics["quick_eval"] = quick_eval(out, eval_per_category)
        log.info("quick eval: %s", json.dumps(metrics["quick_eval"]))
    metrics["wall_s_total"] = sum((m or {}).get("wall_s", 0) for m in metrics.values() if isinstance(m, dict))
    (run.root / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
    (out / "training_metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
    log.info("export done in %.0f s", timer.s)
    return metrics


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    add_common_args(p)
    p.add_argument("--out", type=Path, default=FAMILY_DIR)
    p.add_argument("--eval", type=int, default=2, help="bench instructions per category for the quick check")
    a = p.parse_args(argv)
    export(run_from_args(a), a.out, a.eval)


if __name__ == "__main__":
    main()
