"""The blind phrasing sets (bench/blind_phrasings.py) are well formed: each item's own plan honours it, every
category is there, and a plan with one motion changed does not honour its item."""

from __future__ import annotations

import pytest

from bench.blind_phrasings import DATA, load_items
from miniworld import CATEGORIES
from miniworld.honour import unhonoured
from miniworld.language import plan_text

SETS = sorted(DATA.glob("blind_phrasings_*.json"))


@pytest.mark.parametrize("path", SETS, ids=lambda p: p.name)
def test_a_blind_set_is_well_formed(path):
    items = load_items(path)
    assert sorted({item.category for item, _ in items}) == sorted(CATEGORIES)
    for item, _ in items:
        instruction = item.instruction
        assert instruction.strip()
        assert unhonoured(plan_text(item.scene), item) == [], instruction
        moved = item.scene.with_motions([("bounce" if s.motion == "still" else "still", None)
                                         for s in item.scene.shapes])
        assert unhonoured(plan_text(moved), item), instruction  # motions are always stated


def test_there_are_blind_sets():
    assert len(SETS) >= 2
