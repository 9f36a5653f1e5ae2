"""Stage 7: free phrasing. Fine-tunes the understanding LM, then the light generator with its connector, on
instructions said the way people type them (miniworld/phrasing.py), from the weights the earlier stages trained.

* **lm_phrasing**: the LM continues on rows that are a third template instructions, two thirds training phrasings
  (their plans fill in what the phrasing left out), with the binding objective on the plan (a phrasing's own sentences
  are not labelled: their order and form are not the plan's). The tokenizer and text encoder are unchanged: a new
  word is spelt in letter pieces the LM learns to read, so the heavy generator and every text embedding stay valid.
* **light_phrasing**: the light generator and connector continue on the same rendered scenes, the LM's states now
  read over free phrasings too (phrasings that leave out only what equals the defaults, so each clip still shows
  its plan).

In ``train_all`` it runs on the run's own weights before export. Alone it fine-tunes a shipped family::

    python -m training.stage_phrasing --run training/runs/phrasing --from resources/models/lumos-mini \\
        --out training/runs/phrasing/family --threads 2      # resumable; --tiny for a seconds-long check

and writes a whole candidate family to ``--out`` (the shipped one is replaced only by hand, after the bench).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from miniworld import CATEGORIES
from miniworld import phrasing_pools as P
from miniworld.phrasing import KNOWN_WORDS, phrase, sample_phrased

from .common import FAMILY_DIR, Timer, add_common_args, load_ckpt, log, lr_at, run_from_args, save_ckpt
from .data import CATEGORY_P, draw_examples, scene_examples
from .family_parts import install_parts
from .grammar_file import write_grammar

LM_LR = 1e-3          # fine-tune peak (the LM trained from scratch at 2e-3; new words need more than 5e-4)
LIGHT_LR = 3e-4       # fine-tune peak (light trained from scratch at 1e-3)
BINDING_WEIGHT = 0.5  # fresh binding heads on a trained LM: a lighter pull than from scratch
PHRASINGS_PER_SCENE = 2
BATCH = 32


NOISE_P = 0.2  # share of phrasings given 1-2 words that change nothing (phrasing_pools.NOISE_WORDS or letters)


def with_noise(text: str, rng) -> str:
    """``text`` with one or two words inserted between its words: half trained filler words, half letter strings
    the family never saw, so the LM learns to read past a word it does not know."""
    words = text.split(" ")
    for _ in range(int(rng.integers(1, 3))):
        if rng.random() < 0.5:
            w = P.NOISE_WORDS.train[int(rng.integers(len(P.NOISE_WORDS.train)))]
        else:
            w = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), size=int(rng.integers(3, 9))))
        words.insert(int(rng.integers(1, len(words) + 1)), w)
    return " ".join(words)


def phrasing_corpus(run) -> list[dict]:
    """LM rows: a third template instructions (the LM knows them already; they keep it from forgetting), two thirds
    training phrasings (``"phrased": true``; NOISE_P of them `with_noise`), cached as JSON lines."""
    n = run.budget.phrasing_corpus
    path = run.stage_dir("data") / f"phrasing_corpus_v2_{n}_{run.seed}.jsonl"
    if path.exists():
        return [json.loads(x) for x in path.read_text().splitlines()]
    rows = [{"instruction": e.instruction, "plan": e.plan, "category": e.category}
            for e in draw_examples(n // 3, run.seed + 303)]
    rng = np.random.default_rng(run.seed + 304)
    for c in tqdm(rng.choice(len(CATEGORIES), size=n - n // 3, p=CATEGORY_P), desc="phrasings", mininterval=5):
        ph = sample_phrased(rng, CATEGORIES[c], "train")
        text = with_noise(ph.instruction, rng) if rng.random() < NOISE_P else ph.instruction
        rows.append({"instruction": text, "plan": ph.plan, "category": ph.category, "phrased": True})
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return rows


def seed_from_family(run, family: Path, keep_vae: bool = False) -> None:
    """Fill run/export with a family's weights (what `train_all`'s earlier stages would have left there);
    ``keep_vae``: all but the VAE, the run's own (stage_bridge)."""
    exp = run.export
    if (exp / "understanding" / "lm").exists():
        return
    family = Path(family)
    parts = {"tokenizer": "light/tokenizer", "text_encoder": "light/text_encoder", "vae": "light/vae",
             "light/transformer": "light/transformer", "heavy/transformer": "heavy/transformer",
             "understanding/connector": "understanding/connector", "understanding/lm": "understanding/lm"}
    if keep_vae:
        del parts["vae"]
    for dst, src in parts.items():  # the LM last: its presence marks a complete seed
        shutil.copytree(family / src, exp / dst, dirs_exist_ok=True)
    (run.root / "seeded_from.json").write_text(json.dumps({"family": str(family)}))


def train_lm(run) -> dict:
    """Fine-tune the LM in run/export on `phrasing_corpus` (resumable); writes it back to run/export."""
    if run.done("lm_phrasing"):
        return run.done("lm_phrasing")
    from engine.understanding import load_lm

    from .stage_lm import BindingHeads, binding_layer, evaluate, lm_losses, motion_layer

    from .lm_vocab import extend

    timer = Timer()
    folder = run.export / "understanding" / "lm"
    tok = extend(folder)  # synonyms read as world words, a piece per training word (training/lm_vocab.py)
    lm = load_lm(folder)
    rows = phrasing_corpus(run)
    cfg = lm.config
    binding = BindingHeads(cfg.hidden_size, binding_layer(cfg.num_hidden_layers), motion_layer(cfg.num_hidden_layers))
    sd = run.stage_dir("lm_phrasing")
    ck = load_ckpt(sd / "ckpt.pt")
    timer.resume(ck)
    step = warm_from = 0
    if ck:
        lm.resize_token_embeddings(ck["lm"]["model.embed_tokens.weight"].shape[0])
        lm.load_state_dict(ck["lm"]), binding.load_state_dict(ck["binding"])
        step = ck["step"]
    grown = lm.get_input_embeddings().weight.shape[0] < len(tok)
    if grown:  # new pieces: new embedding rows (mean-initialised), so the optimiser starts afresh
        lm.resize_token_embeddings(len(tok))
        warm_from = step
    params = list(lm.parameters()) + list(binding.parameters())
    opt = torch.optim.AdamW(params, lr=LM_LR, weight_decay=0.01, betas=(0.9, 0.98))
    if ck and not grown:
        opt.load_state_dict(ck["opt"])
        warm_from = ck.get("warm_from", 0)
    total = run.budget.phrasing_lm_steps
    g = torch.Generator().manual_seed(run.seed + 313 + step)
    bar = tqdm(total=total, initial=step, desc="LM phrasing", mininterval=5)
    lm.train()
    loss_avg = bind_avg = None
    lengths = [len(r["instruction"]) for r in rows]
    batches: list[list[int]] = []
    while step < total:
        if not batches:  # a random pool cut into batches of similar length: half the padding of random batches
            pool = sorted(torch.randint(len(rows), (8 * BATCH,), generator=g).tolist(), key=lengths.__getitem__)
            batches = [pool[k: k + BATCH] for k in range(0, len(pool), BATCH)]
            batches = [batches[k] for k in torch.randperm(len(batches), generator=g).tolist()]
        idx = batches.pop()
        for gr in opt.param_groups:
            gr["lr"] = lr_at(step, total, LM_LR, warmup=50) * min(1.0, (step - warm_from + 1) / 50)
        loss, bind = lm_losses(lm, tok, [rows[i] for i in idx], binding)
        opt.zero_grad()
        (loss + BINDING_WEIGHT * bind).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        loss_avg = loss.item() if loss_avg is None else 0.98 * loss_avg + 0.02 * loss.item()
        bind_avg = bind.item() if bind_avg is None else 0.98 * bind_avg + 0.02 * bind.item()
        bar.update(1)
        if step % run.budget.log_every == 0:
            log.info("lm_phrasing step %d loss %.4f binding loss %.4f (%.0f s)", step, loss_avg, bind_avg, timer.s)
        if step % run.budget.ckpt_every == 0 or step == total:
            save_ckpt(sd / "ckpt.pt", wall_s=timer.s, lm=lm.state_dict(), binding=binding.state_dict(),
                      opt=opt.state_dict(), step=step, warm_from=warm_from)
    bar.close()
    lm.eval()
    acc = evaluate(lm, tok, run.budget.lm_eval_per_category) if run.budget.lm_eval_per_category else {}
    log.info("lm_phrasing template exact plan match: %s", acc)
    lm.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    info = {"wall_s": timer.s, "steps": total, "lr": LM_LR, "binding_weight": BINDING_WEIGHT, "loss": loss_avg,
            "binding_loss": bind_avg, "corpus": len(rows), "heldout_exact_plan": acc}
    run.mark_done("lm_phrasing", **info)
    return info


def train_light(run) -> dict:
    """Fine-tune light + connector from run/export on the run's scenes with free phrasings beside them."""
    if run.done("light_phrasing"):
        return run.done("light_phrasing")
    from . import stage_gen

    stage_gen.build_latents(run)
    rng = np.random.default_rng(run.seed + 505)
    phrased = [[phrase(e, rng, "train", keep_scene=True).instruction for _ in range(PHRASINGS_PER_SCENE)]
               for e in tqdm(scene_examples(run), desc="scene phrasings", mininterval=5)]
    return stage_gen.train(run, "light", {"lr": LIGHT_LR}, stage="light_phrasing", init=True, phrased=phrased,
                           steps=run.budget.phrasing_light_steps)


def train(run) -> dict:
    return {"lm_phrasing": train_lm(run), "light_phrasing": train_light(run)}


def install(run, family: Path, out: Path) -> Path:
    """A whole family at ``out``: ``family`` with the fine-tuned LM, connector and light transformer, its
    vocabulary in lumos.json and the phrasing stages in training_metrics.json (built beside, then swapped in)."""
    def finish(folder: Path) -> None:
        write_vocabulary(folder)
        write_grammar(folder / "understanding")

    return install_parts(run, family, out, ("understanding/lm", "understanding/connector", "light/transformer"),
                         ("lm_phrasing", "light_phrasing"), finish)


def family_vocabulary() -> list[str]:
    from .grammar_file import reader_words

    return sorted(KNOWN_WORDS | reader_words())


def write_vocabulary(family: Path) -> None:
    """lumos.json "vocabulary": every word the family was trained on, and the everyday words its grammar file reads
    (grammar_file.reader_words: "backdrop", "tl", "polka"); the engine reports the others."""
    from engine.atomic_files import atomic_write_json

    path = Path(family) / "lumos.json"
    cfg = json.loads(path.read_text())
    cfg["vocabulary"] = family_vocabulary()
    atomic_write_json(path, cfg)


def record_bench(run, family: Path, after: Path, before: Path | None = None) -> dict:
    """Put `bench.vrbench_phrasing` reports (this family's, and the family it was fine-tuned from) into the family's
    training_metrics.json and rewrite its MODEL_CARD.md from them."""
    from .export import record_metrics

    def brief(path):
        rep = json.loads(Path(path).read_text())
        keys = ("instructions", "parse", "honour", "honour_by_category", "instruction", "instruction_by_category")
        return {name: {k: rep[name][k] for k in keys if k in rep[name]} for name in ("template", "heldout")}

    updates = {"phrasing_bench": brief(after)}
    if before is not None:
        updates["phrasing_bench_before"] = brief(before)
    return record_metrics(run, family, updates)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p)
    p.add_argument("--from", dest="family", type=Path, default=FAMILY_DIR,
                   help="family whose weights to fine-tune when the run has none (default: the shipped one)")
    p.add_argument("--out", type=Path, default=None, help="write the fine-tuned family here (a new folder)")
    p.add_argument("--lm-steps", type=int, default=None)
    p.add_argument("--light-steps", type=int, default=None)
    p.add_argument("--bench", type=Path, nargs="+", default=None, metavar=("AFTER", "BEFORE"),
                   help="only record vrbench_phrasing.json reports (this family's, then its source's) into the "
                        "family at --out (default: the shipped one): training_metrics.json and MODEL_CARD.md")
    a = p.parse_args(argv)
    if a.bench:
        run = run_from_args(a)
        record_bench(run, a.out or FAMILY_DIR, a.bench[0], a.bench[1] if len(a.bench) > 1 else None)
        return
    run = run_from_args(a)
    for name, v in (("phrasing_lm_steps", a.lm_steps), ("phrasing_light_steps", a.light_steps)):
        if v is not None:
            setattr(run.budget, name, v)
    run.save_meta()
    seed_from_family(run, a.family)
    train(run)
    if a.out is not None:
        install(run, a.family, a.out)


if __name__ == "__main__":
    main()
