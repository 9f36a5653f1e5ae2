"""Stage 2: the understanding block's language model, trained on instruction → plan.

A small Llama-architecture causal LM over the world's tokenizer. Sequences are ``instruction <plan> plan </s>``
and the loss covers the plan and ``</s>`` only, so the model learns to resolve reasoning instructions into explicit
plans. Evaluated by greedy decoding on held-out bench instructions (exact plan match, per category).

Run alone: ``python -m training.stage_lm [--tiny|--quick]`` (needs stage_text).
"""

from __future__ import annotations

import argparse
import collections

import torch
from tqdm import tqdm

from engine.understanding import lm_input_ids

from .common import Timer, add_common_args, load_ckpt, log, lr_at, run_from_args, save_ckpt
from .data import corpus
from .stage_text import PAD

LM_DIM = 128
LM_LAYERS = 4


def make_lm(vocab_size: int, seed: int = 0, layers: int = LM_LAYERS):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=LM_DIM, intermediate_size=384, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=320,
                      tie_word_embeddings=True, pad_token_id=PAD, bos_token_id=None, eos_token_id=1)
    return LlamaForCausalLM(cfg)


def batch_ids(tok, rows, max_len: int = 256):
    """Right-padded ids, attention mask and labels (-100 outside the plan) for instruction/plan rows."""
    plan_id = tok.convert_tokens_to_ids("<plan>")
    seqs = [lm_input_ids(tok, r["instruction"], r["plan"])[:max_len] for r in rows]
    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), PAD)
    mask = torch.zeros((len(seqs), n), dtype=torch.long)
    labels = torch.full((len(seqs), n), -100)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
        start = s.index(plan_id) + 1
        labels[i, start: len(s)] = torch.tensor(s[start:])
    return ids, mask, labels


@torch.no_grad()
def evaluate(lm, tok, n_per_category: int = 8) -> dict:
    """Exact-match rate of greedy plans on held-out bench instructions, overall and per category."""
    from engine.miniworld import bench_set

    bench = bench_set()
    by_cat = collections.defaultdict(list)
    for ex, _ in bench:
        if len(by_cat[ex.category]) < n_per_category:
            by_cat[ex.category].append(ex)
    lm.eval()
    res = {}
    for cat, exs in by_cat.items():
        ok = 0
        for ex in exs:
            ids = torch.tensor([lm_input_ids(tok, ex.instruction, None)])
            out = lm.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=128, do_sample=False,
                              eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
            ok += tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip() == ex.plan
        res[cat] = ok / len(exs)
    res["all"] = sum(res.values()) / len(res)
    lm.train()
    return res


def train(run, layers: int = LM_LAYERS) -> dict:
    if run.done("lm"):
        return run.done("lm")
    from transformers import AutoTokenizer

    timer = Timer()
    tok = AutoTokenizer.from_pretrained(run.export / "tokenizer", local_files_only=True)
    rows = corpus(run)
    sd = run.stage_dir("lm")
    ck = load_ckpt(sd / "ckpt.pt")
    layers = ck.get("layers", LM_LAYERS) if ck else layers  # a resumed run keeps the depth it started with
    lm = make_lm(len(tok), run.seed, layers)
    opt = torch.optim.AdamW(lm.parameters(), lr=2e-3, weight_decay=0.01, betas=(0.9, 0.98))
    step = 0
    timer.resume(ck)
    if ck:
        lm.load_state_dict(ck["lm"]), opt.load_state_dict(ck["opt"])
        step = ck["step"]
    total = run.budget.lm_steps
    g = torch.Generator().manual_seed(run.seed + 17 + step)
    bar = tqdm(total=total, initial=step, desc="understanding LM", mininterval=5)
    lm.train()
    loss_avg = None
    while step < total:
        idx = torch.randint(len(rows), (32,), generator=g).tolist()
        ids, mask, labels = batch_ids(tok, [rows[i] for i in idx])
        for gr in opt.param_groups:
            gr["lr"] = lr_at(step, total, 2e-3, warmup=100)
        loss = lm(input_ids=ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lm.parameters(), 1.0)
        opt.step()
        step += 1
        loss_avg = loss.item() if loss_avg is None else 0.98 * loss_avg + 0.02 * loss.item()
        bar.update(1)
        if step % run.budget.log_every == 0:
            log.info("lm step %d loss %.4f", step, loss_avg)
        if step % run.budget.ckpt_every == 0 or step == total:
            save_ckpt(sd / "ckpt.pt", wall_s=timer.s, lm=lm.state_dict(), opt=opt.state_dict(), step=step,
                      layers=layers)
    bar.close()
    lm.eval()
    acc = evaluate(lm, tok, run.budget.lm_eval_per_category) if run.budget.lm_eval_per_category else {}
    log.info("lm held-out exact plan match: %s", acc)
    out = run.export / "understanding" / "lm"
    lm.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    info = {"wall_s": timer.s, "steps": total, "layers": layers, "loss": loss_avg, "heldout_exact_plan": acc}
    run.mark_done("lm", **info)
    return info


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    add_common_args(p)
    p.add_argument("--layers", type=int, default=LM_LAYERS,
                   help="transformer layers, for trials (a resumed run keeps the depth it started with)")
    a = p.parse_args(argv)
    train(run_from_args(a), a.layers)


if __name__ == "__main__":
    main()
