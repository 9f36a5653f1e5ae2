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

from miniworld.honour import ALL, unhonoured  # noqa: E402
from miniworld.language import parse_plan  # noqa: E402

DATA = REPO / "bench" / "data"
_ATTR = {"place": "slot"}


def load_items(path: Path) -> list:
    """(category, instruction, item) of a set: item has the scene, stated attributes per shape and bg_stated."""
    out = []
    for raw in json.loads(Path(path).read_text(encoding="utf-8")):
        scene = parse_plan(raw["plan"])
        unsaid = raw.get("unstated", {})
        stated = tuple(frozenset(ALL - {_ATTR.get(a, a) for a in unsaid.get(s.colour, ())}) for s in scene.shapes)
        out.append((raw["category"], raw["instruction"],
                    SimpleNamespace(scene=scene, stated=stated, bg_stated=bool(raw["bg_stated"]))))
    return out


def evaluate(block, items: list) -> dict:
    by_cat: dict[str, list[bool]] = {}
    failures = []
    for category, instruction, item in items:
        plan = block.plan(instruction)
        errors = unhonoured(plan, item)
        by_cat.setdefault(category, []).append(not errors)
        if errors:
            failures.append({"category": category, "instruction": instruction, "plan": plan, "errors": errors})
    every = [x for v in by_cat.values() for x in v]
    return {"honour": sum(every) / len(every), "by_category": {c: sum(v) / len(v) for c, v in by_cat.items()},
            "failures": failures}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sets", nargs="*", type=Path, help="blind sets (default: bench/data/blind_phrasings_*.json)")
    p.add_argument("--family", type=Path, default=None, help="family folder (default: the embedded lumos-mini)")
    p.add_argument("-v", "--verbose", action="store_true", help="print every plan that does not honour its item")
    a = p.parse_args(argv)
    from engine.models import DEFAULT_FAMILY
    from engine.understanding import UnderstandingBlock

    block = UnderstandingBlock.from_pretrained((a.family or DEFAULT_FAMILY) / "understanding")
    for path in a.sets or sorted(DATA.glob("blind_phrasings_*.json")):
        rep = evaluate(block, load_items(path))
        cats = " ".join(f"{c} {v:.2f}" for c, v in rep["by_category"].items())
        print(f"{path.name}: plans honour {rep['honour']:.3f} ({cats})")
        if a.verbose:
            for f in rep["failures"]:
                print(f"  [{f['category']}] {f['instruction']}\n    -> {f['plan']}\n    {f['errors']}")


if __name__ == "__main__":
    main()
