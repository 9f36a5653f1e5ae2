"""Plans for instructions written blind: people's wordings the family's builders never chose.

    python -m bench.blind_phrasings                      # every set in bench/data/blind_phrasings_*.json
    python -m bench.blind_phrasings FILE … [--family DIR] [-v]

Each set was written by a helper that saw only the world's rules (miniworld/language.py, scene.py), never the
phrasing pools, the engine or the training code: 60 instructions, 10 per category, in its own voices (a child, a
terse power user, a film director …), each with the plan it means and the attributes it leaves unsaid. A plan
honours an item when it states every said attribute and motion (miniworld/honour.py, as in bench.vrbench_phrasing).
A set counts as blind only at its first measurement; docs/plain_phrasing.md records each set's first number and
what was changed after looking at it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from miniworld.honour import ALL  # noqa: E402
from miniworld.language import parse_plan  # noqa: E402

DATA = REPO / "bench" / "data"
_ATTR = {"place": "slot"}


def load_items(path: Path) -> list:
    """The items of a set, as bench.vrbench_phrasing.evaluate_set reads them: (item, seed) pairs, each item with its
    instruction, category, scene, stated attributes per shape and bg_stated (miniworld.honour.stated_of)."""
    out = []
    for raw in json.loads(Path(path).read_text(encoding="utf-8")):
        scene = parse_plan(raw["plan"])
        unsaid = raw.get("unstated", {})
        stated = tuple(frozenset(ALL - {_ATTR.get(a, a) for a in unsaid.get(s.colour, ())}) for s in scene.shapes)
        out.append((SimpleNamespace(instruction=raw["instruction"], category=raw["category"], scene=scene,
                                    stated=stated, bg_stated=bool(raw["bg_stated"])), 0))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sets", nargs="*", type=Path, help="blind sets (default: bench/data/blind_phrasings_*.json)")
    p.add_argument("--family", type=Path, default=None, help="family folder (default: the embedded lumos-mini)")
    p.add_argument("-v", "--verbose", action="store_true", help="print every plan that does not honour its item")
    a = p.parse_args(argv)
    from bench.vrbench_phrasing import evaluate_set
    from engine.models import DEFAULT_FAMILY
    from training.sample import MiniFamily

    fam = MiniFamily(a.family or DEFAULT_FAMILY)
    for path in a.sets or sorted(DATA.glob("blind_phrasings_*.json")):
        rep = evaluate_set(fam, load_items(path), frames=False, log=lambda *_: None)
        cats = " ".join(f"{c} {v:.2f}" for c, v in rep["honour_by_category"].items())
        print(f"{path.name}: plans honour {rep['honour']:.3f} ({cats})")
        if a.verbose:
            for f in rep["failures"]:
                print(f"  [{f['category']}] {f['instruction']}\n    -> {f['plan']}\n    {f['errors']}")


if __name__ == "__main__":
    main()
