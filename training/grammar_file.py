"""The family's plan grammar file (understanding/plan_grammar.json, read by engine/plan_grammar.py), written from
the world's concepts: the plan's word lists, and the training wordings that mean one plan word ("synonyms": "with
dots" → "dotted", "upper" → "top", "balls" → "circles"), which the engine uses to read what an instruction states
about each shape (engine/stated_attributes.py). Held-out wordings are never listed."""

from __future__ import annotations

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


def synonyms() -> dict[str, str]:
    out = dict(SYNONYMS)
    for pools in (P.SIZES, P.TEXTURE_ADJ, P.TEXTURE_WITH, P.KINDS):
        out.update(_pool_synonyms(pools))
    for word, kind in _pool_synonyms(P.KINDS).items():  # "balls" → "circles"
        out[P.PLURAL[word]] = P.PLURAL[kind]
    return dict(sorted(out.items()))


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
    }


def write_grammar(understanding_dir: Path) -> Path:
    from engine.atomic_files import atomic_write_json

    path = Path(understanding_dir) / "plan_grammar.json"
    atomic_write_json(path, grammar_spec())
    return path
