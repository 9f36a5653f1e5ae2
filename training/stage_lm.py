"""Stage 2: the understanding block's language model, trained on instruction → plan.

A small transformers LM over the world's tokenizer, of one of two kinds (``--arch``):

* ``causal``: Llama architecture over ``instruction <plan> plan </s>``, the loss on the plan and ``</s>`` only;
* ``seq2seq``: T5 architecture, the encoder reading ``instruction </s>`` in both directions and the decoder
  writing ``plan </s>``. A causal LM copying shape k of the layout has to find, three lookups deep, whether the
  instruction's closing clause ("every shape that is not yellow …") excludes it; an encoder can mark shape k's own
  words with that while reading, and the decoder's copy reads the mark (measured in training/README.md).

A causal LM may also be trained with a **binding objective** (``--binding-weight``): at a middle layer, every token
of a shape sentence from its place words on predicts that shape's size, colour, texture and kind through linear
heads dropped after training. Deciding a shape's motion in the plan means knowing, at its place words, which shape
it is, but the copy of an explicit layout never needs that, so on the plain loss it is never learnt (a probe found
colour at the place words at chance). With ``--binding-motion`` the heads also name the shape's *resolved* motion
(the plan's), in the plan and in the last reading of the instruction when the LM reads it twice: the second reading
comes after the closing rule, so a shape's own words there can say what the rule makes it do, and the plan's motion
word is then a copy from the matching place, as for an explicit instruction.

Either learns to resolve reasoning instructions into explicit plans. Evaluated by greedy decoding on held-out
bench instructions (exact plan match, per category).

Run alone: ``python -m training.stage_lm [--tiny|--quick] [--arch causal|seq2seq]`` (needs stage_text).
"""

from __future__ import annotations

import argparse
import collections

import torch
from tqdm import tqdm

from engine.understanding import decode_plan, instruction_readings, is_seq2seq, lm_input_ids, right_pad, seq2seq_ids

from .clause_labels import ATTRIBUTES, IGNORE, sentence_motions, token_labels
from .common import Timer, add_common_args, load_ckpt, log, lr_at, run_from_args, save_ckpt
from .data import corpus
from .stage_text import PAD

LM_DIM = 128
LM_LAYERS = 4
LM_ARCHS = ("causal", "seq2seq")
LM_ARCH = "causal"
# The causal recipe (training/README.md measures each part): two readings, and the binding objective with motions.
LM_READINGS = 2
BINDING_WEIGHT = 1.0
BINDING_MOTION = True
BINDING_ATTRIBUTES = ("size", "colour", "texture", "kind")  # what names a shape; the place is where it is read


def default_readings(arch: str) -> int:
    """The recipe's reading count: LM_READINGS for a causal LM; an encoder-decoder reads the instruction once."""
    return 1 if arch == "seq2seq" else LM_READINGS


def make_lm(vocab_size: int, seed: int = 0, layers: int = LM_LAYERS, arch: str = LM_ARCH, dim: int = LM_DIM,
            readings: int | None = None):
    """A fresh LM of width ``dim``; ``layers`` counts the encoder's and the decoder's layers each for seq2seq;
    a causal LM reads the instruction ``readings`` times (engine.understanding.lm_input_ids; default
    `default_readings`)."""
    readings = readings or default_readings(arch)
    from transformers import LlamaConfig, LlamaForCausalLM, T5Config, T5ForConditionalGeneration

    if arch not in LM_ARCHS:
        raise ValueError(f"unknown LM architecture {arch!r}; expected one of {LM_ARCHS}")
    torch.manual_seed(seed)
    if arch == "seq2seq":
        if readings != 1:
            raise ValueError("an encoder-decoder LM reads the instruction once (its encoder sees all of it)")
        cfg = T5Config(vocab_size=vocab_size, d_model=dim, d_kv=32, d_ff=384, num_layers=layers,
                       num_decoder_layers=layers, num_heads=4, dropout_rate=0.0, feed_forward_proj="gated-gelu",
                       tie_word_embeddings=True, pad_token_id=PAD, eos_token_id=1, decoder_start_token_id=PAD)
        return T5ForConditionalGeneration(cfg)
    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=dim, intermediate_size=384, num_hidden_layers=layers,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=320,
                      tie_word_embeddings=True, pad_token_id=PAD, bos_token_id=None, eos_token_id=1,
                      instruction_readings=readings)
    return LlamaForCausalLM(cfg)


def batch_ids(tok, rows, readings: int = 1, max_len: int = 320):
    """Right-padded ids, attention mask and labels (-100 outside the plan) for instruction/plan rows."""
    plan_id = tok.convert_tokens_to_ids("<plan>")
    seqs = [lm_input_ids(tok, r["instruction"], r["plan"], readings)[:max_len] for r in rows]
    ids, mask = right_pad(seqs, PAD)
    labels = torch.full_like(ids, -100)
    for i, s in enumerate(seqs):
        start = s.index(plan_id) + 1
        labels[i, start: len(s)] = torch.tensor(s[start:])
    return ids, mask, labels


def _text_binding_labels(tok, text: str, motions: list[int] | None = None) -> tuple[dict, dict]:
    """`token_labels` of ``text`` read left to right, with its own motions and with ``motions`` instead (the same
    dict when None), from one tokenization."""
    text = text.strip()
    if not text:
        empty = {k: [] for k in ATTRIBUTES}
        return empty, empty
    offsets = tok(text, add_special_tokens=False, return_offsets_mapping=True).offset_mapping
    own = token_labels(offsets, text, from_place=True)
    return own, (token_labels(offsets, text, from_place=True, motions=motions) if motions is not None else own)


def binding_labels(tok, instruction: str, plan: str, readings: int = 1, max_len: int = 320,
                   motion: bool = False, instruction_labels: bool = True) -> dict[str, list[int]]:
    """Per binding attribute (and "motion" with ``motion``), one label per token of ``lm_input_ids(instruction,
    plan, readings)``; IGNORE on separators and on a shape sentence's words before its place. The resolved motion
    labels the plan and, when there are two readings, the second one. ``instruction_labels`` False: the
    instruction's tokens get none (a free phrasing's sentences are not the plan's, in order or form)."""
    resolved = sentence_motions(plan) if motion and readings > 1 else None
    ins, last = _text_binding_labels(tok, instruction, resolved)
    if not instruction_labels:
        n = len(_words_ids(tok, instruction))
        ins = last = {k: [IGNORE] * n for k in ATTRIBUTES}
    pl, _ = _text_binding_labels(tok, plan)
    out = {}
    for k in BINDING_ATTRIBUTES + (("motion",) if motion else ()):
        # each reading ends in a separator (</s>, the last one <plan>), like the ids
        first = ins[k] if k != "motion" else [IGNORE] * len(ins[k])
        head = (first + [IGNORE]) * (readings - 1) + last[k] + [IGNORE] if ins[k] else [IGNORE]
        out[k] = (head + pl[k] + [IGNORE])[:max_len]
    return out


def _words_ids(tok, text: str) -> list[int]:
    text = text.strip()
    return tok(text, add_special_tokens=False).input_ids if text else []


class BindingHeads(torch.nn.Module):
    """Linear heads reading one layer's hidden states [B, T, dim]: each token's shape attributes (training only)."""

    def __init__(self, dim: int, layer: int, motion_layer: int | None = None):
        """``motion_layer``: the layer whose states also name the resolved motion (None: no motion head)."""
        super().__init__()
        self.layer, self.motion_layer = layer, motion_layer
        names = BINDING_ATTRIBUTES + (("motion",) if motion_layer is not None else ())
        self.heads = torch.nn.ModuleDict({k: torch.nn.Linear(dim, len(ATTRIBUTES[k])) for k in names})

    @property
    def motion(self) -> bool:
        return self.motion_layer is not None

    def loss(self, hidden_states: tuple, labels: dict[str, torch.Tensor]) -> torch.Tensor:
        losses = []
        for k, head in self.heads.items():
            h = hidden_states[self.motion_layer if k == "motion" else self.layer]
            losses.append(torch.nn.functional.cross_entropy(head(h).flatten(0, 1), labels[k].flatten(),
                                                            ignore_index=IGNORE))
        return torch.stack(losses).mean()


def lm_losses(lm, tok, rows, binding: BindingHeads | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The plan's loss (`lm_loss`) and, with ``binding`` heads (causal LMs), the binding objective's."""
    if binding is None:
        return lm_loss(lm, tok, rows), None
    readings = instruction_readings(lm)
    ids, mask, labels = batch_ids(tok, rows, readings)
    per_row = [binding_labels(tok, r["instruction"], r["plan"], readings, motion=binding.motion,
                              instruction_labels=not r.get("phrased")) for r in rows]
    bind_labels = {k: right_pad([r[k] for r in per_row], IGNORE)[0] for k in binding.heads}
    out = lm(input_ids=ids, attention_mask=mask, labels=labels, output_hidden_states=True)
    return out.loss, binding.loss(out.hidden_states, bind_labels)


def lm_loss(lm, tok, rows) -> torch.Tensor:
    """Mean cross-entropy of the plan (and its ``</s>``) given the instruction, for either kind of LM."""
    if not is_seq2seq(lm):
        ids, mask, labels = batch_ids(tok, rows, instruction_readings(lm))
        return lm(input_ids=ids, attention_mask=mask, labels=labels).loss
    parts = [seq2seq_ids(tok, r["instruction"], r["plan"], lm.config.decoder_start_token_id) for r in rows]
    enc, enc_mask = right_pad([e for e, _ in parts], PAD)
    labels, _ = right_pad([d[1:] for _, d in parts], -100)  # the model shifts them right behind the start token
    return lm(input_ids=enc, attention_mask=enc_mask, labels=labels).loss


@torch.no_grad()
def evaluate(lm, tok, n_per_category: int = 8) -> dict:
    """Exact-match rate of greedy plans on held-out bench instructions, overall and per category."""
    from miniworld import bench_set

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
            ok += decode_plan(lm, tok, ex.instruction) == ex.plan
        res[cat] = ok / len(exs)
    res["all"] = sum(res.values()) / len(res)
    lm.train()
    return res


def checkpoint_model(ck: dict) -> dict:
    """``make_lm``'s keyword arguments for the LM a ``stage_lm`` checkpoint holds (older checkpoints lack the newer
    settings: they were causal LMs of the default size reading the instruction once)."""
    return {"layers": ck.get("layers", LM_LAYERS), "arch": ck.get("arch", "causal"), "dim": ck.get("dim", LM_DIM),
            "readings": ck.get("readings", 1)}


def binding_layer(layers: int) -> int:
    """The layer whose states the binding heads read: the middle one, so that later layers can use the binding."""
    return max(1, layers // 2)


def motion_layer(layers: int) -> int:
    """The layer whose states name the resolved motion: the one before the last, which then copies it into the plan
    (resolving needs the binding and the rule, so it gets more layers than the binding)."""
    return max(1, layers - 1)


def row_weights(rows, category_weight: dict[str, float] | None) -> torch.Tensor | None:
    """Sampling weight of each corpus row: its category's weight (1 for categories not named); None: uniform."""
    if not category_weight:
        return None
    unknown = set(category_weight) - {r["category"] for r in rows}
    if unknown:
        raise ValueError(f"no corpus rows of category {sorted(unknown)}")
    return torch.tensor([float(category_weight.get(r["category"], 1.0)) for r in rows])


def train(run, layers: int = LM_LAYERS, arch: str = LM_ARCH, dim: int = LM_DIM, readings: int | None = None,
          category_weight: dict[str, float] | None = None, binding_weight: float | None = None,
          binding_motion: bool | None = None) -> dict:
    """Train (or resume) the understanding LM. Settings left None take the causal recipe (LM_READINGS,
    BINDING_WEIGHT, BINDING_MOTION) for a causal LM, and one reading without the binding objective for seq2seq."""
    if run.done("lm"):
        return run.done("lm")
    from transformers import AutoTokenizer

    timer = Timer()
    tok = AutoTokenizer.from_pretrained(run.export / "tokenizer", local_files_only=True)
    rows = corpus(run)
    sd = run.stage_dir("lm")
    ck = load_ckpt(sd / "ckpt.pt")
    if ck:  # a resumed run keeps the model and the sampling it started with
        m = checkpoint_model(ck)
        layers, arch, dim, readings = m["layers"], m["arch"], m["dim"], m["readings"]
        category_weight = ck.get("category_weight")
        binding_weight, binding_motion = ck.get("binding_weight", 0.0), ck.get("binding_motion", False)
    causal = arch == "causal"
    readings = readings or default_readings(arch)
    binding_weight = binding_weight if binding_weight is not None else BINDING_WEIGHT if causal else 0.0
    binding_motion = binding_motion if binding_motion is not None else BINDING_MOTION and bool(binding_weight)
    category_weight = dict(category_weight or {})
    if binding_weight and not causal:
        raise ValueError("the binding objective is for causal LMs (an encoder already reads a shape whole)")
    if binding_motion and not binding_weight:
        raise ValueError("naming the resolved motion is part of the binding objective: give it a weight")
    weights = row_weights(rows, category_weight)
    lm = make_lm(len(tok), run.seed, layers, arch, dim, readings)
    binding = (BindingHeads(dim, binding_layer(layers), motion_layer(layers) if binding_motion else None)
               if binding_weight else None)
    params = list(lm.parameters()) + (list(binding.parameters()) if binding else [])
    opt = torch.optim.AdamW(params, lr=2e-3, weight_decay=0.01, betas=(0.9, 0.98))
    step = 0
    timer.resume(ck)
    if ck:
        lm.load_state_dict(ck["lm"]), opt.load_state_dict(ck["opt"])
        if binding:
            binding.load_state_dict(ck["binding"])
        step = ck["step"]
    total = run.budget.lm_steps
    g = torch.Generator().manual_seed(run.seed + 17 + step)
    bar = tqdm(total=total, initial=step, desc="understanding LM", mininterval=5)
    lm.train()
    loss_avg = bind_avg = None
    while step < total:
        idx = (torch.randint(len(rows), (32,), generator=g) if weights is None
               else torch.multinomial(weights, 32, replacement=True, generator=g)).tolist()
        for gr in opt.param_groups:
            gr["lr"] = lr_at(step, total, 2e-3, warmup=100)
        loss, bind = lm_losses(lm, tok, [rows[i] for i in idx], binding)
        opt.zero_grad()
        (loss + binding_weight * bind if bind is not None else loss).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        loss_avg = loss.item() if loss_avg is None else 0.98 * loss_avg + 0.02 * loss.item()
        if bind is not None:
            bind_avg = bind.item() if bind_avg is None else 0.98 * bind_avg + 0.02 * bind.item()
        bar.update(1)
        if step % run.budget.log_every == 0:
            log.info("lm step %d loss %.4f%s", step, loss_avg,
                     f" binding loss {bind_avg:.4f}" if bind_avg is not None else "")
        if step % run.budget.ckpt_every == 0 or step == total:
            save_ckpt(sd / "ckpt.pt", wall_s=timer.s, lm=lm.state_dict(), opt=opt.state_dict(), step=step,
                      layers=layers, arch=arch, dim=dim, readings=readings, category_weight=category_weight,
                      binding_weight=binding_weight, binding_motion=binding_motion,
                      binding=binding.state_dict() if binding else None)
    bar.close()
    lm.eval()
    acc = evaluate(lm, tok, run.budget.lm_eval_per_category) if run.budget.lm_eval_per_category else {}
    log.info("lm held-out exact plan match: %s", acc)
    out = run.export / "understanding" / "lm"
    lm.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    info = {"wall_s": timer.s, "steps": total, "layers": layers, "arch": arch, "dim": dim, "readings": readings,
            "category_weight": category_weight, "binding_weight": binding_weight, "binding_motion": binding_motion,
            "binding_loss": bind_avg,
            "loss": loss_avg, "heldout_exact_plan": acc}
    run.mark_done("lm", **info)
    return info


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    add_common_args(p)
    p.add_argument("--layers", type=int, default=LM_LAYERS,
                   help="transformer layers, for trials (a resumed run keeps the depth it started with)")
    p.add_argument("--arch", choices=LM_ARCHS, default=LM_ARCH,
                   help="causal (decoder-only) or seq2seq (encoder-decoder) LM (a resumed run keeps its own)")
    p.add_argument("--dim", type=int, default=LM_DIM, help="width, for trials (a resumed run keeps its own)")
    p.add_argument("--readings", type=int, choices=(1, 2), default=None,
                   help=f"times a causal LM reads the instruction before the plan (default {LM_READINGS}; a resumed "
                        "run keeps its own)")
    p.add_argument("--category-weight", nargs="*", default=[], metavar="CATEGORY=W",
                   help="sample rows of CATEGORY W times as often, for trials (e.g. negation=4)")
    p.add_argument("--binding-weight", type=float, default=None,
                   help=f"weight of the binding objective (causal LMs, default {BINDING_WEIGHT}; 0: off; a resumed "
                        "run keeps its own)")
    p.add_argument("--binding-motion", action=argparse.BooleanOptionalAction, default=None,
                   help="the binding heads also name each shape's resolved motion (default on with the binding "
                        "objective; a resumed run keeps its own)")
    p.add_argument("--steps", type=int, default=None, help="override the budget's LM steps, for trials")
    a = p.parse_args(argv)
    run = run_from_args(a)
    if a.steps:
        run.budget.lm_steps = a.steps
    try:
        weight = {k: float(v) for k, v in (x.split("=", 1) for x in a.category_weight)}
    except ValueError:
        p.error(f"--category-weight takes CATEGORY=NUMBER pairs, got {a.category_weight}")
    if a.binding_motion and a.binding_weight == 0:
        p.error("--binding-motion needs the binding objective (--binding-weight > 0)")
    train(run, a.layers, a.arch, a.dim, a.readings, weight, a.binding_weight, a.binding_motion)


if __name__ == "__main__":
    main()
