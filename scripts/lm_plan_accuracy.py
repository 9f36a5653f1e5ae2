"""How often does an understanding LM write the exact plan? Per category and by number of shapes.

    python scripts/lm_plan_accuracy.py [--lm DIR | --ckpt FILE] [--per-category 40] [--seed 5]

--lm: an exported LM folder (default: the embedded family's); --ckpt: a `stage_lm` checkpoint of a run still
training (its depth, width and kind are read from it). Instructions are fresh train-split draws, the same for
every LM given the same seed, so two LMs compare on the same items. Plans are scored teacher-forced (every next
token the argmax); for the shipped causal LM that gave the same rates as greedy decoding, 40 per category.
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from miniworld.split import sample_train_example  # noqa: E402
from engine.understanding import instruction_readings, is_seq2seq, lm_input_ids, load_lm, seq2seq_ids  # noqa: E402
from training.data import CATEGORIES  # noqa: E402

FAMILY_LM = REPO / "resources" / "models" / "lumos-mini" / "understanding" / "lm"


@torch.no_grad()
def plan_is_exact(lm, tok, instruction: str, plan: str) -> bool:
    """Whether every token of ``plan </s>`` is the LM's argmax given the instruction and the plan before it."""
    if is_seq2seq(lm):
        enc, dec = seq2seq_ids(tok, instruction, plan, lm.config.decoder_start_token_id)
        logits = lm(input_ids=torch.tensor([enc]), labels=torch.tensor([dec[1:]])).logits[0]
        return logits.argmax(-1).tolist() == dec[1:]
    ids = lm_input_ids(tok, instruction, plan, instruction_readings(lm))
    start = ids.index(tok.convert_tokens_to_ids("<plan>")) + 1
    logits = lm(torch.tensor([ids])).logits[0]
    return logits[start - 1: -1].argmax(-1).tolist() == ids[start:]


def from_checkpoint(path: Path, vocab_size: int):
    from training.stage_lm import checkpoint_model, make_lm

    ck = torch.load(path, map_location="cpu", weights_only=False)
    lm = make_lm(vocab_size, 0, **checkpoint_model(ck))
    lm.load_state_dict(ck["lm"])
    print(f"checkpoint at step {ck['step']}")
    return lm


def main(argv=None):
    from transformers import AutoTokenizer

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lm", type=Path, default=FAMILY_LM, help="exported LM folder (with its tokenizer)")
    p.add_argument("--ckpt", type=Path, default=None, help="a stage_lm checkpoint instead (tokenizer from --lm)")
    p.add_argument("--per-category", type=int, default=40)
    p.add_argument("--seed", type=int, default=5)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    tok = AutoTokenizer.from_pretrained(a.lm, local_files_only=True)
    lm = (from_checkpoint(a.ckpt, len(tok)) if a.ckpt else load_lm(a.lm)).eval()
    rng = np.random.default_rng(a.seed)
    by_shapes = collections.defaultdict(lambda: [0, 0])
    row = []
    for cat in CATEGORIES:
        ok = 0
        for _ in range(a.per_category):
            ex = sample_train_example(rng, cat)
            hit = plan_is_exact(lm, tok, ex.instruction, ex.plan)
            ok += hit
            n = ex.plan.count(". ")  # one sentence per shape, then the background
            by_shapes[(cat, n)][0] += hit
            by_shapes[(cat, n)][1] += 1
        row.append(f"{cat} {ok / a.per_category:.2f}")
    print("exact plans: " + ", ".join(row))
    for cat in CATEGORIES:
        parts = [f"{n} shape{'s' * (n > 1)} {k}/{m}" for (c, n), (k, m) in sorted(by_shapes.items()) if c == cat]
        print(f"  {cat}: " + ", ".join(parts))


if __name__ == "__main__":
    main()
