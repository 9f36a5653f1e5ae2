"""Does a plan honour what an instruction stated?

A free phrasing may leave size, texture, place or background out; the plan may then say anything there (the
family writes the defaults, but that is not what the user asked for, so it is not checked). Everything the
instruction did say must be in the plan: the same shapes (by colour), each one's kind, and its size, texture and
place where stated, its motion (and the shape a relative motion is measured against), and the background where
stated. A reasoning rule states the motions it resolves to.

`stated_of(item)` gives what an item states: a `phrasing.Phrased` records it; a template `Example` states all.
"""

from __future__ import annotations

from .language import PlanParseError, parse_plan

ALL = frozenset({"colour", "kind", "size", "texture", "slot", "motion"})


def stated_of(item) -> tuple[tuple[frozenset, ...], bool]:
    """(stated attributes per shape of item.scene, whether the background is stated)."""
    if hasattr(item, "stated"):
        return item.stated, item.bg_stated
    return tuple(ALL for _ in item.scene.shapes), True


def parses(plan: str) -> bool:
    try:
        parse_plan(plan)
    except PlanParseError:
        return False
    return True


def unhonoured(plan: str, item) -> list[str]:
    """What the plan gets wrong of what ``item`` stated (empty: it honours every stated attribute and motion)."""
    try:
        got = parse_plan(plan)
    except PlanParseError as e:
        return [f"does not parse: {e}"]
    want = item.scene
    stated, bg_stated = stated_of(item)
    by_colour = {s.colour: s for s in got.shapes}
    errors = []
    extra = set(by_colour) - {s.colour for s in want.shapes}
    if extra:
        errors.append(f"shapes not asked for: {sorted(extra)}")
    for s, st in zip(want.shapes, stated):
        p = by_colour.get(s.colour)
        if p is None:
            errors.append(f"no {s.colour} {s.kind}")
            continue
        for attr in ("kind", "size", "texture", "slot"):
            if attr in st and getattr(p, attr) != getattr(s, attr):
                errors.append(f"{s.colour} {s.kind}: {attr} {getattr(p, attr)!r}, asked {getattr(s, attr)!r}")
        if "motion" in st:
            want_t = want.shapes[s.target].colour if s.target is not None else None
            got_t = got.shapes[p.target].colour if p.target is not None else None
            if (p.motion, got_t) != (s.motion, want_t):
                errors.append(f"{s.colour} {s.kind}: motion {p.motion} {got_t or ''}, asked {s.motion} {want_t or ''}")
    if bg_stated and (got.bg_colour, got.bg_texture) != (want.bg_colour, want.bg_texture):
        errors.append(f"background {got.bg_colour} {got.bg_texture}, asked {want.bg_colour} {want.bg_texture}")
    return errors


def honours(plan: str, item) -> bool:
    return not unhonoured(plan, item)
