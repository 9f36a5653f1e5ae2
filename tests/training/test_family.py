"""The shipped lumos-mini family: loads offline in the contracted layout, and really was trained."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
FAMILY = Path(__file__).resolve().parents[2] / "resources" / "models" / "lumos-mini"
pytestmark = pytest.mark.skipif(not (FAMILY / "lumos.json").exists(), reason="no shipped family yet")


def test_size_and_card():
    size = sum(p.stat().st_size for p in FAMILY.rglob("*") if p.is_file())
    assert size <= 50e6, f"family is {size / 1e6:.1f} MB"
    assert (FAMILY / "MODEL_CARD.md").exists()
    assert not list(FAMILY.rglob("*.bin")) and not list(FAMILY.rglob("*.pt")) and not list(FAMILY.rglob("*.pkl"))


def test_loads_offline_in_the_contracted_layout():
    import torch
    from diffusers import UniPCMultistepScheduler, WanPipeline

    from engine.positional_transformer import PositionalWanTransformer3DModel, load_transformer
    from engine.understanding import UnderstandingBlock

    cfg = json.loads((FAMILY / "lumos.json").read_text())
    assert {"name", "max_sequence_length", "width", "height", "num_frames", "steps", "guidance_light",
            "guidance_heavy", "fps"} <= set(cfg)
    # Stock diffusers loads the pipeline folder; the transformers are Wan's with absolute positions (load_transformer).
    light = load_transformer(FAMILY / "light" / "transformer")
    assert isinstance(light, PositionalWanTransformer3DModel)
    pipe = WanPipeline.from_pretrained(FAMILY / "light", transformer=light, local_files_only=True)
    assert isinstance(pipe.scheduler, UniPCMultistepScheduler)
    assert pipe.scheduler.config.prediction_type == "flow_prediction" and pipe.scheduler.config.use_flow_sigmas
    heavy = load_transformer(FAMILY / "heavy" / "transformer")
    for k in ("in_channels", "out_channels", "text_dim", "patch_size"):
        assert heavy.config[k] == pipe.transformer.config[k]
    n_light = sum(p.numel() for p in pipe.transformer.parameters())
    assert sum(p.numel() for p in heavy.parameters()) >= 3 * n_light
    und = UnderstandingBlock.from_pretrained(FAMILY / "understanding")
    assert und.text_dim == pipe.transformer.config.text_dim
    assert und.context("").shape == (1, und.num_queries, und.text_dim)
    # The VAE config carries the statistics the latents were normalised with.
    assert len(pipe.vae.config.latents_mean) == pipe.vae.config.z_dim
    assert torch.tensor(pipe.vae.config.latents_std).min() > 0


def _budget() -> str:
    p = FAMILY / "training_metrics.json"
    return json.loads(p.read_text()).get("budget", "full") if p.exists() else "full"


@pytest.mark.skipif(_budget() != "full", reason="the shipped family is a first, briefly trained one (--quick)")
# Measured on the shipped family v2: own 0.96 vs other 0.00 (the family before it: 0.81). Earlier families scored own
# 0.19 and would fail this margin; the first recipe's 0.06.
def test_seeded_render_follows_explicit_instructions_above_chance():
    """Light-only renders of held-out explicit instructions score clearly higher on their own instruction than on
    other instructions' scenes (chance), with fixed seeds."""
    from miniworld import bench_set, instruction_score
    from training.sample import MiniFamily

    fam = MiniFamily(FAMILY)
    items = [(e, s) for e, s in bench_set() if e.category == "explicit"][:6]
    clips = fam.generate([e.instruction for e, _ in items], mode="light", seeds=[s for _, s in items])
    own = np.mean([instruction_score(c, e.scene) for c, (e, _) in zip(clips, items)])
    other = np.mean([instruction_score(c, items[(i + 1) % len(items)][0].scene) for i, c in enumerate(clips)])
    assert own >= other + 0.5, (own, other)


@pytest.mark.skipif(_budget() != "full", reason="the shipped family is a first, briefly trained one (--quick)")
# Measured on these 10 instructions: light 0.93 vs heavy 0.50 (family v2; the family before it: 0.68 vs 0.44); an
# earlier light scored 0.73 with the plan's text tokens and 0.58 without them (the connector alone), which this
# margin, the bench's "clearly below", rejects.
def test_light_follows_reasoning_instructions_where_heavy_cannot():
    """Only the light generator gets the understanding block's plan (its text tokens and the connector); the heavy
    one reads the raw reasoning instruction. Same seeds, two held-out instructions of every reasoning category."""
    from miniworld import REASONING_CATEGORIES, bench_set, instruction_score
    from training.sample import MiniFamily

    fam = MiniFamily(FAMILY)
    items = [it for c in REASONING_CATEGORIES for it in [x for x in bench_set() if x[0].category == c][:2]]
    texts, seeds = [e.instruction for e, _ in items], [s for _, s in items]
    scores = {mode: float(np.mean([instruction_score(c, e.scene) for c, (e, _) in
                                   zip(fam.generate(texts, mode=mode, seeds=seeds), items)]))
              for mode in ("light", "heavy")}
    assert scores["light"] >= scores["heavy"] + 0.15, scores


def test_shared_vae_keeps_what_the_instruction_scorer_checks():
    """Held-out ground-truth clips through the shipped VAE (encode, decode) keep their instruction score: the
    decoder tuned with frame 0 weighted up keeps the first frame's shapes whole and in hue. Measured 1.000 on these
    24 clips (v2; 0.981 on the family before it); the first VAE before that stage scored 0.914 and fails."""
    from diffusers import AutoencoderKLWan

    from miniworld import instruction_score, render
    from training.data import eval_scenes
    from training.stage_vae import round_trip

    vae = AutoencoderKLWan.from_pretrained(FAMILY / "light" / "vae")
    scenes = eval_scenes(24)
    rec = round_trip(vae, np.stack([render(s) for s in scenes]), batch=8)
    score = float(np.mean([instruction_score(r, s) for r, s in zip(rec, scenes)]))
    assert score >= 0.95, score


@pytest.mark.skipif(_budget() != "full", reason="the shipped family is a first, briefly trained one (--quick)")
def test_the_full_budget_is_the_shipped_recipe():
    """`python -m training.train_all` reproduces the shipped family: its recorded steps are the full budget's, so a
    budget change without retraining (or a retrain without the budget change) is caught here."""
    from training.common import Budget

    b, got = Budget(), json.loads((FAMILY / "training_metrics.json").read_text())
    assert got["vae"]["phases"] == {"base": b.vae_steps + b.vae_full_steps, "texture": b.vae_texture_steps,
                                    "settle": b.vae_settle_steps}
    steps = {stage: got[stage]["steps"]
             for stage in ("text", "lm", "decoder", "light", "heavy", "heavy_refine", "heavy_detail")}
    assert steps == {"text": b.text_steps, "lm": b.lm_steps, "decoder": b.decoder_crop_steps + b.decoder_steps, "light": b.light_steps,
                     "heavy": b.heavy_steps, "heavy_refine": b.heavy_refine_steps,
                     "heavy_detail": b.heavy_detail_steps}


def test_the_shipped_generators_mirror_the_papers_asymmetry():
    """Issue 18: light is the recipe's LIGHT size and heavy ≈ 10× its parameters (the paper: 1.3B vs 14B)."""
    from safetensors import safe_open

    from training.stage_gen import HEAVY, LIGHT

    def params(which):
        with safe_open(FAMILY / which / "transformer" / "diffusion_pytorch_model.safetensors", "pt") as f:
            return sum(int(np.prod(f.get_slice(k).get_shape())) for k in f.keys())

    for which, size in (("light", LIGHT), ("heavy", HEAVY)):
        cfg = json.loads((FAMILY / which / "transformer" / "config.json").read_text())
        assert {k: cfg[k] for k in size} == size, which
    assert 8 <= params("heavy") / params("light") <= 12
