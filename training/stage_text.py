"""Stage 1: the world's tokenizer and the shared UMT5 text encoder.

* Tokenizer: a Unigram model whose pieces are the words of the world's corpus (scored by log frequency) plus
  single letters and digits, so any typed text still tokenizes; lower-cases its input; appends ``</s>`` like T5.
  Saved as a plain ``tokenizer.json`` that `AutoTokenizer` loads offline.
* Text encoder: a small `UMT5EncoderModel` trained with masked-token prediction on instructions and plans (the
  paper's T5 is pretrained on language, not on our scenes' outcomes; this keeps it a language model, not a planner),
  plus a binding objective: every token of a shape sentence also predicts that sentence's attributes
  (clause_labels.py), so that the state at "top left" says which colour is there — what a generator's
  cross-attention needs, and what masked tokens alone left weak (a linear probe found the colour at the place
  words 44 % of the time, chance 17 %).

Run alone: ``python -m training.stage_text [--tiny|--quick]``.
"""

from __future__ import annotations

import argparse
import collections
import math
import re

import torch
from tqdm import tqdm

from .clause_labels import ATTRIBUTES, IGNORE, token_labels
from .common import Timer, add_common_args, load_ckpt, log, lr_at, run_from_args, save_ckpt
from .data import corpus

SPECIALS = ["<pad>", "</s>", "<unk>", "<mask>", "<plan>"]
PAD, EOS, UNK, MASK, PLAN = range(5)
TEXT_DIM = 64
MAX_SEQUENCE_LENGTH = 80
BINDING_WEIGHT = 1.0  # weight of the binding objective against the masked-token loss
_WORD = re.compile(r"[a-z]+|[^\sa-z]")


def build_tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    counts = collections.Counter(w for t in texts for w in _WORD.findall(t.lower()))
    total = sum(counts.values())
    vocab: list[tuple[str, float]] = [(s, 0.0) for s in SPECIALS]
    seen = set(SPECIALS)

    def add(piece, score):
        if piece not in seen:
            seen.add(piece)
            vocab.append((piece, score))

    for w, c in sorted(counts.items(), key=lambda x: (-x[1], x[0])):
        add(("\u2581" + w) if w.isalpha() else w, math.log(c / total))
    for ch in "abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'-":
        add("\u2581" + ch, -20.0)
        add(ch, -20.0)
    add("\u2581", -15.0)
    tk = Tokenizer(models.Unigram(vocab, unk_id=UNK, byte_fallback=False))
    tk.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tk.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    tk.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                      special_tokens=[("</s>", EOS)])
    return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   mask_token="<mask>", additional_special_tokens=["<plan>"])


def make_text_encoder(vocab_size: int, seed: int = 0):
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(seed)
    cfg = UMT5Config(vocab_size=vocab_size, d_model=TEXT_DIM, d_kv=16, d_ff=192, num_layers=3, num_heads=4,
                     relative_attention_num_buckets=32, relative_attention_max_distance=128, dropout_rate=0.0,
                     pad_token_id=PAD, eos_token_id=EOS, decoder_start_token_id=PAD)
    return UMT5EncoderModel(cfg)


def max_tokens(tok, texts: list[str]) -> int:
    return max(len(tok(t, add_special_tokens=True).input_ids) for t in texts)


def train(run) -> dict:
    """Build the tokenizer, train the text encoder; writes run/export/{tokenizer,text_encoder}."""
    if run.done("text"):
        return run.done("text")
    timer = Timer()
    rows = corpus(run)
    texts = [r["instruction"] for r in rows] + [r["plan"] for r in rows]
    tok = build_tokenizer(texts)
    longest = max_tokens(tok, texts[:5000])
    # Padded length used in training AND inference (lumos.json max_sequence_length); the world's longest text
    # is about 55 tokens.
    max_len = MAX_SEQUENCE_LENGTH
    if longest > max_len:
        log.warning("longest text has %d tokens, more than max_sequence_length %d: it will be truncated",
                    longest, max_len)
    log.info("tokenizer: %d pieces, longest text %d tokens, max_sequence_length %d", len(tok), longest, max_len)
    tok.save_pretrained(run.export / "tokenizer")

    enc = make_text_encoder(len(tok), run.seed)
    head = torch.nn.Linear(TEXT_DIM, len(tok))
    binding = torch.nn.ModuleDict({k: torch.nn.Linear(TEXT_DIM, len(v)) for k, v in ATTRIBUTES.items()})
    params = list(enc.parameters()) + list(head.parameters()) + list(binding.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01)
    sd = run.stage_dir("text")
    ck = load_ckpt(sd / "ckpt.pt")
    timer.resume(ck)
    step = 0
    if ck:
        enc.load_state_dict(ck["enc"]), head.load_state_dict(ck["head"]), opt.load_state_dict(ck["opt"])
        binding.load_state_dict(ck["binding"])
        step = ck["step"]
        torch.set_rng_state(ck["rng"])
    total = run.budget.text_steps
    g = torch.Generator().manual_seed(run.seed + step)
    bar = tqdm(total=total, initial=step, desc="text encoder (MLM + binding)", mininterval=5)
    loss_avg = bind_avg = None
    while step < total:
        idx = torch.randint(len(texts), (64,), generator=g)
        chosen = [texts[i] for i in idx]
        batch = tok(chosen, padding="max_length", max_length=max_len, truncation=True, return_tensors="pt",
                    return_offsets_mapping=True)
        ids, mask = batch.input_ids, batch.attention_mask
        per_text = [token_labels(o, t) for o, t in zip(batch.offset_mapping.tolist(), chosen)]
        labels = {k: torch.tensor([p[k] for p in per_text]) for k in ATTRIBUTES}
        sel = (torch.rand(ids.shape, generator=g) < 0.15) & (ids > PLAN)
        sel[:, 0] |= ~sel.any(1)  # at least one target per row
        inp = ids.masked_fill(sel, MASK)
        for gr in opt.param_groups:
            gr["lr"] = lr_at(step, total, 1e-3)
        h = enc(input_ids=inp, attention_mask=mask).last_hidden_state
        mlm = torch.nn.functional.cross_entropy(head(h[sel]), ids[sel])
        bind = torch.stack([torch.nn.functional.cross_entropy(binding[k](h).flatten(0, 1), y.flatten(),
                                                              ignore_index=IGNORE)
                            for k, y in labels.items() if (y != IGNORE).any()]).mean()
        loss = mlm + BINDING_WEIGHT * bind
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        loss_avg = mlm.item() if loss_avg is None else 0.98 * loss_avg + 0.02 * mlm.item()
        bind_avg = bind.item() if bind_avg is None else 0.98 * bind_avg + 0.02 * bind.item()
        bar.update(1)
        if step % run.budget.log_every == 0:
            log.info("text step %d mlm loss %.4f binding loss %.4f", step, loss_avg, bind_avg)
        if step % run.budget.ckpt_every == 0 or step == total:
            save_ckpt(sd / "ckpt.pt", wall_s=timer.s, enc=enc.state_dict(), head=head.state_dict(), binding=binding.state_dict(),
                      opt=opt.state_dict(), step=step,
                      rng=torch.get_rng_state())
    bar.close()
    enc.eval().save_pretrained(run.export / "text_encoder", safe_serialization=True)
    info = {"wall_s": timer.s, "steps": total, "mlm_loss": loss_avg, "binding_loss": bind_avg, "vocab": len(tok), "max_sequence_length": max_len,
            "longest_text_tokens": longest}
    run.mark_done("text", **info)
    return info


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    add_common_args(p)
    p.add_argument("--steps", type=int, default=None, help="override the budget's text steps")
    a = p.parse_args(argv)
    run = run_from_args(a)
    if a.steps is not None:
        run.budget.text_steps = a.steps
    train(run)


if __name__ == "__main__":
    main()
