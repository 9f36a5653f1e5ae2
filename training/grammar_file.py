"""The family's plan grammar file (understanding/plan_grammar.json, read by engine/plan_grammar.py), written from
the world's concepts: the plan's word lists, and the training wordings that mean one plan word ("synonyms": "with
dots" → "dotted", "upper" → "top", "balls" → "circles"), which the engine uses to read what an instruction states
about each shape (engine/stated_attributes.py). Held-out wordings are never listed."""

from __future__ import annotations

import re
from pathlib import Path

from miniworld import phrasing_pools as P
from miniworld.language import _POS
from miniworld.scene import BG_COLOURS, BG_TEXTURES, COLOURS, KINDS, SIZES, TEXTURES

from .lm_vocab import SYNONYMS

MAX_SHAPES = 3
FORMAT = 1


def _pool_synonyms(pools: dict) -> dict[str, str]:
    """Training entries of {plan word: Pool} that are not the plan word itself."""
    return {e: word for word, p in pools.items() for e in p.train if e != word}


# Everyday English for the world's words that neither the template language nor the phrasing pools use (British
# spelling, a photographer's "backdrop", a power user's corner abbreviations). The engine's stated reading knows them;
# the LM does not need to, because what they state becomes an obligation of decoding.
READER_SYNONYMS = {"backdrop": "background", "bg": "background", "chequered": "checked", "chequer": "checked",
                   "checker": "checked", "tl": "top left", "tr": "top right", "bl": "bottom left",
                   "br": "bottom right", "sphere": "circle", "spheres": "circles", "cube": "square", "cubes": "squares",
                   # textures: pattern names people use for the world's four
                   "polka dot": "dotted", "polka dots": "dotted", "polka dotted": "dotted", "polkadot": "dotted",
                   "with polka dots": "dotted", "spotty": "dotted", "speckled": "dotted", "covered in dots": "dotted",
                   "covered in spots": "dotted", "covered with dots": "dotted", "covered with spots": "dotted",
                   "stripey": "striped", "banded": "striped", "pinstriped": "striped", "covered in stripes":
                   "striped", "with lines": "striped", "checkerboard": "checked", "chequerboard": "checked",
                   "checkered pattern": "checked", "gingham": "checked", "unpatterned": "plain",
                   "stripes": "striped", "dots": "dotted", "spots": "dotted", "checks": "checked",
                   "patternless": "plain",
                   # sizes and colours (the world's colours are saturated primaries: a pink or purple is magenta)
                   "giant": "big", "massive": "big", "chunky": "big", "enormous": "big", "oversized": "big",
                   "jumbo": "big",
                   "mini": "small", "teeny": "small", "miniature": "small", "wee": "small",
                   "crimson": "red", "scarlet": "red", "pink": "magenta", "fuchsia": "magenta", "purple": "magenta",
                   "violet": "magenta", "turquoise": "cyan", "aqua": "cyan", "teal": "cyan", "navy": "blue",
                   "lime": "green", "golden": "yellow", "gold": "yellow", "beige": "sand", "tan": "sand",
                   "khaki": "sand", "sand coloured": "sand", "sand colored": "sand", "silver": "gray",
                   # kinds
                   "disc": "circle", "discs": "circles", "disk": "circle", "disks": "circles", "orb": "circle",
                   "orbs": "circles", "rectangle": "square", "rectangles": "squares",
                   # places
                   "centered": "in the center", "centred": "in the center", "dead center": "center",
                   "dead centre": "center",
                   # a rule's comparisons in other words: "the bigger of the two", "higher up than the green circle"
                   "bigger of the two": "biggest one", "larger of the two": "biggest one",
                   "smaller of the two": "smallest one", "farthest": "furthest", "higher than": "above",
                   "higher up than": "above", "lower than": "below", "lower down than": "below",
                   "further right than": "right of", "farther right than": "right of",
                   "further left than": "left of", "farther left than": "left of",
                   "more to the right than": "right of", "more to the left than": "left of",
                   "most on the right": "furthest right", "most on the left": "furthest left",
                   "most to the right": "furthest to the right", "most to the left": "furthest to the left",
                   "more to the right": "furthest to the right", "more to the left": "furthest to the left",
                   # a count rule's other branch and its corners in other words
                   "in every other case": "otherwise", "in any other case": "otherwise", "in all other cases":
                   "otherwise", "with any other number": "otherwise", "if there aren t": "if not",
                   "if there isn t": "if not", "zero corners": "no corners", "w": "with",
                   # causes in everyday verbs
                   "knocks": "pushes", "knock": "push", "knocked": "pushed", "nudges": "pushes", "nudge": "push",
                   "nudged": "pushed", "kicks": "pushes", "kick": "push", "kicked": "pushed", "reels in": "pulls",
                   "reel in": "pull", "reeled in": "pulled", "tows": "pulls", "tow": "pull", "towed": "pulled",
                   "hauls": "pulls", "haul": "pull", "hauled": "pulled", "blow air into": "pump air into",
                   "blows air into": "pumps air into", "blowing air into": "pumping air into",
                   "springs a leak": "has a leak", "sprung a leak": "has a leak", "spring a leak": "has a leak"}
# Everyday verbs for the world's motions, in every verb form its phrases use. Kept apart: their plan words ("rise",
# "grows") are motion words, which `motion_tables` must not count as the world's other words.
READER_MOTION_SYNONYMS = {"in the direction of": "toward", "back off from": "back away from",
                          "backs off from": "backs away from", "backing off from": "backing away from",
                          # "still" alone says the still motion once it is no longer another word's plan word
                          "static": "still", "stationary": "still", "motionless": "still", "frozen": "still",
                          "unmoving": "still", "immobile": "still", "idle": "stay still", "idles": "stays still",
                          "idling": "staying still", "parked": "still",
                          "hop": "bounce", "hops": "bounces", "hopping": "bouncing", "jump": "bounce",
                          "jumps": "bounces", "jumping": "bouncing", "budge": "move", "budges": "moves",
                          "budging": "moving", "doesn t": "does not", "don t": "do not", "no movement": "not moving",
                          "no motion": "not moving", "ascend": "rise", "ascends": "rises", "ascending": "rising",
                          "enlarge": "grow", "enlarges": "grows", "enlarging": "growing", "dwindle": "shrink",
                          "dwindles": "shrinks", "dwindling": "shrinking", "shrivel": "shrink", "shrivels": "shrinks",
                          "shrivelling": "shrinking", "scale up": "grow", "scales up": "grows", "scaling up": "growing",
                          "scale down": "shrink", "scales down": "shrinks", "scaling down": "shrinking",
                          "never moves": "does not move", "never moved": "does not move", "never move": "do not move",
                          "does nothing": "does not move", "do nothing": "do not move", "doing nothing": "not moving",
                          "race": "move", "races": "moves", "racing": "moving", "scoot": "move", "scoots": "moves",
                          "scooting": "moving", "dash": "move", "dashes": "moves", "dashing": "moving",
                          "zoom": "move", "zooms": "moves", "zooming": "moving", "walk": "move", "walks": "moves",
                          "walking": "moving", "run": "move", "runs": "moves", "running": "moving",
                          "off to the": "to the"}


def reader_words() -> set[str]:
    """Every word of the everyday phrases only the engine's reader maps (the family's vocabulary lists them)."""
    return {w for phrase in READER_SYNONYMS | READER_MOTION_SYNONYMS for w in phrase.split()}


def synonyms() -> dict[str, str]:
    out = dict(SYNONYMS) | READER_SYNONYMS | READER_MOTION_SYNONYMS
    for pools in (P.SIZES, P.TEXTURE_ADJ, P.TEXTURE_WITH, P.KINDS):
        out.update(_pool_synonyms(pools))
    for word, kind in _pool_synonyms(P.KINDS).items():  # "balls" → "circles"
        out[P.PLURAL[word]] = P.PLURAL[kind]
    return dict(sorted(out.items()))


PLAN_MOTIONS = {"left": "moves left", "right": "moves right", "up": "moves up", "down": "moves down",
                "bounce": "bounces", "grow": "grows", "shrink": "shrinks", "still": "stays still",
                "toward": "moves toward the", "away": "moves away from the"}
# words that say no motion by themselves (a motion's phrase may still hold them: "does not move", "away from")
FUNCTION_WORDS = set("a an the to it its is do does not there where from back and in on at of".split())
# Verbs an instruction places a shape with ("put a box at the left and let it sink"): the still motion's phrases use
# them too ("stay put", "in place"), where the phrase itself says the motion, but alone they say where, not how.
PLACING_VERBS = {"put", "place", "set", "position"}


def motion_tables(syn: dict[str, str]) -> tuple[dict, dict]:
    """(plan motion → its training phrases in every verb form, plan motion → the words only its phrases use),
    normalised as the engine reads an instruction (synonyms applied)."""
    from engine.stated_attributes import normalise
    from miniworld.phrasing import conjugate

    phrases, words = {}, {}
    for motion, p in P.MOTIONS.items():
        said = {" ".join(normalise(conjugate(e, form).replace("{t}", " "), syn))
                for e in p.train for form in ("base", "3sg", "ing")}
        phrases[PLAN_MOTIONS[motion]] = sorted(said)
        words[motion] = {w for x in said for w in x.split()}
    world = {w for pools in (P.SIZES, P.COLOURS, P.TEXTURE_ADJ, P.KINDS) for k, p in pools.items()
             for w in [k, *p.train]} | {"top", "bottom", "center", "corner", "side"}
    world |= {w for k, v in syn.items() if k not in READER_MOTION_SYNONYMS for w in (k, v)}
    unique = {}
    for motion, ws in words.items():
        others = set().union(*(v for m, v in words.items() if m != motion))
        unique[PLAN_MOTIONS[motion]] = sorted(ws - others - FUNCTION_WORDS - PLACING_VERBS - world)
    return phrases, unique


# English function words of the rule forms (miniworld/language.py and the training wordings in phrasing_pools.py)
NEGATION_MARKS = ["not", "t", "except", "but", "other than", "non"]  # "t": isn't / aren't
ONLY_MARKS = ["only", "just", "alone"]
CONDITION_MARKS = ["if", "when", "case", "with", "be"]  # "if there are", "in case there are", "should there be"
OTHERWISE_MARKS = ["otherwise", "else", "if not"]
COUNT_NOUNS = ["shape", "shapes", "one", "ones", "thing", "things", "object", "objects"]
_FILLER = {"the", "shape", "one", "whichever", "is", "a", "an", "someone", "it", "its", "of"}


def _rule_phrase(entry: str, syn: dict[str, str]) -> str:
    """A training wording of a rule part as the engine reads it, with its slots and leading filler dropped:
    "the shape furthest to the left" → "furthest to the left"."""
    from engine.stated_attributes import normalise

    words = normalise(re.sub(r"\{\w+\}", " ", entry), syn)
    while words and words[0] in _FILLER:
        words = words[1:]
    for tail in (["of", "them"], ["of", "the", "shapes"], ["of", "the", "two"]):
        if words[-len(tail):] == tail:
            words = words[: -len(tail)]
    return " ".join(words)


def rules_table(syn: dict[str, str]) -> dict:
    """The words of each reasoning rule form (engine/stated_rules.py), from the training wordings only."""
    from miniworld.phrasing import DEFAULTS, conjugate

    def said(entries) -> list[str]:
        return sorted({_rule_phrase(conjugate(e, f), syn) for e in entries for f in ("base", "3sg", "ing")} - {""})

    rel_names = {"to the left of": "left", "to the right of": "right", "above": "above", "below": "below"}
    causes: dict[str, list[str]] = {}
    for form, motion in (("push", "away"), ("pull", "toward"), ("pump", "grow"), ("deflate", "shrink"),
                         ("drop", "bounce")):
        sigs = {" ".join(w for w in _rule_phrase(e, syn).split() if w not in FUNCTION_WORDS | _FILLER | {"by"})
                for e in P.CAUSE[form].train}
        causes.setdefault(PLAN_MOTIONS[motion], []).extend(sorted(sigs - {""}))
    wind_side = {"left": "right", "right": "left", "top": "down", "bottom": "up"}  # miniworld.language._rule_cause
    return {
        "grid": {pos: list(slot) for slot, pos in _POS.items()},
        "relations": {rel_names[r]: sorted(set(p.train)) for r, p in P.RELATIONS.items()},
        "comparatives": {size: sorted({_rule_phrase(e, syn).split()[0] for e in p.train})
                         for size, p in P.RELATION_SIZE.items()},
        "extremes": {k: said(p.train) for k, p in P.COMPARISON.items()},  # two shapes: "comparatives"
        "negations": NEGATION_MARKS,
        "only": ONLY_MARKS,
        "corners": dict(P.CORNERS),
        "conditions": CONDITION_MARKS,
        "otherwise": OTHERWISE_MARKS,
        "count_nouns": COUNT_NOUNS,
        "causes": causes,
        "passive": ["by"],
        "defaults": {k: DEFAULTS[k] for k in ("size", "texture")},
        "wind": {"words": ["wind"],
                 "sides": {w: PLAN_MOTIONS[wind_side[side]] for side, p in P.WIND_SIDES.items() for w in p.train}},
    }


def grammar_spec() -> dict:
    return {
        "format": FORMAT,
        "max_shapes": MAX_SHAPES,
        "sizes": sorted(SIZES, key=SIZES.get),
        "colours": list(COLOURS),
        "textures": list(TEXTURES),
        "kinds": list(KINDS),
        "places": list(_POS.values()),
        "motions": ["moves left", "moves right", "moves up", "moves down", "bounces", "grows", "shrinks",
                    "stays still"],
        "relative_motions": ["moves toward the", "moves away from the"],
        "background_colours": list(BG_COLOURS),
        "background_textures": list(BG_TEXTURES),
        "synonyms": synonyms(),
        **dict(zip(("motion_phrases", "motion_words"), motion_tables(synonyms()))),
        "rules": rules_table(synonyms()),
    }


def write_grammar(understanding_dir: Path) -> Path:
    from engine.atomic_files import atomic_write_json

    path = Path(understanding_dir) / "plan_grammar.json"
    atomic_write_json(path, grammar_spec())
    return path
