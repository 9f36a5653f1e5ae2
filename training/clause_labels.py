"""Per-token labels of the shape sentence a token belongs to, for the text encoder's binding objective.

A generator puts *the red* square, not just some square, at the top left only if the text state it attends to at
"top left" also says "red" (and at "red" also says "top left"). Masked-token prediction never asks for that: a
masked colour word is not predictable from its place. So the text stage also asks every token of a shape sentence
("a small red dotted square at the top left stays still.") to predict that sentence's attributes. This binds words
within one sentence, which is reading, not planning: no label depends on another sentence (a reasoning sentence's
tokens get no labels).
"""

from __future__ import annotations

from miniworld.language import shape_sentences
from miniworld.scene import COLOURS, KINDS, SIZES, SLOT_NAMES, TEXTURES

IGNORE = -100
PLACES = tuple(SLOT_NAMES.values())
MOTION_WORDS = ("left", "right", "up", "down", "toward", "away", "bounces", "grows", "shrinks", "still")
# Attribute name → its classes; a head per attribute. "motion" only exists in plans (instructions' layout
# sentences have none) and is labelled by the first word that names it.
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "size": tuple(SIZES), "colour": tuple(COLOURS), "texture": TEXTURES, "kind": KINDS, "place": PLACES,
    "motion": MOTION_WORDS,
}


def _motion(phrase: str | None) -> str | None:
    if not phrase:
        return None
    for w in phrase.split():
        if w in MOTION_WORDS:
            return w
    return None


def sentence_spans(text: str, from_place: bool = False) -> list[tuple[int, int, dict[str, int]]]:
    """(start, end, {attribute: class index}) of every shape sentence in `text` (character offsets); with
    ``from_place`` each span starts at the sentence's place words, where a left-to-right reader has read them all."""
    out = []
    for s in shape_sentences(text):
        labels = {"size": ATTRIBUTES["size"].index(s.size), "colour": ATTRIBUTES["colour"].index(s.colour),
                  "texture": ATTRIBUTES["texture"].index(s.texture), "kind": ATTRIBUTES["kind"].index(s.kind),
                  "place": PLACES.index(SLOT_NAMES[s.slot])}
        motion = _motion(s.motion)
        if motion is not None:
            labels["motion"] = MOTION_WORDS.index(motion)
        start = s.field_spans["pos"][0] if from_place else s.span[0]
        out.append((start, s.span[1], labels))
    return out


def sentence_motions(text: str) -> list[int]:
    """The motion class of every shape sentence of a plan, in order (a layout sentence has none: IGNORE)."""
    return [labels.get("motion", IGNORE) for _, _, labels in sentence_spans(text)]


def token_labels(offsets: list[tuple[int, int]], text: str, from_place: bool = False,
                 motions: list[int] | None = None) -> dict[str, list[int]]:
    """Per attribute, one label per token (IGNORE outside shape sentences), from a fast tokenizer's offsets.
    ``from_place``: only the tokens from the place words on are labelled (a causal reader's view, see
    `sentence_spans`). ``motions``: the k-th sentence's motion label instead of its own (an instruction's layout
    sentence labelled with the motion its plan resolves for that shape)."""
    spans = sentence_spans(text, from_place)
    if motions is not None:
        spans = [(a, b, labels | {"motion": motions[k] if k < len(motions) else IGNORE})
                 for k, (a, b, labels) in enumerate(spans)]
    out = {k: [IGNORE] * len(offsets) for k in ATTRIBUTES}
    for t, (a, b) in enumerate(offsets):
        a += len(text[a:b]) - len(text[a:b].lstrip())  # a word piece's offsets include the space before it
        if b <= a:
            continue  # special or padding token
        for start, end, labels in spans:
            if start <= a and b <= end:
                for k, v in labels.items():
                    out[k][t] = v
                break
    return out
