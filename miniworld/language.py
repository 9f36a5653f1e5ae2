"""The mini world's language: plans (explicit descriptions) and instructions in two registers.

* A **plan** is the canonical explicit description of a scene, one sentence per shape plus the background:
  ``a big red striped circle at the top left moves right. a small blue plain square at the bottom right stays
  still. gray checked background.`` `plan_text()` writes it, `parse_plan()` reads it back into the exact scene.
* An **explicit** instruction is the plan itself.
* A **reasoning** instruction describes the shapes and background without motions and adds one rule that must be
  resolved to know who moves how (relation, negation, comparison, counting, cause–effect). Shapes the rule does
  not set in motion stay still (the world's convention).

`sample_example(rng, category)` draws a random example; its plan is the resolution.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .scene import (
    COLOURS, KINDS, SIZES, SLOT_NAMES, TEXTURES, BG_COLOURS, BG_TEXTURES,
    Scene, Shape, collides, feasible_motions, motion_feasible, random_layout,
)

REGISTERS = ("explicit", "reasoning")
REASONING_CATEGORIES = ("relation", "negation", "comparison", "counting", "cause")
CATEGORIES = ("explicit",) + REASONING_CATEGORIES

_POS = {slot: ("in the " if name == "center" else "at the ") + name for slot, name in SLOT_NAMES.items()}
_POS_INV = {v: k for k, v in _POS.items()}
_TEX_ADJ = {"striped": "striped", "checked": "checked", "dotted": "dotted", "plain": "plain"}
_NUM = {1: "one", 2: "two", 3: "three"}
_CORNERS = {"circle": "no corners", "triangle": "three corners", "square": "four corners", "star": "five points"}
# Motions a rule may ask of a single shape (relative motions come from relation / cause rules).
_SOLO = ("left", "right", "up", "down", "bounce", "grow", "shrink")


def name(s: Shape) -> str:
    return f"{s.colour} {s.kind}"


def describe(s: Shape) -> str:
    return f"a {s.size} {s.colour} {_TEX_ADJ[s.texture]} {s.kind} {_POS[s.slot]}"


def motion_phrase(scene: Scene, s: Shape) -> str:
    m = s.motion
    if m in ("left", "right", "up", "down"):
        return f"moves {m}"
    if m == "toward":
        return f"moves toward the {name(scene.shapes[s.target])}"
    if m == "away":
        return f"moves away from the {name(scene.shapes[s.target])}"
    return {"bounce": "bounces", "grow": "grows", "shrink": "shrinks", "still": "stays still"}[m]


def background_phrase(scene: Scene) -> str:
    return f"{scene.bg_colour} {scene.bg_texture} background."


def plan_text(scene: Scene) -> str:
    """The canonical explicit description (the resolved plan) of a scene."""
    parts = [f"{describe(s)} {motion_phrase(scene, s)}." for s in scene.shapes]
    return " ".join(parts + [background_phrase(scene)])


def layout_text(scene: Scene) -> str:
    """The scene without motions: what a reasoning instruction starts with."""
    return " ".join([f"{describe(s)}." for s in scene.shapes] + [background_phrase(scene)])


# "a <size> <colour> <texture> <kind> <at the place>": how every shape sentence of plans and instructions begins.
_SHAPE_HEAD = r"a (?P<size>%s) (?P<colour>%s) (?P<texture>%s) (?P<kind>%s) (?P<pos>%s)" % tuple(
    "|".join(sorted(v, key=len, reverse=True)) for v in (SIZES, COLOURS, TEXTURES, KINDS, _POS_INV))
_SHAPE_RE = re.compile(r"^%s (?P<motion>.+)$" % _SHAPE_HEAD)
# The same sentence inside a text: "a" starts a word, the motion (plans only) runs to the full stop.
_SHAPE_IN_TEXT = re.compile(r"(?<![^ ])%s(?: (?P<motion>[^.]*))?\." % _SHAPE_HEAD)
SHAPE_FIELDS = ("size", "colour", "texture", "kind", "pos", "motion")


@dataclass(frozen=True)
class ShapeSentence:
    """One shape sentence found in a text: its fields, and where each field and the sentence are (character spans
    of the lower-cased text). `motion` is the motion phrase ("moves toward the red circle"), None in a layout."""

    size: str
    colour: str
    texture: str
    kind: str
    slot: tuple[int, int]
    motion: str | None
    span: tuple[int, int]
    field_spans: dict[str, tuple[int, int]]


def shape_sentences(text: str) -> list[ShapeSentence]:
    """Every shape sentence in a plan or instruction, in order (reasoning rules and the background are skipped)."""
    out = []
    for m in _SHAPE_IN_TEXT.finditer(text.lower()):
        out.append(ShapeSentence(size=m["size"], colour=m["colour"], texture=m["texture"], kind=m["kind"],
                                 slot=_POS_INV[m["pos"]], motion=m["motion"], span=m.span(),
                                 field_spans={k: m.span(k) for k in SHAPE_FIELDS if m[k] is not None}))
    return out


_BG_RE = re.compile(r"^(?P<colour>%s) (?P<texture>%s) background$" % ("|".join(BG_COLOURS), "|".join(BG_TEXTURES)))


class PlanParseError(ValueError):
    pass


def parse_plan(plan: str) -> Scene:
    """Read a plan back into its scene. Raises PlanParseError naming the sentence it could not read."""
    sentences = [x.strip() for x in plan.strip().lower().split(".") if x.strip()]
    shapes: list[dict] = []
    bg = None
    for sent in sentences:
        m = _BG_RE.match(sent)
        if m:
            bg = (m["colour"], m["texture"])
            continue
        m = _SHAPE_RE.match(sent)
        if not m:
            raise PlanParseError(f"cannot read plan sentence {sent!r}")
        shapes.append(dict(kind=m["kind"], colour=m["colour"], size=m["size"], texture=m["texture"],
                           slot=_POS_INV[m["pos"]], motion_text=m["motion"]))
    if bg is None or not shapes:
        raise PlanParseError(f"plan needs at least one shape and a background, got {plan!r}")
    colours = [d["colour"] for d in shapes]
    if len(set(colours)) != len(colours):
        raise PlanParseError(f"two shapes share a colour in {plan!r}")
    out = []
    for d in shapes:
        mt = d.pop("motion_text")
        target = None
        if mt.startswith("moves toward the ") or mt.startswith("moves away from the "):
            motion = "toward" if "toward" in mt else "away"
            ref = mt.split(" the ", 1)[1]
            target = next((j for j, e in enumerate(shapes) if f"{e['colour']} {e['kind']}" == ref), None)
            if target is None:
                raise PlanParseError(f"unknown shape {ref!r} in {plan!r}")
        elif mt.startswith("moves "):
            motion = mt[len("moves "):]
            if motion not in ("left", "right", "up", "down"):
                raise PlanParseError(f"unknown motion {mt!r}")
        else:
            inv = {"bounces": "bounce", "grows": "grow", "shrinks": "shrink", "stays still": "still"}
            if mt not in inv:
                raise PlanParseError(f"unknown motion {mt!r}")
            motion = inv[mt]
        out.append(Shape(motion=motion, target=target, **d))
    return Scene(shapes=tuple(out), bg_colour=bg[0], bg_texture=bg[1])


@dataclass(frozen=True)
class Example:
    instruction: str
    plan: str
    scene: Scene
    category: str
    # The rule's structure (reasoning examples; None for explicit ones): its "type", "form" and the fields a free
    # phrasing needs (miniworld/phrasing.py re-words the rule from it). Not part of equality.
    rule: dict | None = field(default=None, compare=False)

    @property
    def register(self) -> str:
        return "explicit" if self.category == "explicit" else "reasoning"


def _verb(motion: str) -> str:
    return {"left": "moves left", "right": "moves right", "up": "moves up", "down": "moves down",
            "bounce": "bounces", "grow": "grows", "shrink": "shrinks"}[motion]


def _pick_solo(rng, scene: Scene, idx: list[int]) -> str | None:
    """A solo motion every shape in idx can do, or None."""
    ok = [m for m in _SOLO if all(motion_feasible(scene, i, m) for i in idx)]
    return str(rng.choice(ok)) if ok else None


def _assign(scene: Scene, moves: dict[int, tuple[str, int | None]]) -> Scene:
    return scene.with_motions([moves.get(i, ("still", None)) for i in range(len(scene.shapes))])


def _rule_relation(rng, sc: Scene):
    n = len(sc.shapes)
    if n < 2:
        return None
    options = []
    if n == 2 and sc.shapes[0].size != sc.shapes[1].size:
        big = 0 if sc.shapes[0].size == "big" else 1
        small = 1 - big
        options.append(("the larger shape moves toward the smaller one", {big: ("toward", small)},
                        dict(form="size", mover=big, motion="toward", target=small)))
        options.append(("the smaller shape moves away from the larger one", {small: ("away", big)},
                        dict(form="size", mover=small, motion="away", target=big)))
    for ref in range(n):
        r = sc.shapes[ref]
        for rel, test in (("to the left of", lambda s: s.slot[0] < r.slot[0]),
                          ("to the right of", lambda s: s.slot[0] > r.slot[0]),
                          ("above", lambda s: s.slot[1] < r.slot[1]),
                          ("below", lambda s: s.slot[1] > r.slot[1])):
            hits = [j for j in range(n) if j != ref and test(sc.shapes[j])]
            if len(hits) == 1:
                j = hits[0]
                m = _pick_solo(rng, sc, [j])
                if m:
                    options.append((f"the shape {rel} the {name(r)} {_verb(m)}", {j: (m, None)},
                                    dict(form="place", rel=rel, ref=ref, mover=j, motion=m)))
                if motion_feasible(sc, j, "toward", ref):
                    options.append((f"the shape {rel} the {name(r)} moves toward it", {j: ("toward", ref)},
                                    dict(form="place", rel=rel, ref=ref, mover=j, motion="toward")))
    options = [(t, mv, d) for t, mv, d in options
               if all(motion_feasible(sc, i, m, tg) for i, (m, tg) in mv.items())]
    return options[rng.integers(len(options))] if options else None


def _rule_negation(rng, sc: Scene):
    n = len(sc.shapes)
    if n < 2:
        return None
    options = []
    for attr, word in (("colour", "{v}"), ("kind", "a {v}"), ("texture", "{v}")):
        values = sorted({getattr(s, attr) for s in sc.shapes})
        for v in values:
            idx = [i for i, s in enumerate(sc.shapes) if getattr(s, attr) != v]
            if not idx or len(idx) == n:
                continue
            m = _pick_solo(rng, sc, idx)
            if m:
                options.append((f"every shape that is not {word.format(v=v)} {_verb(m)}", {i: (m, None) for i in idx},
                                dict(form="not", attr=attr, value=v, movers=idx, motion=m)))
    return options[rng.integers(len(options))] if options else None


def _rule_comparison(rng, sc: Scene):
    n = len(sc.shapes)
    if n < 2:
        return None
    options = []
    for size, word in (("big", "biggest"), ("small", "smallest")):
        idx = [i for i, s in enumerate(sc.shapes) if s.size == size]
        if len(idx) == 1:
            options.append((word, idx[0]))
    for word, key in (("leftmost", lambda s: s.slot[0]), ("rightmost", lambda s: -s.slot[0]),
                      ("topmost", lambda s: s.slot[1]), ("lowest", lambda s: -s.slot[1])):
        vals = [key(s) for s in sc.shapes]
        best = min(vals)
        if vals.count(best) == 1:
            options.append((word, vals.index(best)))
    out = []
    for word, i in options:
        m = _pick_solo(rng, sc, [i])
        if m:
            out.append((f"the {word} shape {_verb(m)}", {i: (m, None)}, dict(form=word, mover=i, motion=m)))
    return out[rng.integers(len(out))] if out else None


def _rule_counting(rng, sc: Scene):
    n = len(sc.shapes)
    options = []
    kinds = [s.kind for s in sc.shapes]
    for i, s in enumerate(sc.shapes):
        if kinds.count(s.kind) == 1 and n >= 2:
            m = _pick_solo(rng, sc, [i])
            if m:
                options.append((f"the shape with {_CORNERS[s.kind]} {_verb(m)}", {i: (m, None)},
                                dict(form="corners", kind=s.kind, mover=i, motion=m)))
    i = int(rng.integers(n))
    ok = [m for m in _SOLO if motion_feasible(sc, i, m)]
    if len(ok) >= 2:
        m1, m2 = rng.choice(ok, size=2, replace=False)
        k = int(rng.integers(1, 4))
        chosen = str(m1) if k == n else str(m2)
        it = "it " + _verb(str(m2))
        options.append((f"if there are {_NUM[k]} shapes the {name(sc.shapes[i])} {_verb(str(m1))}, otherwise {it}",
                        {i: (chosen, None)}, dict(form="if", count=k, mover=i, motion=str(m1), otherwise=str(m2))))
    return options[rng.integers(len(options))] if options else None


def _rule_cause(rng, sc: Scene):
    n = len(sc.shapes)
    options = []
    for a in range(n):
        for b in range(n):
            if a == b:
                continue
            if motion_feasible(sc, b, "away", a):
                options.append((f"the {name(sc.shapes[a])} pushes the {name(sc.shapes[b])}", {b: ("away", a)},
                                dict(form="push", agent=a, mover=b)))
            if motion_feasible(sc, b, "toward", a):
                options.append((f"the {name(sc.shapes[a])} pulls the {name(sc.shapes[b])}", {b: ("toward", a)},
                                dict(form="pull", agent=a, mover=b)))
    for i, s in enumerate(sc.shapes):
        options.append((f"the {name(s)} is pumped full of air", {i: ("grow", None)}, dict(form="pump", mover=i)))
        options.append((f"the {name(s)} lets out its air", {i: ("shrink", None)}, dict(form="deflate", mover=i)))
        if motion_feasible(sc, i, "bounce"):
            options.append((f"the {name(s)} is dropped", {i: ("bounce", None)}, dict(form="drop", mover=i)))
    for side, d in (("left", "right"), ("right", "left"), ("top", "down"), ("bottom", "up")):
        if all(motion_feasible(sc, i, d) for i in range(n)):
            options.append((f"a wind blows from the {side}", {i: (d, None) for i in range(n)},
                            dict(form="wind", side=side, motion=d)))
    return options[rng.integers(len(options))] if options else None


_RULES = {"relation": _rule_relation, "negation": _rule_negation, "comparison": _rule_comparison,
          "counting": _rule_counting, "cause": _rule_cause}


def _explicit(rng, sc: Scene) -> Scene:
    moves = {}
    for i in range(len(sc.shapes)):
        if rng.random() < 0.3:
            continue
        opts = feasible_motions(sc, i)
        moves[i] = opts[rng.integers(len(opts))]
    # "toward" / "away" are measured against a target that stays put; a moving target would make them ambiguous.
    for i, (m, t) in list(moves.items()):
        if t is not None and moves.get(t, ("still", None))[0] != "still":
            moves[t] = ("still", None)
    for i, (m, t) in list(moves.items()):
        if t is not None and moves.get(t, ("still", None))[0] != "still":
            moves[i] = ("still", None)
    return _assign(sc, moves)


def sample_example(rng: np.random.Generator, category: str, max_tries: int = 100) -> Example:
    """Draw one example of a category (see CATEGORIES)."""
    if category not in CATEGORIES:
        raise ValueError(f"category must be one of {CATEGORIES}, got {category!r}")
    for _ in range(max_tries):
        n = None if category in ("explicit", "counting", "cause") else int(rng.choice([2, 3]))
        layout = random_layout(rng, n)
        if category == "explicit":
            scene = _explicit(rng, layout)
            if collides(scene):
                continue
            plan = plan_text(scene)
            return Example(plan, plan, scene, category)
        rule = _RULES[category](rng, layout)
        if rule is None:
            continue
        text, moves, spec = rule
        scene = _assign(layout, moves)
        if collides(scene):
            continue
        return Example(f"{layout_text(layout)} {text}.", plan_text(scene), scene, category,
                       dict(spec, type=category))
    raise RuntimeError(f"could not draw a {category} example in {max_tries} tries")
