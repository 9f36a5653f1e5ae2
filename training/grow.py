"""Grow a trained generator without changing what it computes (issue 18: is the heavy generator limited by its size?).

Training a larger heavy generator from scratch costs about four hours on two cores; growing the trained one and
continuing costs a fraction of that. The grown transformer computes exactly the trained one's function at the start
(tested), and its new capacity is free to learn from there:

* **deeper**: new blocks are inserted whose three residual branches (self-attention, cross-attention, FFN) write
  through output layers set to zero, so each new block passes its input through unchanged. Their other weights are
  copies of the block before them (a sensible modulation and attention to start from); gradients reach the zeroed
  output layers at once, because what they read is not zero.
* **wider FFN**: each block's feed-forward gets new hidden units, read from the residual stream by freshly initialised
  rows and written back through zero columns.

The residual width stays: Wan's layer norms take their mean and variance over it, so a wider stream changes every
normalised value unless each channel is duplicated (2× the width, 4× the cost), which is more than a session here has.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def _zero_(layer: nn.Linear) -> None:
    nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def identity_block(block: nn.Module) -> nn.Module:
    """A copy of a Wan transformer block whose three residual branches write zero: it passes its input through."""
    new = copy.deepcopy(block)
    _zero_(new.attn1.to_out[0])
    _zero_(new.attn2.to_out[0])
    _zero_(new.ffn.net[2])
    return new


def widen_ffn_(block: nn.Module, ffn_dim: int, generator: torch.Generator) -> None:
    """Give a block's feed-forward ``ffn_dim`` hidden units; the new ones read fresh weights and write zero."""
    up, down = block.ffn.net[0].proj, block.ffn.net[2]
    old = up.out_features
    if ffn_dim < old:
        raise ValueError(f"cannot shrink a feed-forward of {old} hidden units to {ffn_dim}")
    if ffn_dim == old:
        return
    bound = 1.0 / math.sqrt(up.in_features)  # nn.Linear's own initial range
    new_up = nn.Linear(up.in_features, ffn_dim)
    new_down = nn.Linear(ffn_dim, down.out_features)
    with torch.no_grad():
        new_up.weight.uniform_(-bound, bound, generator=generator)
        new_up.bias.uniform_(-bound, bound, generator=generator)
        new_up.weight[:old] = up.weight
        new_up.bias[:old] = up.bias
        new_down.weight.zero_()
        new_down.weight[:, :old] = down.weight
        new_down.bias.copy_(down.bias)
    block.ffn.net[0].proj = new_up
    block.ffn.net[2] = new_down


def grown(trained, num_layers: int | None = None, ffn_dim: int | None = None, seed: int = 0):
    """A copy of ``trained`` (a Wan transformer) with ``num_layers`` blocks and ``ffn_dim`` feed-forward units that
    computes the same velocity. New blocks are spread evenly between the trained ones."""
    from .stage_gen import make_like, size_in

    size = size_in(trained.config)
    num_layers = num_layers or size["num_layers"]
    ffn_dim = ffn_dim or size["ffn_dim"]
    if num_layers < size["num_layers"]:
        raise ValueError(f"cannot grow {size['num_layers']} blocks into {num_layers}")
    generator = torch.Generator().manual_seed(seed)
    blocks = list(trained.blocks)
    extra = num_layers - len(blocks)
    after = [k * len(blocks) // extra for k in range(extra)]  # the trained block each new one follows: spread evenly
    order = []
    for i, block in enumerate(blocks):
        order.append(copy.deepcopy(block))
        order += [identity_block(block) for _ in range(after.count(i))]
    for block in order:
        widen_ffn_(block, ffn_dim, generator)
    model = make_like(trained, size={**size, "num_layers": num_layers, "ffn_dim": ffn_dim})
    state = {k: v for k, v in trained.state_dict().items() if not k.startswith("blocks.")}
    for i, block in enumerate(order):
        state.update({f"blocks.{i}.{k}": v for k, v in block.state_dict().items()})
    model.load_state_dict(state)
    return model


def main(argv=None):
    """Grow the heavy generator in a run's export (seeded from a family), ready for ``stage_handoff --only
    heavy_detail`` to continue it."""
    import argparse

    from engine.positional_transformer import load_transformer

    from .common import add_common_args, add_family_args, run_from_args
    from .stage_phrasing import seed_from_family

    p = argparse.ArgumentParser(description=main.__doc__)
    add_common_args(p)
    add_family_args(p, "family whose heavy generator grows")
    p.add_argument("--layers", type=int, required=True, help="blocks of the grown heavy generator")
    p.add_argument("--ffn", type=int, required=True, help="feed-forward hidden units of the grown heavy generator")
    a = p.parse_args(argv)
    run = run_from_args(a)
    seed_from_family(run, a.family)
    folder = run.export / "heavy" / "transformer"
    model = grown(load_transformer(folder), a.layers, a.ffn, seed=run.seed)
    model.save_pretrained(folder, safe_serialization=True)
    print(f"{folder}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters")


if __name__ == "__main__":
    main()
