"""Who moves how under a reasoning rule, read without the LM where the rule and the layout leave no doubt.

The understanding LM resolves a rule ("the one placed below the green triangle drops", "everything except the
striped ones shrinks", "should there be three shapes, …, otherwise …") into each shape's motion. A small LM that
never saw a rule's wording often hands the motion to the wrong shape. The rule forms themselves are few and closed:
a relation to another shape, a negation, "only", an extreme (biggest, leftmost …), corners, a count condition, a
cause. With what each shape's own words state (engine/stated_attributes.py) a rule of one of these forms can be
resolved exactly, the world's way: the shapes it names take its motion and the others stay still.

The family lists each form's words (plan_grammar.json "rules", written from its training wordings only), compared
by word stems, so "gets filled with air" is read by the training wording "fills with air". The reader abstains
(returns nothing, and the LM decides) whenever the rule's form is unclear, two forms fire, an attribute the rule
reads was not stated (a place for "leftmost", a size for "the bigger one"), or the rule does not pick exactly one
motion and a set of shapes.
"""

from __future__ import annotations

from .stated_motion import STILL

_LINKS = ("to", "the")  # extremes are matched without them: "farthest to the right" is "farthest right"
_NUMBER_WORDS = {"0": "no", "3": "three", "4": "four", "5": "five"}  # "3 corners" says "three corners"
_NUMBERS = {"one": 1, "single": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}  # a count condition's numbers
COUNT_REACH = 6  # words from the condition to its number: "if the scene has exactly two shapes"


def stem(word: str) -> str:
    """A crude English stem, the same for the forms of one verb: pumped/pumps → pump, dropped → drop, filled → fill,
    inflated/inflates → inflat, goes/going → go. Short words stay."""
    for end in ("ing", "ed", "es", "s", "e"):
        if word.endswith(end) and len(word) - len(end) >= 2 and not word.endswith("ss"):
            word = word[: -len(end)]
            break
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiouls":
        word = word[:-1]  # dropp → drop, dragg → drag
    return word


def _find(words: list[str], phrase: tuple, start: int = 0) -> int:
    """Index of the first occurrence of ``phrase`` in ``words`` at or after ``start``, or -1."""
    n = len(phrase)
    for i in range(start, len(words) - n + 1):
        if tuple(words[i: i + n]) == phrase:
            return i
    return -1


class RuleReader:
    """Resolves a rule with one family's rule words (a plan grammar's "rules" table) and its StatedReader."""

    def __init__(self, table: dict, reader):
        self.reader = reader
        self.grid = {p: tuple(xy) for p, xy in table.get("grid", {}).items()}
        self.relations = {r: [tuple(p.split()) for p in ps] for r, ps in table.get("relations", {}).items()}
        self.comparatives = {s: set(ws) for s, ws in table.get("comparatives", {}).items()}
        self.extremes = sorted(((tuple(w for w in p.split() if w not in _LINKS), k)
                                for k, ps in table.get("extremes", {}).items() for p in ps), key=lambda pk: -len(pk[0]))
        self.negations = [tuple(p.split()) for p in table.get("negations", [])]
        self.only = set(table.get("only", []))
        self.corners = {k: tuple(stem(w) for w in p.split()) for k, p in table.get("corners", {}).items()}
        self.conditions = set(table.get("conditions", []))
        self.otherwise = sorted((tuple(p.split()) for p in table.get("otherwise", [])), key=len, reverse=True)
        self.causes = [(m, frozenset(stem(w) for w in sig.split())) for m, sigs in table.get("causes", {}).items()
                       for sig in sigs]
        self.passive = set(table.get("passive", []))
        wind = table.get("wind", {})
        self.wind_words = {stem(w) for w in wind.get("words", [])}
        self.wind_sides = sorted(((tuple(s.split()), m) for s, m in wind.get("sides", {}).items()),
                                 key=lambda sm: -len(sm[0]))
        self.count_nouns = set(table.get("count_nouns", []))
        self.defaults = dict(table.get("defaults", {}))  # what a plan writes for a size or texture left unsaid
        self._verbs, self._particles = _direction_words(reader.motions.phrases if reader.motions else [])

    def _attr(self, attrs: dict, name: str) -> str | None:
        return attrs.get(name, self.defaults.get(name))

    # -- reading ----------------------------------------------------------------------------------------------
    def rule_words(self, instruction: str) -> list[list[str]]:
        """The clauses of the instruction that introduce no shape (the rule's, and the background's)."""
        from .stated_attributes import clauses, normalise

        r = self.reader
        introduces = lambda c: any(not m[3] for m in r.mentions(c)) or r.unnamed_in(c)  # noqa: E731
        out = []
        # a rule may hold "and" ("drops and bounces"): split a sentence at "and" only where it introduces shapes
        for part in clauses([w if w not in ("and",) else "&" for w in normalise(instruction, r.synonyms)]):
            part = [w[:-1] if w.endswith("wards") else w for w in part]  # leftwards → leftward, as towards
            pieces = [part]
            if introduces([w for w in part if w != "&"]):
                pieces = clauses([w if w != "&" else "and" for w in part])
            for c in pieces:
                c = [w if w != "&" else "and" for w in c]
                if not introduces(c) and "background" not in c:
                    out.append(c)
        return out

    def _motions(self, words: list[str], skip: set[int]) -> list[str]:
        """The plan motions said in ``words`` outside ``skip``: one when the words say exactly one. "grows smaller"
        says the comparative's."""
        m = self.reader.motions
        if m is None:
            return []
        said = m.said(words, skip) or self._particle_motion(words, skip)
        if len(said) == 2 and {"grows", "shrinks"} == said:
            comp = [w for i, w in enumerate(words) if i not in skip and w in m.words and m.words[w] in said
                    and w.endswith("er")]
            said = {m.words[comp[-1]]} if comp else said
        return sorted(said)

    def _particle_motion(self, words: list[str], skip: set[int]) -> set[str]:
        """A movement verb the family knows with a direction it never saw it with ("rolls up", "shifts over to
        the left"): verbs and particles come from the family's direction phrases ("rolls left", "floats up")."""
        out = set()
        for i, w in enumerate(words[:-1]):
            if i in skip or stem(w) not in self._verbs:
                continue
            for rest, motion in self._particles:
                if tuple(words[i + 1: i + 1 + len(rest)]) == rest and not skip & set(range(i + 1, i + 1 + len(rest))):
                    out.add(motion)
                    break
        return out

    def _refs(self, words: list[str], shapes: dict) -> list[tuple[int, int, str]]:
        """(start, end, colour) of each shape referred to in ``words``: "the red circle", "the red one"."""
        out = []
        for i, w in enumerate(words):
            if w in shapes:
                j = i + 1
                while j < len(words) and (words[j] in self.reader.sizes or words[j] in self.reader.textures):
                    j += 1
                if j < len(words) and (self.reader.kind_of(words[j]) or words[j] in ("one", "shape")):
                    j += 1
                out.append((i, j, w))
        return out

    def resolve(self, instruction: str, stated: dict, unnamed: int = 0) -> dict[str, dict]:
        """colour → {"motion": plan motion, maybe "target": colour} for every shape of ``stated`` (colour → (kind,
        attrs), StatedReader.read), when the instruction's rule resolves without doubt; else {}."""
        # a shape's own motion makes the instruction explicit; only "stays still" may be a place said with a verb
        # of rest ("a red triangle sits at the top"), which a rule's outcome overrides
        if not stated or unnamed or self.reader.motions is None or any(
                a.get("motion", "stays still") != "stays still" for _, a in stated.values()):
            return {}
        words = [w for c in self.rule_words(instruction) for w in c + [","]]
        if not (self._motions(words, set()) or self._cause(words)):
            return {}
        # a count condition with its "otherwise" is the most specific form: its outcomes may read like a cause
        found = [self._counting(words, stated)]
        if not found[0]:
            found = [r for r in (self._cause(words, stated), self._negation(words, stated),
                                 self._selected(words, stated)) if r]
        if len(found) != 1:
            return {}
        movers = found[0]
        return {c: movers.get(c, {"motion": STILL}) for c in stated}

    # -- rule forms -------------------------------------------------------------------------------------------
    def _one_motion(self, words: list[str], skip: set[int], shapes: dict, ref: str | None = None,
                    implied: bool = False) -> dict | None:
        """{"motion", "target"?} when ``words`` say exactly one motion; a relative one needs its target named after
        it, or "it" for ``ref`` ("… moves toward it"); ``implied``: ``ref`` is the target anyway ("the larger shape
        moves toward the smaller one")."""
        said = self._motions(words, skip)
        if len(said) != 1:
            return None
        motion = said[0]
        relative = motion.endswith(" the")
        if not relative:
            return {"motion": motion}
        targets = [c for s, _, c in self._refs(words, shapes) if s not in skip]
        target = targets[-1] if targets else (ref if ref and ("it" in words or implied) else None)
        return {"motion": motion, "target": target} if target else None

    def _counting(self, words, shapes):
        cut = next(((i, len(p)) for p in self.otherwise for i in [_find(words, p)] if i >= 0), None)
        if cut is None:
            return None
        before, after = words[: cut[0]], words[cut[0] + cut[1]:]
        conds = [i for i, w in enumerate(before) if w in self.conditions]
        count, skip = None, set()
        for i, w in enumerate(before):  # "if there are three shapes": a number right after a condition word
            n = int(w) if w.isdigit() else _NUMBERS.get(w)
            if n and i + 1 < len(before) and before[i + 1] in self.count_nouns and any(0 < i - c <= COUNT_REACH
                                                                                      for c in conds):
                count, skip = n, set(range(max(c for c in conds if c < i), i + 2))
                break
        if count is None:
            return None
        refs = self._refs(before, shapes)
        colours = {c for _, _, c in refs}
        if len(colours) > 1 or (not colours and len(shapes) != 1):
            return None
        who = colours.pop() if colours else next(iter(shapes))
        skip |= {k for s, e, _ in refs for k in range(s, e)}
        first, second = self._motions(before, skip), self._motions(after, set())
        if len(first) != 1 or len(second) != 1 or first[0].endswith(" the") or second[0].endswith(" the"):
            return None
        return {who: {"motion": first[0] if count == len(shapes) else second[0]}}

    def _cause_hits(self, words: list[str]) -> tuple[set[str], bool, list[str]]:
        """(plan motions whose cause signature ``words`` hold, whether a wind is named, the words' stems with
        motion phrases blanked: "drops and bounces" is a motion, not "someone drops")."""
        said = self.reader.motions.phrase_spans(words) if self.reader.motions else set()
        stems = [stem(w) if i not in said else "" for i, w in enumerate(words)]
        bag = set(stems)
        return {m for m, sig in self.causes if sig <= bag}, bool(self.wind_words & bag), stems

    def _cause(self, words, shapes=None):
        """The cause a rule states: with ``shapes``, its resolution (None: none, or unclear); without, whether one
        is named. Read within the one clause that names it, so a shape said in another clause ("the red circle
        does not move, the blue square pushes it") is never taken for its agent."""
        if shapes is None:
            hits, wind, _ = self._cause_hits(words)
            return bool(hits or wind)
        segments, cur = [], []
        for w in words + [","]:
            if w == ",":
                if cur:
                    segments.append(cur)
                cur = []
            else:
                cur.append(w)
        named = [(seg, *self._cause_hits(seg)) for seg in segments]
        named = [n for n in named if n[1] or n[2]]
        if len(named) != 1:
            return None
        words, hits, wind, stems = named[0]
        if wind and not hits:
            sides = [m for side, m in self.wind_sides if _find(words, ("from",) + side) >= 0]
            return {c: {"motion": sides[0]} for c in shapes} if len(set(sides)) == 1 else None
        if len(hits) != 1:
            return None
        motion = hits.pop()
        refs = self._refs(words, shapes)
        colours = list(dict.fromkeys(c for _, _, c in refs))
        if not motion.endswith(" the"):
            if len(colours) == 1:
                return {colours[0]: {"motion": motion}}
            return {next(iter(shapes)): {"motion": motion}} if not colours and len(shapes) == 1 else None
        if len(colours) != 2:
            return None
        verb = next(i for i, s in enumerate(stems) if any(s in sig for m, sig in self.causes if m == motion))
        by = next((i for i in range(verb, len(words)) if words[i] in self.passive), -1)
        agent, patient = (colours[1], colours[0]) if by >= 0 else (colours[0], colours[1])
        return {patient: {"motion": motion, "target": agent}}

    def _negation(self, words, shapes):
        for neg in self.negations:
            i = _find(words, neg)
            if i < 0:
                continue
            j = i + len(neg)
            window = words[j: j + 3]
            for attr, test in (("colour", lambda w: w in shapes), ("kind", lambda w: self.reader.kind_of(w)),
                               ("texture", lambda w: w in self.reader.textures)):
                value = next((w for w in window if test(w)), None)
                if value is None:
                    continue
                if attr == "kind":
                    value = self.reader.kind_of(value)
                    movers = [c for c, (k, _) in shapes.items() if k != value]
                elif attr == "colour":
                    movers = [c for c in shapes if c != value]
                else:
                    if any(self._attr(a, "texture") is None for _, a in shapes.values()):
                        return None  # a texture left unsaid and no default: the rule cannot be read
                    movers = [c for c, (_, a) in shapes.items() if self._attr(a, "texture") != value]
                if not movers or len(movers) == len(shapes):
                    return None
                end = j + window.index(next(w for w in window if test(w))) + 1
                end += end < len(words) and words[end] in self.count_nouns  # "the red one"
                skip = set(range(i, end))
                skip |= {k for s, e, _ in self._refs(words, shapes) for k in range(s, e)}
                got = self._one_motion(words, skip, shapes)
                if got is None or "target" in got or got["motion"] == STILL:
                    return None
                return {c: got for c in movers}
        return None

    def _selected(self, words, shapes):
        """A rule that picks one shape (relation, comparative, extreme, corners, "only"): it takes the said motion."""
        picks = [p for p in (self._relation(words, shapes), self._extreme(words, shapes), self._corner(words, shapes))
                 if p]
        if not picks and self.only & set(words):
            refs = self._refs(words, shapes)
            if len({c for _, _, c in refs}) == 1:
                picks = [(refs[0][2], {k for s, e, _ in refs for k in range(s, e)}, None)]
        if len(picks) != 1:
            return None
        who, skip, ref = picks[0][:3]
        got = self._one_motion(words, skip, shapes, ref, implied=len(picks[0]) > 3)
        if got is None or got.get("target") == who or got["motion"] == STILL:
            return None  # "only the red one does not move" says nothing of what the others do
        return {who: got}

    def _place(self, shapes, colour):
        place = shapes[colour][1].get("place")
        return self.grid.get(place) if place else None

    def _relation(self, words, shapes):
        refs = self._refs(words, shapes)
        found = [(rel, i, ref) for rel, ps in self.relations.items() for p in ps for i in [_find(words, p)] if i >= 0
                 for ref in refs if ref[0] in (i + len(p), i + len(p) + 1)]  # a relation word, then a shape
        if len({ref[0] for _, _, ref in found}) > 1:
            return None  # two relations ("left of the red circle and above the blue square"): not one pick
        if found:
            rel, i, (_, ref_end, ref) = found[0]
            axis, sign = {"left": (0, -1), "right": (0, 1), "above": (1, -1), "below": (1, 1)}[rel]
            if any(self._place(shapes, c) is None for c in shapes):
                return None
            r = self._place(shapes, ref)[axis]
            hits = [c for c in shapes if c != ref and (self._place(shapes, c)[axis] - r) * sign > 0]
            if len(hits) > 1:  # people mean "right under it" then: the one in the reference's column (row)
                hits = [c for c in hits if self._place(shapes, c)[1 - axis] == self._place(shapes, ref)[1 - axis]]
            # the subject's own words are the rule's too: "the one sitting under", "the shape that sits above"
            start = next((k for k in range(i - 1, max(i - 5, -1), -1) if words[k] in self.count_nouns), i)
            return (hits[0], set(range(start, ref_end)), ref) if len(hits) == 1 else None
        if len(shapes) == 2:  # "the larger shape", "the smaller one"
            said = [(k, s) for k, w in enumerate(words[:-1]) for s, ws in self.comparatives.items()
                    if w in ws and words[k + 1] in self.count_nouns | {"one", "shape"}]
            if said:
                size = said[0][1]
                sizes = {c: self._attr(a, "size") for c, (_, a) in shapes.items()}
                hits = [c for c, s in sizes.items() if s == size]
                if None in sizes.values() or len(hits) != 1:
                    return None
                other = next(c for c in shapes if c != hits[0])
                skip = {k for k, _ in said} | {k + 1 for k, _ in said}
                return hits[0], skip, other, "implied"
        return None

    def _extreme(self, words, shapes):
        kept = [i for i, w in enumerate(words) if w not in _LINKS]
        short = [words[i] for i in kept]
        said, used = set(), set()
        for phrase, key in self.extremes:  # longest first; "the leftmost and the biggest shape" is two picks
            k = _find(short, phrase)
            if k >= 0 and not used & set(range(k, k + len(phrase))):
                said.add(key)
                used |= set(range(k, k + len(phrase)))
        if len(said) > 1:
            return None
        for phrase, key in self.extremes:
            k = _find(short, phrase)
            if k < 0:
                continue
            i, end = kept[k], kept[k + len(phrase) - 1] + 1
            if key in ("biggest", "smallest"):
                want = "big" if key == "biggest" else "small"
                sizes = [self._attr(a, "size") for _, a in shapes.values()]
                hits = [c for c, (_, a) in shapes.items() if self._attr(a, "size") == want]
                ok = None not in sizes and len(hits) == 1
            else:
                axis, sign = {"leftmost": (0, 1), "rightmost": (0, -1), "topmost": (1, 1), "lowest": (1, -1)}[key]
                places = {c: self._place(shapes, c) for c in shapes}
                if None in places.values():
                    return None
                best = min(p[axis] * sign for p in places.values())
                hits = [c for c, p in places.items() if p[axis] * sign == best]
                ok = len(hits) == 1
            return (hits[0], set(range(i, end)), None) if ok else None
        return None

    def _corner(self, words, shapes):
        stems = [stem(_NUMBER_WORDS.get(w, w)) for w in words]  # "five-pointed", "3 corners" say "five points" …
        if sum(_find(stems, phrase) >= 0 for phrase in self.corners.values()) > 1:
            return None
        for kind, phrase in self.corners.items():
            i = _find(stems, phrase)
            if i >= 0:
                hits = [c for c, (k, _) in shapes.items() if k == kind]
                return (hits[0], set(range(i, i + len(phrase))), None) if len(hits) == 1 else None
        return None


def _direction_words(phrases) -> tuple[set[str], list[tuple[tuple, str]]]:
    """(stems of the verbs of the direction phrases, the particles that say one direction only, longest first) of a
    MotionReader's (phrase, plan motion) pairs: "rolls left", "floats up" → {roll, float}, [(("up",), "moves up") …]."""
    directions = {m for _, m in phrases if m.startswith("moves ") and not m.endswith(" the")}
    verbs, rests = set(), {}
    for (verb, *rest), motion in phrases:
        if motion in directions:
            verbs.add(stem(verb))
            if rest and rest[0] != "not":
                rests.setdefault(tuple(rest), set()).add(motion)
    particles = sorted(((r, next(iter(ms))) for r, ms in rests.items() if len(ms) == 1), key=lambda rm: -len(rm[0]))
    return verbs, particles

