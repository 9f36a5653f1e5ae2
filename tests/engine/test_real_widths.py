"""The REAL Wan2.1 widths on CPU: the 1.3B and 14B transformers and umt5-xxl at their published widths (heads, head
dim, FFN, text dim: devtools/wan_configs.py) but one layer deep, umt5-xxl with a 512-piece vocabulary, and the real
VAE config, all with random weights, saved in the real diffusers layout (model_index.json, transformer/, vae/,
text_encoder/, tokenizer/, scheduler/), loaded through the app's own loader (Runtime.load with a ModelSpec naming
the two folders) and run for one UPFB render at 32×32 × 5 frames.

The weights are saved in bfloat16, as the real releases ship them (≈ 1.9 GB on disk; float32 took 3.7 GB and a CI
run once ran out of disk), and loaded as float32. Everything runs in a child process so that its peak RSS is its own
(float32 on CPU: ≈ 3.5 GB of weights, the 14B block alone ≈ 1.4 GB); the test asserts it stays under 10 GB, and
removes the saved models when it is done, passed or not. Run this file as a script (`python
tests/engine/test_real_widths.py FOLDER`) to see the numbers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VOCAB = 512
PEAK_RSS_LIMIT = 10 << 30


def _tokenizer():
    from transformers import T5Tokenizer

    from devtools.tiny_models import WORDS

    pieces = ["\u2581" + w for w in WORDS]
    pieces += [f"\u2581w{i}" for i in range(VOCAB - 3 - len(pieces))]
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [(p, -float(i + 1)) for i, p in enumerate(pieces)]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def _config(cfg: dict, **overrides) -> dict:
    out = {k: v for k, v in cfg.items() if not k.startswith("_") and k not in ("model_type",)}
    out.update(overrides)
    return out


def build_real_width_pair(root: Path) -> tuple[Path, Path]:
    """Save light/ (a WanPipeline: the 1.3B width, umt5-xxl width, real VAE) and heavy/transformer/ (the 14B width)."""
    import torch
    from diffusers import AutoencoderKLWan, WanPipeline, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    from devtools.tiny_models import make_scheduler
    from devtools.wan_configs import UMT5_XXL_ENCODER, WAN21_1_3B_TRANSFORMER, WAN21_14B_TRANSFORMER, WAN_VAE

    torch.manual_seed(0)
    te_cfg = _config(UMT5_XXL_ENCODER, num_layers=1, vocab_size=VOCAB)
    text_encoder = UMT5EncoderModel(UMT5Config(**te_cfg, pad_token_id=0, eos_token_id=1,
                                               decoder_start_token_id=0)).eval()
    vae = AutoencoderKLWan(**_config(WAN_VAE)).eval()
    light = WanTransformer3DModel(**_config(WAN21_1_3B_TRANSFORMER, num_layers=1)).eval()
    pipe = WanPipeline(tokenizer=_tokenizer(), text_encoder=text_encoder, vae=vae, transformer=light,
                       scheduler=make_scheduler())
    pipe.to(torch.bfloat16).save_pretrained(root / "light", safe_serialization=True)
    del pipe, light, vae, text_encoder
    heavy = WanTransformer3DModel(**_config(WAN21_14B_TRANSFORMER, num_layers=1)).eval()
    heavy.to(torch.bfloat16).save_pretrained(root / "heavy" / "transformer", safe_serialization=True)
    return root / "light", root / "heavy"


def run(root: Path) -> dict:
    """Build, load through the app's loader, render once; the numbers the test checks."""
    import resource

    import numpy as np
    import torch

    from engine.api import ModelSpec, RenderRequest, UPFBParams
    from engine.events import StepEvent
    from engine.runtime import Runtime

    torch.set_num_threads(max(1, min(8, os.cpu_count() or 1)))
    t0 = time.perf_counter()
    light_dir, heavy_dir = build_real_width_pair(root)
    t_build = time.perf_counter() - t0
    rt = Runtime(cache_bytes=64 << 20, preview=False)
    rt.load(ModelSpec(light=str(light_dir), heavy=str(heavy_dir), device="cpu", dtype="float32"))
    models = rt.models
    widths = {"light": models.light.config.num_attention_heads * models.light.config.attention_head_dim,
              "heavy": models.heavy.config.num_attention_heads * models.heavy.config.attention_head_dim,
              "text": models.text_encoder.config.d_model}
    t_load = time.perf_counter() - t0 - t_build
    req = RenderRequest(prompt="a small red striped circle moves to the left", negative_prompt="blurry", steps=2,
                        num_frames=5, width=32, height=32, seed=7, guidance_light=5.0, guidance_heavy=4.0,
                        mode="upfb", handoff=0.6, upfb=UPFBParams(light_lead=1))
    events = []
    latents = rt.sample(req, emit=events.append)
    frames = rt.decode(latents)
    t_render = time.perf_counter() - t0 - t_build - t_load
    lat = latents.float()
    return {
        "widths": widths,
        "latent_shape": list(lat.shape), "latents_finite": bool(torch.isfinite(lat).all()),
        "latents_std": float(lat.std()),
        "frames_shape": list(frames.shape), "frames_dtype": str(frames.dtype),
        "frames_finite": bool(np.isfinite(frames.astype(np.float32)).all()),
        "steps": len([e for e in events if isinstance(e, StepEvent)]),
        "build_s": round(t_build, 1), "load_s": round(t_load, 1), "render_s": round(t_render, 1),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


@pytest.mark.slow
def test_real_widths_load_and_render_one_upfb_step(tmp_path):
    import shutil

    started = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, __file__, str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                              timeout=300)
        saved_mb = sum(f.stat().st_size for f in tmp_path.rglob("*") if f.is_file()) / 2**20
    finally:  # gigabytes: never left behind, whatever happened
        for folder in ("light", "heavy"):
            shutil.rmtree(tmp_path / folder, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert saved_mb < 2500, f"{saved_mb:.0f} MB saved: the models are meant to be in bfloat16"
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["widths"] == {"light": 1536, "heavy": 5120, "text": 4096}
    assert out["latent_shape"] == [1, 16, 2, 4, 4]
    assert out["latents_finite"] and out["latents_std"] > 0
    assert out["frames_shape"] == [5, 32, 32, 3] and out["frames_dtype"] == "uint8"
    assert out["steps"] == 2
    assert out["peak_rss_bytes"] < PEAK_RSS_LIMIT, out
    print(f"real widths: {out}, {time.perf_counter() - started:.1f} s in all")


if __name__ == "__main__":
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    print(json.dumps(run(Path(sys.argv[1]))))
