"""Stage 8: the hand-off's asymmetry (issue 18). The paper's light generator is 1.3B and its heavy one 14B (≈ 11×), and
the heavy one had far more training; ours were 1.24M and 5.1M parameters, and the heavy one drew no more detail.

* **heavy_refine**: the heavy generator continues from its trained weights for ``Budget.heavy_refine_steps`` more steps
  (a fresh cosine schedule at ``REFINE_LR``), so it gets the larger share of training compute; its last 30 % draw
  half of each batch at low noise, where texture is decided.
* **heavy_detail**: a second continuation (``Budget.heavy_detail_steps``, a fresh cosine schedule, the refine's
  recipe unless ``--detail-recipe`` overrides it for a trial). Measured in issue 18: the refined heavy's detail
  still rose (0.782 → 0.789 over 3200 steps) and then levelled off, which opened its gap over the light.
* the **light** generator (``stage_gen.LIGHT``, ≈ 1/10 of heavy) trains from scratch, then its phrasing fine-tune
  (``stage_phrasing.train_light``) as in ``train_all``.

Alone it rebuilds a shipped family's generators (the LM, text encoder and VAE stay)::

    python -m training.stage_handoff --run training/runs/handoff --scenes 3000 --out training/runs/handoff/family

(resumable; heavy_refine in a child process beside light, one thread each) and writes a whole candidate family to
``--out``; the shipped one is replaced by hand, after the bench.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import stage_gen, stage_phrasing
from .common import add_common_args, add_family_args, beside, run_from_args
from .family_parts import install_parts

REFINE_LR = 3e-4  # half the heavy recipe's peak: it continues from trained weights
# The heavy generator renders detail late in a hand-off, and the shifted σ draw puts only ~18 % of samples below
# σ = 0.3. From this share of the refine on, half of each batch is drawn at σ < LOW_NOISE_MAX (like a refiner).
LOW_NOISE_FROM = 0.7
LOW_NOISE_SHARE = 0.5


def continue_heavy(run, stage: str, steps: int, threads: int | None = None, overrides: dict | None = None) -> dict:
    """Continue the heavy generator in run/export as `stage` (resumable), a fresh cosine schedule at REFINE_LR whose
    last 30 % draws half of each batch at low noise; `overrides` change that recipe (a trial's)."""
    recipe = {"lr": REFINE_LR, "low_noise_share": LOW_NOISE_SHARE, "low_noise_from": int(LOW_NOISE_FROM * steps),
              **(overrides or {})}
    return stage_gen.train(run, "heavy", recipe, threads_when_alone=threads, stage=stage, init=True, steps=steps)


def refine_heavy(run, threads: int | None = None) -> dict:
    """The heavy generator's first continuation; `threads` once the light stage is done."""
    return continue_heavy(run, "heavy_refine", run.budget.heavy_refine_steps, threads)


def detail_heavy(run, threads: int | None = None, overrides: dict | None = None) -> dict:
    """The heavy generator's second continuation, from what heavy_refine left in run/export."""
    return continue_heavy(run, "heavy_detail", run.budget.heavy_detail_steps, threads, overrides)


def recipe_override(text: str) -> tuple[str, float]:
    """``key=value`` of --detail-recipe, the value a number."""
    key, sep, value = text.partition("=")
    try:
        if not (key.strip() and sep):
            raise ValueError
        return key.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected key=number (e.g. shape_weight=8), got {text!r}") from None


def mark_lm_from_family(run, family: Path) -> None:
    """The seeded LM is already the family's phrasing LM: record its stage as done with the family's own numbers."""
    if run.done("lm_phrasing"):
        return
    metrics = json.loads((Path(family) / "training_metrics.json").read_text())
    run.mark_done("lm_phrasing", **(metrics.get("lm_phrasing") or {}), seeded_from=str(family))


def install(run, family: Path, out: Path, eval_per_category: int = 2, heavy_only: bool = False) -> Path:
    """``family`` with the new light and heavy transformers and connector (built beside ``out``, then swapped in),
    its quick evaluation and model card redone for them. ``heavy_only``: the heavy transformer alone (a
    heavy_detail trial on a family whose light and heavy_refine it keeps)."""
    from .export import quick_eval, record_metrics

    if heavy_only:
        out = install_parts(run, family, out, ("heavy/transformer",), ("heavy_detail",))
    else:
        out = install_parts(run, family, out, ("light/transformer", "heavy/transformer", "understanding/connector"),
                            ("light", "light_phrasing", "heavy_refine", "heavy_detail"))
    record_metrics(run, out, {"quick_eval": quick_eval(out, eval_per_category)} if eval_per_category else {})
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    add_family_args(p, "family to rebuild the generators of")
    p.add_argument("--light-steps", type=int, default=None)
    p.add_argument("--refine-steps", type=int, default=None, help="heavy_refine steps (default: the budget's)")
    p.add_argument("--detail-steps", type=int, default=None, help="heavy_detail steps (default: the budget's)")
    p.add_argument("--detail-recipe", type=recipe_override, action="append", default=[], metavar="KEY=VALUE",
                   help="a trial's change to heavy_detail's recipe (shape_weight, lr, low_noise_share, ...)")
    p.add_argument("--only", choices=["heavy_refine", "heavy_detail", "light"], default=None,
                   help="run one side only (the child process runs heavy_refine, then heavy_detail); heavy_detail "
                        "alone continues the family's heavy and, with --out, writes the family with it")
    a = p.parse_args(argv)
    known = {*stage_gen.RECIPE["heavy"], "low_noise_share", "low_noise_from"} - {"positions"}
    unknown = sorted({k for k, _ in a.detail_recipe} - known)
    if unknown:
        p.error(f"--detail-recipe: unknown key {', '.join(unknown)} (expected key=number with key one of "
                f"{', '.join(sorted(known))})")
    run = run_from_args(a)
    overrides = {k: (int(v) if k in ("batch", "low_noise_from") else v) for k, v in a.detail_recipe}
    for name, v in (("light_steps", a.light_steps), ("heavy_refine_steps", a.refine_steps),
                    ("heavy_detail_steps", a.detail_steps)):
        if v is not None:
            setattr(run.budget, name, v)
    run.save_meta()
    stage_phrasing.seed_from_family(run, a.family)
    stage_gen.build_latents(run)
    if a.only == "heavy_refine":
        refine_heavy(run)
        return detail_heavy(run, overrides=overrides)
    if a.only == "heavy_detail":  # the family's heavy is already refined: only the second continuation
        if not run.done("heavy_refine"):
            run.mark_done("heavy_refine", seeded_from=str(a.family))
        info = detail_heavy(run, overrides=overrides)
        if a.out is not None:
            install(run, a.family, a.out, 0 if a.tiny else 2, heavy_only=True)
        return info
    mark_lm_from_family(run, a.family)
    def light_side() -> None:
        stage_gen.train(run, "light")
        stage_phrasing.train_light(run)

    if a.only is None and not run.done("heavy_detail"):
        extra = ["--from", str(a.family)]
        extra += [f"--refine-steps={a.refine_steps}"] if a.refine_steps is not None else []
        extra += [f"--detail-steps={a.detail_steps}"] if a.detail_steps is not None else []
        extra += [f"--detail-recipe={k}={v}" for k, v in a.detail_recipe]
        beside(run, a, ["training.stage_handoff", "--only", "heavy_refine"], "heavy refine", light_side, tuple(extra))
    else:
        light_side()
    if a.only is None:
        refine_heavy(run)
        detail_heavy(run, overrides=overrides)
        if a.out is not None:
            install(run, a.family, a.out, 0 if a.tiny else 2)


if __name__ == "__main__":
    main()
