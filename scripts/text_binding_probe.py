"""Does a text state bind a shape's colour to its place? A linear probe on a family's text encoder and LM.

    python scripts/text_binding_probe.py [--family DIR] [--n 2400]

For every shape sentence of freshly drawn plans ("a small red dotted square at the top left stays still.") it takes
(1) the state at the last place word ("left") and asks a linear classifier for the shape's colour, and (2) the state
at the colour word and asks for the place. To put the red square — not just some square — at the top left, a
generator's cross-attention needs states that carry both. Prints held-out accuracy against the majority-class rate.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from miniworld.language import shape_sentences  # noqa: E402
from miniworld.scene import COLOURS, SLOT_NAMES  # noqa: E402
from training.data import draw_examples  # noqa: E402

COLOUR_NAMES = list(COLOURS)
SLOTS = list(SLOT_NAMES)


def token_at(offsets: list[tuple[int, int]], char: int) -> int:
    """Index of the token whose text covers character `char` (a word piece's offsets may include its space)."""
    for t, (a, b) in enumerate(offsets):
        if a <= char < b:
            return t
    raise ValueError(f"no token covers character {char}")


def shape_items(tokenizer, plan: str) -> list[tuple[int, int, int, int]]:
    """Per shape sentence: (index of the place's last token, colour id, index of the colour token, place id)."""
    # the same call as the model's input below, so special tokens (offsets (0, 0), never matched) keep indices aligned
    offsets = tokenizer(plan, return_offsets_mapping=True).offset_mapping
    out = []
    for s in shape_sentences(plan):
        place_end, colour_end = s.field_spans["pos"][1], s.field_spans["colour"][1]
        out.append((token_at(offsets, place_end - 1), COLOUR_NAMES.index(s.colour), token_at(offsets, colour_end - 1),
                    SLOTS.index(s.slot)))
    return out


def probe(x: torch.Tensor, y: torch.Tensor, classes: int, train_frac: float = 0.75) -> float:
    """Held-out accuracy of an L2-regularised logistic regression."""
    n = int(train_frac * len(y))
    x = (x - x[:n].mean(0)) / (x[:n].std(0) + 1e-6)
    w = torch.zeros(x.shape[1], classes, requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.Adam([w, b], 1e-2)
    for _ in range(400):
        loss = torch.nn.functional.cross_entropy(x[:n] @ w + b, y[:n]) + 1e-3 * (w**2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(((x[n:] @ w + b).argmax(1) == y[n:]).float().mean())


def main(argv=None):
    from transformers import AutoTokenizer, UMT5EncoderModel

    from engine.understanding import is_seq2seq, load_lm

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--family", type=Path, default=REPO / "resources" / "models" / "lumos-mini")
    p.add_argument("--n", type=int, default=2400, help="plans to draw (train split, seed 4242)")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    t5_tok = AutoTokenizer.from_pretrained(a.family / "light" / "tokenizer")
    t5 = UMT5EncoderModel.from_pretrained(a.family / "light" / "text_encoder").eval()
    lm_tok = AutoTokenizer.from_pretrained(a.family / "understanding" / "lm")
    lm = load_lm(a.family / "understanding" / "lm").eval()
    lm_body = lm.get_encoder() if is_seq2seq(lm) else lm  # a seq2seq LM's encoder is what reads text whole
    feats = {"text encoder (UMT5)": ([], []), "understanding LM, last layer": ([], [])}
    colours, places = [], []
    with torch.no_grad():
        for e in draw_examples(a.n, 4242):
            t5_items, lm_items = shape_items(t5_tok, e.plan), shape_items(lm_tok, e.plan)
            h_t5 = t5(**t5_tok(e.plan, return_tensors="pt")).last_hidden_state[0]
            h_lm = lm_body(**lm_tok(e.plan, return_tensors="pt"), output_hidden_states=True).hidden_states[-1][0]
            for (pt, colour, ct, place), (pl, _, cl, _) in zip(t5_items, lm_items):
                feats["text encoder (UMT5)"][0].append(h_t5[pt])
                feats["text encoder (UMT5)"][1].append(h_t5[ct])
                feats["understanding LM, last layer"][0].append(h_lm[pl])
                feats["understanding LM, last layer"][1].append(h_lm[cl])
                colours.append(colour)
                places.append(place)
    colours, places = torch.tensor(colours), torch.tensor(places)
    print(f"{len(colours)} shapes; majority rate: colour {float(torch.bincount(colours).max()) / len(colours):.2f}, "
          f"place {float(torch.bincount(places).max()) / len(places):.2f}")
    for name, (at_place, at_colour) in feats.items():
        c = probe(torch.stack(at_place), colours, len(COLOUR_NAMES))
        q = probe(torch.stack(at_colour), places, len(SLOTS))
        print(f"{name}: colour from the place words {c:.2f}; place from the colour word {q:.2f}")


if __name__ == "__main__":
    main()
