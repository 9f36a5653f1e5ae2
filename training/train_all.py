"""Reproduce every weight of the lumos-mini family with one command.

    python -m training.train_all            # full budget (README states the wall time), resumable
    python -m training.train_all --quick    # a first, briefly trained family (~30 min on one core)
    python -m training.train_all --tiny --out /tmp/fam   # seconds; what the test suite runs

Stages, each also runnable alone and each skipped when its done.json exists (delete it to redo):
text (tokenizer + UMT5 encoder) → lm (understanding LM), beside vae → latents (+ text embeddings) → decoder
(the VAE's decoder tuned, encoder frozen) then light (+ connector), beside heavy → heavy_refine (heavy continued,
both cores) → phrasing (LM, then light + connector, fine-tuned on free phrasings), beside heavy_detail (heavy
continued again) → export (family folder + quick
evaluation). Interrupt at any time; the same command resumes from the last checkpoint. Seeded; fp32; one thread
per process (--threads); the two independent pairs run side by side on two cores (--sequential runs every stage
one after the other).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import export as export_mod
from . import stage_decoder, stage_gen, stage_handoff, stage_lm, stage_phrasing, stage_text, stage_vae
from .common import FAMILY_DIR, Timer, add_common_args, beside, log, run_from_args


def train_language(run) -> None:
    """Tokenizer + text encoder, then the understanding LM that reads them: independent of the VAE."""
    stage_text.train(run)
    stage_lm.train(run)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("--out", type=Path, default=None,
                   help=f"family folder to write (default {FAMILY_DIR}; with --tiny nothing unless given)")
    p.add_argument("--eval", type=int, default=None, help="bench instructions per category for the quick check")
    p.add_argument("--sequential", dest="side_by_side", action="store_false",
                   help="train every stage one after the other instead of two at a time on two cores")
    p.add_argument("--language-only", action="store_true", help=argparse.SUPPRESS)  # the child beside the VAE
    a = p.parse_args(argv)
    run = run_from_args(a)
    if a.language_only:
        return train_language(run)
    timer = Timer()
    if a.side_by_side and not (run.done("lm") or run.done("vae")):
        beside(run, a, ["training.train_all", "--language-only"], "text / LM", lambda: stage_vae.train(run))
    train_language(run)
    stage_vae.train(run)
    stage_gen.build_latents(run)
    if a.side_by_side and not (run.done("light") or run.done("heavy")):
        # The generators train on latents only, so the decoder stage runs before light, beside heavy (v2 run:
        # decoder 7 + light 43 min beside heavy's 61); once light is done heavy takes both cores.
        beside(run, a, ["training.stage_gen", "heavy", "--threads-when-alone", "2"], "heavy generator",
               lambda: (stage_decoder.train(run), stage_gen.train(run, "light")))
    stage_decoder.train(run)
    stage_gen.train(run, "light")
    stage_gen.train(run, "heavy")
    # heavy continues alone (both cores when side by side): the larger share of compute (stage_handoff.py)
    stage_handoff.refine_heavy(run, threads=2 if a.side_by_side else None)
    if a.side_by_side and not (run.done("heavy_detail") or run.done("light_phrasing")):
        # heavy's second continuation reads neither the LM nor the light generator: it trains beside phrasing
        beside(run, a, ["training.stage_handoff", "--only", "heavy_detail"], "heavy detail",
               lambda: stage_phrasing.train(run))
    stage_phrasing.train(run)  # LM, then light + connector, fine-tuned on free phrasings
    stage_handoff.detail_heavy(run)
    out = a.out if a.out is not None else (None if a.tiny else FAMILY_DIR)
    if out is not None:
        n_eval = a.eval if a.eval is not None else (1 if a.tiny else 6)
        export_mod.export(run, out, n_eval)
    log.info("train_all finished in %.0f s (this invocation)", timer.s)


if __name__ == "__main__":
    main()
