"""Free phrasing of the mini world: an Example (scene + its rule) said the way people type it, in both registers.

`phrase(example, rng, split)` re-words an example: size, texture, place and background may be left out (the plan
then holds the world's defaults: `DEFAULTS`, so an omitted attribute always resolves the same way), motions and
rules are said with many verbs, frames, fillers, plurals, numbers, capitals and punctuation, and ball/box/block
name circles and squares. Every pool (miniworld/phrasing_pools.py) is split into TRAIN and HELD-OUT entries:
`split="train"` draws training entries only; `split="heldout"` always uses a held-out sentence frame or rule
wording and each other choice is held out half the time, so the bench measures wordings never trained on.

`sample_phrased(rng, category, split)` draws a fresh example and phrases it, keeping the world's scene split
(train scenes for training, bench-bucket scenes for the held-out bench). `KNOWN_WORDS`: every word the family is
trained on (template language + training entries), for reporting the words of an instruction it does not know.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, replace

import numpy as np

from . import phrasing_pools as P
from .language import CATEGORIES, Example, plan_text, sample_example
from .scene import BG_COLOURS, BG_TEXTURES, COLOURS, KINDS, SLOT_NAMES, TEXTURES, Scene, collides, motion_feasible
from .split import split_of

SPLITS = ("train", "heldout")
# What an instruction that leaves an attribute out means (the plan writes these).
DEFAULTS = {"size": "small", "texture": "plain", "bg_colour": "gray", "bg_texture": "checked"}
DEFAULT_SLOTS = {1: [(1, 1)], 2: [(0, 1), (2, 1)], 3: [(0, 0), (2, 0), (1, 2)]}  # in order of mention
ATTRS = ("colour", "kind", "size", "texture", "slot", "motion")
# Attributes a rule reads, which its layout must therefore state (by rule form).
_RULE_NEEDS = {"size": {"size"}, "place": {"slot"}, "biggest": {"size"}, "smallest": {"size"},
               "leftmost": {"slot"}, "rightmost": {"slot"}, "topmost": {"slot"}, "lowest": {"slot"}}


@dataclass(frozen=True)
class Phrased:
    """A phrased example. `scene` (and `plan`) hold the defaults for what the instruction left out; `stated[i]` names
    the attributes of scene.shapes[i] the instruction fixes (a reasoning rule fixes the motions it resolves)."""

    instruction: str
    plan: str
    scene: Scene
    category: str
    stated: tuple[frozenset, ...]
    bg_stated: bool
    heldout_parts: tuple[str, ...] = ()

    @property
    def register(self) -> str:
        return "explicit" if self.category == "explicit" else "reasoning"


class _Say:
    """Choices of one phrasing: draws from a pool's training entries, or (held-out split) its held-out ones."""

    def __init__(self, rng, split: str):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.rng, self.split, self.held = rng, split, []

    def pick(self, pool: P.Pool, tag: str = "", force_held: bool = False) -> str:
        use_held = self.split == "heldout" and pool.held and (force_held or self.rng.random() < 0.5)
        entries = pool.held if use_held else pool.train
        if not entries:
            entries = pool.train or pool.held
        choice = entries[int(self.rng.integers(len(entries)))]
        if use_held:
            self.held.append(f"{tag}:{choice}")
        return choice

    def coin(self, p: float) -> bool:
        return bool(self.rng.random() < p)


def conjugate(template: str, form: str) -> str:
    """Fill a pool entry's <verb> marks: form "3sg" (moves), "base" (move) or "ing" (moving)."""
    if form == "ing" and template.startswith("<do> not "):  # "not moving (at all)"
        verb, _, rest = template[len("<do> not "):].partition(" ")
        return "not " + conjugate(f"<{verb}> {rest}".strip(), "ing")

    def one(m):
        lemma = m.group(1)
        return lemma if form == "base" else P.VERBS[lemma][0 if form == "3sg" else 1]

    return re.sub(r"<(\w+)>", one, template)


def motion_phrase(say: _Say, motion: str, target_np: str | None, form: str) -> str:
    entries = P.MOTIONS[motion]
    if form == "make":  # "make the X …": no "does not"
        entries = P.Pool(*(tuple(e for e in x if not e.startswith("<do>")) for x in (entries.train, entries.held)))
        form = "base"
    text = conjugate(say.pick(entries, "motion"), form)
    return text.replace("{t}", target_np or "it")


class _Shapes:
    """Noun phrases for the shapes of one phrasing, saying only the stated attributes."""

    def __init__(self, say: _Say, scene: Scene, stated: list[set]):
        self.say, self.scene, self.stated = say, scene, stated

    def kind_word(self, i: int) -> str:
        return self.say.pick(P.KINDS[self.scene.shapes[i].kind], "kind")

    def ref(self, i: int) -> str:
        """The definite reference a rule or a relative motion uses: "the red ball"."""
        return f"the {self.scene.shapes[i].colour} {self.kind_word(i)}"

    def place(self, i: int) -> str:
        return self.say.pick(P.PLACES[SLOT_NAMES[self.scene.shapes[i].slot]], "place")

    def np(self, i: int, det: str = "a", place: bool = True, kind: str | None = None) -> str:
        s, st, say = self.scene.shapes[i], self.stated[i], self.say
        words = [det] if det else []
        if "size" in st:
            words.append(say.pick(P.SIZES[s.size], "size"))
        words.append(s.colour)
        with_tex = None
        if "texture" in st:
            if P.TEXTURE_WITH[s.texture].train and say.coin(0.3):
                with_tex = say.pick(P.TEXTURE_WITH[s.texture], "texture")
            else:
                words.append(say.pick(P.TEXTURE_ADJ[s.texture], "texture"))
        words.append(kind or self.kind_word(i))
        if with_tex:
            words.append(with_tex)
        if place and "slot" in st:
            words.append(self.place(i))
        return " ".join(words)


def _join(parts: list[str], sep: str = ", ", last: str = " and ") -> str:
    return parts[0] if len(parts) == 1 else sep.join(parts[:-1]) + last + parts[-1]


def _explicit_text(say: _Say, sh: _Shapes, order: list[int]) -> str:
    sc = sh.scene
    frame = say.pick(P.EXPLICIT, "frame", force_held=True)

    def mot(i, form):
        s = sc.shapes[i]
        return motion_phrase(say, s.motion, sh.ref(s.target) if s.target is not None else None, form)

    has_place = all("slot" in sh.stated[i] for i in order)
    if frame == "place_first" and not has_place:
        frame = "sentences"
    if frame == "place_there_is" and not has_place:
        frame = "while"
    n = len(order)
    if frame == "sentences":
        return " ".join(f"{sh.np(i)} {mot(i, '3sg')}." for i in order)
    if frame == "list":
        return _join([f"{sh.np(i)} {mot(i, '3sg')}" for i in order]) + "."
    if frame == "there_is":
        there = "there's" if say.coin(0.3) else "there is"
        return f"{there} " + _join([f"{sh.np(i)} that {mot(i, '3sg')}" for i in order]) + "."
    if frame == "make":
        return "make " + _join([f"{sh.np(i, 'the')} {mot(i, 'make')}" for i in order]) + "."
    if frame == "imperative":
        return _join([_imperative(say, sh, i) for i in order]) + "."
    if frame == "place_first":
        return " ".join(f"{sh.place(i)}, {sh.np(i, place=False)} {mot(i, '3sg')}." for i in order)
    if frame == "show_gerund":
        return "show me " + _join([f"{sh.np(i)} {mot(i, 'ing')}" for i in order]) + "."
    if frame == "count_list":
        head = f"{P.NUMBERS[n]} shape{'s' if n > 1 else ''}: "
        return head + _join([f"{sh.np(i)} {mot(i, '3sg')}" for i in order]) + "."
    if frame == "video_with":
        return "a video with " + _join([f"{sh.np(i)} {mot(i, 'ing')}" for i in order]) + "."
    if frame == "we_have":
        return "we have " + _join([f"{sh.np(i)} that {mot(i, '3sg')}" for i in order]) + "."
    if frame == "while":
        first = f"{sh.np(order[0])} {mot(order[0], '3sg')}"
        return first + ("" if n == 1 else " while " + _join([f"{sh.np(i)} {mot(i, '3sg')}" for i in order[1:]])) + "."
    if frame == "want_to":
        return "i want " + _join([f"{sh.np(i)} to {mot(i, 'make')}" for i in order]) + "."
    if frame == "there_are_gerund":
        head = f"there are {P.NUMBERS[n]} shapes: " if n > 1 else "there is one shape: "
        return head + _join([f"{sh.np(i)} {mot(i, 'ing')}" for i in order], last=", and ") + "."
    if frame == "place_there_is":
        return "; ".join(f"{sh.place(i)} there is {sh.np(i, place=False)} that {mot(i, '3sg')}" for i in order) + "."
    raise AssertionError(frame)


def _imperative(say: _Say, sh: _Shapes, i: int) -> str:
    """"move the red circle to the left", "inflate the blue box", else "make the X <motion>"."""
    s = sh.scene.shapes[i]
    obj = sh.np(i, "the")
    if s.motion in P.IMPERATIVE_OTHER and say.coin(0.7):
        return say.pick(P.Pool(P.IMPERATIVE_OTHER[s.motion]), "imperative").replace("{x}", obj)
    if s.motion in ("left", "right", "up", "down", "toward", "away") and say.coin(0.7):
        verb = P.IMPERATIVE_VERBS[int(say.rng.integers(len(P.IMPERATIVE_VERBS)))]
        rest = {"left": ["left", "to the left"], "right": ["right", "to the right"], "up": ["up"], "down": ["down"],
                "toward": ["toward {t}", "towards {t}"], "away": ["away from {t}"]}[s.motion]
        r = rest[int(say.rng.integers(len(rest)))]
        return f"{verb} {obj} {r}".replace("{t}", sh.ref(s.target) if s.target is not None else "it")
    return f"make {obj} {motion_phrase(say, s.motion, sh.ref(s.target) if s.target is not None else None, 'make')}"


def _layout_text(say: _Say, sh: _Shapes, order: list[int]) -> tuple[str, str]:
    """The layout without motions: (text ending in a full stop, the same text open for a joined clause)."""
    frame = say.pick(P.LAYOUT, "layout")
    n = len(order)
    has_place = all("slot" in sh.stated[i] for i in order)
    kinds = {sh.scene.shapes[i].kind for i in order}
    if frame in ("place_first", "place_is") and not has_place:
        frame = "there_is" if frame == "place_first" else "there_are"
    if frame == "same_kind" and (len(kinds) > 1 or n == 1):
        frame = "list"
    if frame == "sentences":
        t = " ".join(f"{sh.np(i)}." for i in order)
        return t, t[:-1]
    if frame == "list":
        t = _join([sh.np(i) for i in order])
    elif frame == "there_is":
        t = ("there's " if say.coin(0.3) else "there is ") + _join([sh.np(i) for i in order])
    elif frame == "count_list":
        t = f"{P.NUMBERS[n]} shape{'s' if n > 1 else ''}: " + _join([sh.np(i) for i in order])
    elif frame == "same_kind":
        k = sh.kind_word(order[0])
        t = f"{P.NUMBERS[n]} {P.PLURAL[k]}: " + _join([sh.np(i, kind="one") for i in order])
    elif frame == "place_first":
        t = ". ".join(f"{sh.place(i)} there is {sh.np(i, place=False)}" for i in order)
    elif frame == "we_have":
        t = "we have " + _join([sh.np(i) for i in order])
    elif frame == "scene_has":
        t = "the scene has " + _join([sh.np(i) for i in order])
    elif frame == "there_are":
        t = (f"there are {P.NUMBERS[n]} shapes, " if n > 1 else "there is one shape, ") + _join(
            [sh.np(i) for i in order])
    elif frame == "place_is":
        t = _join([f"{sh.place(i)} is {sh.np(i, place=False)}" for i in order], last=", and ")
    else:
        raise AssertionError(frame)
    return t + ".", t


def _motion3(say, sh, motion, target=None, plural=False):
    return motion_phrase(say, motion, sh.ref(target) if target is not None else None, "base" if plural else "3sg")


def _rule_text(say: _Say, sh: _Shapes, rule: dict) -> str:
    f, sc = rule["form"], sh.scene
    pick = lambda pool: say.pick(pool, f"rule-{f}", force_held=True)  # noqa: E731
    if rule["type"] == "relation" and f == "size":
        subj = say.pick(P.RELATION_SIZE[sc.shapes[rule["mover"]].size], f"rule-{f}", force_held=True)
        obj = say.pick(P.RELATION_SIZE[sc.shapes[rule["target"]].size], "rule-object").replace("shape", "one", 1)
        return f"{subj} {motion_phrase(say, rule['motion'], obj, '3sg')}"
    if f == "place":
        rel = say.pick(P.RELATIONS[rule["rel"]], "relation")
        subj = pick(P.RELATION_SUBJECT).format(rel=rel, ref=sh.ref(rule["ref"]))
        if rule["motion"] == "toward":
            return f"{subj} {motion_phrase(say, 'toward', 'it', '3sg')}"
        return f"{subj} {_motion3(say, sh, rule['motion'])}"
    if f == "not":
        movers = rule["movers"]
        if len(movers) == 1 and say.coin(0.25):
            i = movers[0]
            return pick(P.ONLY_ONE).format(c=sc.shapes[i].colour, k=sh.kind_word(i),
                                           m=_motion3(say, sh, rule["motion"]))
        v = rule["value"]
        excluded = sum(getattr(s, rule["attr"]) == v for s in sc.shapes)
        kw = say.pick(P.KINDS[v], "kind") if rule["attr"] == "kind" else v
        return pick(P.NEGATION[rule["attr"]]).format(
            v=kw, vs=P.PLURAL.get(kw, kw), vx=kw if excluded == 1 else P.PLURAL.get(kw, kw),
            ones="one" if excluded == 1 else "ones", m=_motion3(say, sh, rule["motion"]),
            mp=_motion3(say, sh, rule["motion"], plural=True))
    if rule["type"] == "comparison":
        pools = P.COMPARISON[f]
        if f in P.COMPARISON_TWO and len(sc.shapes) == 2 and say.coin(0.4):
            pools = P.Pool(P.COMPARISON_TWO[f].train, pools.held)
        only = "only " if say.coin(0.15) else ""
        return f"{only}{pick(pools)} {_motion3(say, sh, rule['motion'])}"
    if f == "corners":
        kind = rule["kind"]
        subj = pick(P.COUNT_CORNERS).format(c=P.CORNERS[kind])
        return f"{subj} {_motion3(say, sh, rule['motion'])}"
    if f == "if":
        k = rule["count"]
        n = str(k) if say.coin(0.2) else P.NUMBERS[k]
        return pick(P.COUNT_IF).format(are="is" if k == 1 else "are", n=n, shapes="shape" if k == 1 else "shapes",
                                       ref=sh.ref(rule["mover"]), m1=_motion3(say, sh, rule["motion"]),
                                       m2=_motion3(say, sh, rule["otherwise"]))
    if f in ("push", "pull"):
        return pick(P.CAUSE[f]).format(a=sh.ref(rule["agent"]), b=sh.ref(rule["mover"]))
    if f in ("pump", "deflate", "drop"):
        return pick(P.CAUSE[f]).format(x=sh.ref(rule["mover"]))
    if f == "wind":
        return pick(P.CAUSE["wind"]).format(s=say.pick(P.WIND_SIDES[rule["side"]], "side"))
    raise AssertionError(rule)


def _omit(say: _Say, ex: Example, keep_scene: bool) -> tuple[Scene, list[int], list[set], bool]:
    """Choose what the phrasing leaves out: the scene it then means (defaults filled in, shapes in the new order
    when places are defaulted), the order of mention (indices into ex.scene), stated attributes per new shape."""
    sc, n = ex.scene, len(ex.scene.shapes)
    rule = ex.rule or {}
    needs = _RULE_NEEDS.get(rule.get("form"), set())
    if rule.get("form") == "not" and rule.get("attr") in ("texture", "size"):
        needs = {rule["attr"]}  # "everything except the striped ones" needs every texture said
    order = list(range(n))
    if say.coin(0.25):
        order = [int(x) for x in say.rng.permutation(n)]
    drop_bg = say.coin(0.5)
    drop_size = [say.coin(0.4) and "size" not in needs for _ in range(n)]
    drop_tex = [say.coin(0.5) and "texture" not in needs for _ in range(n)]
    drop_slot = say.coin(0.35) and "slot" not in needs
    for attempt in range(3):
        shapes = list(sc.shapes)
        for i in range(n):
            if drop_size[i]:
                shapes[i] = replace(shapes[i], size=DEFAULTS["size"])
            if drop_tex[i]:
                shapes[i] = replace(shapes[i], texture=DEFAULTS["texture"])
        new_order = list(range(n))
        if drop_slot:  # mention order decides the default places, and so the plan's order
            new_order = order
            shapes = [replace(shapes[j], slot=DEFAULT_SLOTS[n][k]) for k, j in enumerate(order)]
            inv = {j: k for k, j in enumerate(order)}
            shapes = [replace(s, target=inv[s.target] if s.target is not None else None) for s in shapes]
        bg = (DEFAULTS["bg_colour"], DEFAULTS["bg_texture"]) if drop_bg else (sc.bg_colour, sc.bg_texture)
        new = replace(sc, shapes=tuple(shapes), bg_colour=bg[0], bg_texture=bg[1])
        ok = not collides(new) and all(motion_feasible(new, i, s.motion, s.target) for i, s in enumerate(new.shapes))
        if keep_scene:
            ok = ok and plan_text(new) == ex.plan
        if ok:
            break
        # too much left out for this scene: say the places, then everything
        if attempt == 0:
            drop_slot = False
        else:
            drop_size, drop_tex, drop_slot, drop_bg = [False] * n, [False] * n, False, keep_scene and False
    else:
        new, new_order = sc, list(range(n))
    stated = []
    for k, j in enumerate(new_order):
        st = {"colour", "kind", "motion"}
        st |= {"size"} if new.shapes[k].size != DEFAULTS["size"] or not drop_size[j] else set()
        st |= {"texture"} if not drop_tex[j] else set()
        st |= {"slot"} if not drop_slot else set()
        stated.append(st)
    bg_stated = not drop_bg or (new.bg_colour, new.bg_texture) != (DEFAULTS["bg_colour"], DEFAULTS["bg_texture"])
    # order of mention, as indices into the new scene
    mention = list(range(n)) if drop_slot else order
    return new, mention, stated, bg_stated


def _finish(say: _Say, text: str) -> str:
    """Filler, punctuation and capitals around the phrasing."""
    text = say.pick(P.PREFIX, "prefix") + text
    end = say.pick(P.SUFFIX, "suffix")
    text = text.rstrip(".") + end if end.strip() else (text if end == "." or say.coin(0.5) else text.rstrip("."))
    r = say.rng.random()
    if r < 0.35:  # Sentence case
        text = re.sub(r"(^|[.!?;:]\s+)([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)
    elif r < 0.45:
        text = text.upper()
    return re.sub(r"\s+", " ", text).strip()


def phrase(ex: Example, rng: np.random.Generator, split: str = "train", keep_scene: bool = False) -> Phrased:
    """A free phrasing of ``ex``. ``keep_scene``: leave out only what equals the defaults, so the plan stays
    ``ex.plan`` (for pairs whose rendered clip must stay valid)."""
    say = _Say(rng, split)
    scene, mention, stated, bg_stated = _omit(say, ex, keep_scene)
    sh_text = _Shapes(say, scene, stated)
    if ex.category == "explicit":
        body = _explicit_text(say, sh_text, mention)
    else:
        # the rule names shapes by their index in ex.scene; map them to the new scene (same colours)
        colour_to_new = {s.colour: k for k, s in enumerate(scene.shapes)}
        rule = dict(ex.rule)
        for key in ("mover", "ref", "agent", "target"):
            if key in rule:
                rule[key] = colour_to_new[ex.scene.shapes[rule[key]].colour]
        if "movers" in rule:
            rule["movers"] = [colour_to_new[ex.scene.shapes[i].colour] for i in rule["movers"]]
        merged = (len(scene.shapes) == 1 and rule["form"] in ("pump", "deflate", "drop") and say.coin(0.5))
        if merged:  # "a blue circle is pumped full of air"
            body = _rule_text(say, sh_text, rule)
            ref = sh_text.ref(0)
            body = body.replace(ref, sh_text.np(0), 1) if body.startswith(ref) else None
        if not merged or body is None:
            layout, layout_open = _layout_text(say, sh_text, mention)
            body = say.pick(P.RULE_JOIN, "join").format(layout=layout, layout_open=layout_open,
                                                        rule=_rule_text(say, sh_text, rule))
    if bg_stated:
        bg = say.pick(P.BACKGROUND, "background").format(c=say.pick(P.BG_COLOURS[scene.bg_colour], "bg"),
                                                         t=say.pick(P.BG_TEXTURES[scene.bg_texture], "bg"))
        first = say.coin(0.2) and bg.startswith(("on a", "with a"))  # "on a gray checked background, …"
        body = f"{bg[:-1]}, {body}" if first else f"{body.rstrip('.')}. {bg}"
    text = _finish(say, body)
    return Phrased(text, plan_text(scene), scene, ex.category, tuple(frozenset(s) for s in stated), bg_stated,
                   tuple(say.held))


def sample_phrased(rng: np.random.Generator, category: str, split: str = "train") -> Phrased:
    """A fresh example of ``category`` phrased freely. Training phrasings keep to train-split scenes; held-out
    phrasings to bench-bucket scenes (never trained on either)."""
    want = "train" if split == "train" else "bench"
    while True:
        ph = phrase(sample_example(rng, category), rng, split)
        if split_of(ph.plan) == want and (split == "train" or ph.heldout_parts):
            return ph


HELDOUT_SEED = 20261128
HELDOUT_PER_CATEGORY = 36  # 6 categories × 36 = 216, as many as the template bench


def heldout_set(per_category: int = HELDOUT_PER_CATEGORY, seed: int = HELDOUT_SEED) -> list[tuple[Phrased, int]]:
    """The held-out phrasing bench: (phrasing, generation seed) balanced over CATEGORIES, deterministic; held-out
    wordings only, on bench-bucket scenes."""
    return list(_heldout_set(per_category, seed))


@functools.lru_cache(maxsize=4)
def _heldout_set(per_category: int, seed: int) -> tuple[tuple[Phrased, int], ...]:
    out = []
    for ci, cat in enumerate(CATEGORIES):
        rng = np.random.default_rng([seed, ci])
        seen: set[str] = set()
        while len(seen) < per_category:
            ph = sample_phrased(rng, cat, "heldout")
            if ph.instruction not in seen:
                out.append((ph, seed + 1000 * ci + len(seen)))
                seen.add(ph.instruction)
    return tuple(out)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def _known_words() -> frozenset[str]:
    out = set(P.TEMPLATE_WORDS) | set(COLOURS) | set(KINDS) | set(TEXTURES) | set(BG_COLOURS) | set(BG_TEXTURES)
    out |= {w for name in SLOT_NAMES.values() for w in name.split()}
    for v in vars(P).values():
        pools = [v] if isinstance(v, P.Pool) else list(v.values()) if isinstance(v, dict) else []
        for p in pools:
            if isinstance(p, P.Pool):
                for e in p.train:
                    out |= _words(re.sub(r"\{\w+\}", " ", re.sub(r"<(\w+)>", lambda m: " ".join(
                        (m.group(1),) + P.VERBS[m.group(1)]), e)))
            elif isinstance(p, tuple):
                for e in p:
                    out |= _words(re.sub(r"\{\w+\}", " ", e))
            elif isinstance(p, str):
                out |= _words(p)
    out |= set(P.NUMBERS.values()) | set(P.PLURAL.values()) | {lemma for lemma in P.VERBS}
    out |= {w for forms in P.VERBS.values() for w in forms}
    # frames written in code (phrasing.py) and contractions split at the apostrophe
    out |= _words("make show me there is are shape shapes one ones that it s t to i want not the is a video with we "
                  "have scene has")
    return frozenset(out)


KNOWN_WORDS: frozenset[str] = _known_words()
