"""Shared pieces of the mini-family training: run folders, budgets, seeding, checkpoints, logging.

Every stage reads and writes under one *run folder* (default ``training/runs/<name>``, git-ignored; or
``$LUMOS_TRAIN_DIR/<name>``): ``<stage>/ckpt.pt`` holds the resumable state (model, optimiser, step, rng),
``<stage>/done.json`` marks a finished stage with its wall time and metrics, and ``export/`` the saved weights.
Checkpoints are torch state for resuming only (our own files, never shipped); shipped weights are safetensors.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger("lumos.train")

REPO = Path(__file__).resolve().parent.parent
FAMILY_DIR = REPO / "resources" / "models" / "lumos-mini"
# In the working tree (git-ignored) so that a run outlives the session that started it; LUMOS_TRAIN_DIR overrides.
DEFAULT_RUNS = Path(os.environ.get("LUMOS_TRAIN_DIR", REPO / "training" / "runs"))


@dataclass
class Budget:
    """How long each stage trains (steps) and how much data it sees. `tiny()` is the test-suite budget."""

    corpus: int = 60000          # instruction/plan pairs for tokenizer, text encoder and LM
    scenes: int = 6000           # rendered training clips for the generators
    text_steps: int = 2000
    lm_steps: int = 4000
    vae_steps: int = 3000
    vae_full_steps: int = 300    # final steps on full 64×64×17 clips (the rest on 17-frame 32×32 crops)
    # VAE phases after the base schedule (stage_vae.phase_at). The base VAE is undertrained: 3600 more steps lift the
    # bench's round-trip detail 0.933 → 0.95; the texture crops add ~0.6 dB on shape pixels over plain steps
    # (training/README.md). 0 and 0 give the base recipe alone.
    vae_texture_steps: int = 3000  # 32×32 crops around shapes, shape pixels weighted 8×
    vae_settle_steps: int = 600    # then whole clips again, for the backgrounds
    vae_z_dim: int = 16          # latent channels (issue 18 measures more: tokens do not grow with channels)
    vae_spatial: int = 8         # the VAE's spatial factor (stage_vae.VAE_LAYOUTS; 4 on trial, issue 18)
    vae_temporal: int = 4        # its temporal factor (stage_vae.TEMPORAL_DOWNSAMPLE; 2 on trial, issue 18)
    decoder_steps: int = 300     # the decoder alone, encoder frozen (stage_decoder), whole clips
    # A wider, fresh decoder on the same encoder (None: tune the VAE stage's own); its first steps on crops. Issue 18:
    # 48 wide (the encoder: 32) lifted the round trip of the truth and both generators' scores (docs/handoff.md).
    decoder_base_dim: int | None = 48
    decoder_crop_steps: int = 1600
    # The light generator's size (stage_gen.light_size): light_heads × light_head_dim wide (at least the 64 latent
    # values a token), FFN 4× its width, light_layers blocks. Issue 18: as small as it can be while it keeps its
    # instruction score.
    light_heads: int = 3
    light_head_dim: int = 32
    light_layers: int = 3
    light_steps: int = 16000    # the 1/10-size light (issue 18) needed more than the 9000 of the 1.24M one
    heavy_steps: int = 6000     # 3600 left it far behind light (loss 0.24 vs 0.17, explicit 0.64): training/README
    heavy_refine_steps: int = 4000  # heavy continued (stage_handoff): the larger share of compute, as in the paper
    heavy_detail_steps: int = 3200  # a second continuation (stage_handoff.detail_heavy): heavy detail 0.782 → 0.788
    # Free-phrasing fine-tune (stage_phrasing): LM, then light + connector, from the weights above.
    phrasing_corpus: int = 36000   # LM rows, a third template instructions, two thirds training phrasings
    phrasing_lm_steps: int = 6600
    phrasing_light_steps: int = 4000  # the 0.56M light needed more than 800 to draw plans as well as the 1.24M one
    eval_clips: int = 16
    lm_eval_per_category: int = 12
    log_every: int = 50
    ckpt_every: int = 200

    @classmethod
    def tiny(cls) -> "Budget":
        """Every stage and every VAE phase for a few steps, so that the test suite runs all of their code."""
        return cls(corpus=600, scenes=16, text_steps=4, lm_steps=4, vae_steps=3, vae_full_steps=1,
                   vae_texture_steps=2, vae_settle_steps=1, decoder_crop_steps=2, decoder_steps=2, light_steps=3,
                   heavy_steps=3, heavy_refine_steps=2, heavy_detail_steps=2,
                   phrasing_corpus=40, phrasing_lm_steps=2, phrasing_light_steps=2, eval_clips=2, lm_eval_per_category=0, log_every=1, ckpt_every=2)

    @classmethod
    def quick(cls) -> "Budget":
        """A first, briefly trained family (about half an hour on one core): real weights, rough quality."""
        return cls(corpus=20000, scenes=1500, text_steps=300, lm_steps=800, vae_steps=400, vae_full_steps=30,
                   decoder_crop_steps=100, decoder_steps=50, light_steps=500, heavy_steps=500, heavy_refine_steps=200, heavy_detail_steps=100,
                   phrasing_corpus=6000,
                   phrasing_lm_steps=300, phrasing_light_steps=200, eval_clips=8, log_every=25, ckpt_every=100)


@dataclass
class Run:
    root: Path
    budget: Budget = field(default_factory=Budget)
    seed: int = 0
    threads: int = 1
    name: str = "full"  # budget name: full, quick or tiny

    def stage_dir(self, stage: str) -> Path:
        d = self.root / stage
        d.mkdir(parents=True, exist_ok=True)
        return d

    @property
    def export(self) -> Path:
        d = self.root / "export"
        d.mkdir(parents=True, exist_ok=True)
        return d

    def done(self, stage: str) -> dict | None:
        p = self.root / stage / "done.json"
        return json.loads(p.read_text()) if p.exists() else None

    def mark_done(self, stage: str, **info) -> None:
        p = self.stage_dir(stage) / "done.json"
        p.write_text(json.dumps(info, indent=2, default=float))
        log.info("stage %s done: %s", stage, info)

    def save_meta(self) -> None:
        (self.root / "run.json").write_text(json.dumps({"budget": asdict(self.budget), "seed": self.seed}, indent=2))


def setup(run: Run) -> None:
    import torch

    torch.set_num_threads(run.threads)
    seed_all(run.seed)
    run.root.mkdir(parents=True, exist_ok=True)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    fh = logging.FileHandler(run.root / "train.log")
    fh.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    log.addHandler(fh)
    log.setLevel(logging.INFO)


def seed_all(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def save_ckpt(path: Path, **state) -> None:
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_ckpt(path: Path) -> dict | None:
    import torch

    if not path.exists():
        return None
    # Our own resume files only (written by save_ckpt above); shipped weights are safetensors.
    return torch.load(path, map_location="cpu", weights_only=False)


class Timer:
    def __init__(self):
        self.t0 = time.time()

    @property
    def s(self) -> float:
        return time.time() - self.t0

    def resume(self, ckpt: dict | None) -> None:
        """Count the wall time already spent before a checkpoint (stages resumed across sessions)."""
        if ckpt:
            self.t0 -= float(ckpt.get("wall_s", 0.0))


# Budget fields the command line can set
BUDGET_FLAGS = ("scenes", "vae_steps", "vae_full_steps", "vae_texture_steps", "vae_settle_steps", "decoder_base_dim",
                "decoder_crop_steps", "decoder_steps", "light_heads", "light_head_dim", "light_layers",
                "heavy_steps")


def beside(run, a, child_args: list[str], what: str, work, extra: tuple[str, ...] = ()) -> None:
    """`work()` in this process while `python -m <child_args>` trains in a child process, one thread each: our
    models are small, so two one-thread runs use two cores better than one two-thread run (measured: 2 threads gave
    ~1.05x on the VAE). ``extra``: more arguments for the child."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", *child_args, "--run", str(run.root), "--seed", str(run.seed), "--threads", "1", *extra]
    cmd += ["--tiny"] if a.tiny else ["--quick"] if a.quick else []
    for name in BUDGET_FLAGS:  # the child trains on the same budget
        if getattr(a, name) is not None:
            cmd += [f"--{name.replace('_', '-')}", str(getattr(a, name))]
    child = subprocess.Popen(cmd, cwd=REPO)
    try:
        work()
    finally:
        if child.wait() != 0:
            raise SystemExit(f"{what} training failed (exit {child.returncode}); rerun to resume")


def add_family_args(p, family_help: str) -> None:
    """The arguments of a stage that rebuilds parts of a trained family: which family and where the new one goes."""
    p.add_argument("--from", dest="family", type=Path, default=FAMILY_DIR, help=family_help)
    p.add_argument("--out", type=Path, default=None, help="write the new family here (a new folder)")


def add_common_args(p) -> None:
    p.add_argument("--run", type=Path, default=None, help="run folder (default training/runs/<budget>)")
    p.add_argument("--tiny", action="store_true", help="a few steps per stage (tests)")
    p.add_argument("--quick", action="store_true", help="a first, briefly trained family")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--scenes", type=int, default=None,
                   help="rendered training scenes (default: the budget's; a run's latents are of this many)")
    p.add_argument("--vae-steps", type=int, default=None, help="VAE base steps on crops (full budget: 3000)")
    p.add_argument("--vae-full-steps", type=int, default=None, help="VAE base steps on whole clips after the crops (300)")
    p.add_argument("--vae-texture-steps", type=int, default=None,
                   help="VAE steps on crops around shapes after its base schedule (full budget: 3000)")
    p.add_argument("--vae-settle-steps", type=int, default=None, help="VAE steps on whole clips after the texture ones")
    p.add_argument("--decoder-base-dim", type=int, default=None,
                   help="width of the decoder the decoder stage trains on the frozen encoder (default: the budget's)")
    p.add_argument("--decoder-crop-steps", type=int, default=None, help="a wider decoder's first steps, on crops")
    p.add_argument("--decoder-steps", type=int, default=None, help="decoder steps on whole clips")
    p.add_argument("--light-heads", type=int, default=None, help="light generator attention heads (default 3)")
    p.add_argument("--light-head-dim", type=int, default=None, help="width of each light head (default 32)")
    p.add_argument("--light-layers", type=int, default=None, help="light generator blocks (default 3)")
    p.add_argument("--heavy-steps", type=int, default=None, help="heavy generator steps (default: the budget's)")


def run_from_args(a) -> Run:
    budget = Budget.tiny() if a.tiny else Budget.quick() if a.quick else Budget()
    for field_name in BUDGET_FLAGS:
        if getattr(a, field_name, None) is not None:
            setattr(budget, field_name, getattr(a, field_name))
    name = "tiny" if a.tiny else "quick" if a.quick else "full"
    root = a.run or DEFAULT_RUNS / name
    run = Run(root=Path(root), budget=budget, seed=a.seed, threads=a.threads, name=name)
    setup(run)
    run.save_meta()
    return run


def lr_at(step: int, total: int, peak: float, warmup: int = 50) -> float:
    """Linear warm-up then cosine decay to 10 % of peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * p)))
