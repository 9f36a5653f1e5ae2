"""Reproduce every weight of the lumos-mini family with one command.

    python -m training.train_all            # full budget (README states the wall time), resumable
    python -m training.train_all --quick    # a first, briefly trained family (~30 min on one core)
    python -m training.train_all --tiny --out /tmp/fam   # seconds; what the test suite runs

Stages, each also runnable alone and each skipped when its done.json exists (delete it to redo):
text (tokenizer + UMT5 encoder) → lm (understanding LM) → vae → latents (+ text embeddings) → light (+ connector)
→ heavy → export (family folder + quick evaluation). Interrupt at any time; the same command resumes from the last
checkpoint. Seeded; fp32; one thread by default (--threads).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import export as export_mod
from . import stage_gen, stage_lm, stage_text, stage_vae
from .common import FAMILY_DIR, Timer, add_common_args, log, run_from_args


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("--out", type=Path, default=None,
                   help=f"family folder to write (default {FAMILY_DIR}; with --tiny nothing unless given)")
    p.add_argument("--eval", type=int, default=None, help="bench instructions per category for the quick check")
    a = p.parse_args(argv)
    run = run_from_args(a)
    timer = Timer()
    stage_text.train(run)
    stage_lm.train(run)
    stage_vae.train(run)
    stage_gen.build_latents(run)
    stage_gen.train(run, "light")
    stage_gen.train(run, "heavy")
    out = a.out if a.out is not None else (None if a.tiny else FAMILY_DIR)
    if out is not None:
        n_eval = a.eval if a.eval is not None else (1 if a.tiny else 6)
        export_mod.export(run, out, n_eval)
    log.info("train_all finished in %.0f s (this invocation)", timer.s)


if __name__ == "__main__":
    main()
