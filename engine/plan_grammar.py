"""Constrained plan decoding: the understanding LM may only write text that stays a prefix of a valid plan.

A family that ships its plan grammar (``understanding/plan_grammar.json``) gets plans that always parse: one sentence
per shape, then the background::

    a {size} {colour} {texture} {kind} {place} {motion}.   (1 .. max_shapes times)
    {background colour} {background texture} background.

``{motion}`` is one of ``motions`` ("moves left", "stays still", …) or one of ``relative_motions`` ("moves toward
the", "moves away from the") followed by ``{colour} {kind}`` of *another* shape of the plan (written before or
after). No two shapes share a colour. Every colour + kind pair the instruction names ("the red circle", "a big blue
striped square") must be a shape of the plan before the background sentence may start, with the size, texture and
place its own words state (engine/stated_attributes.py reads them; "synonyms" maps the family's other words for plan
words: "with dots" → "dotted", "upper" → "top").

The JSON file holds the word lists of those slots (``sizes``, ``colours``, ``textures``, ``kinds``, ``places``,
``motions``, ``relative_motions``, ``background_colours``, ``background_textures``) and ``max_shapes``; the engine
knows no world of its own, so any family can ship its own (training writes it from the world's concepts).

The check is character-level over the token strings (``▁`` = a space), so a word may come whole or spelled in
pieces: `GrammarWalker.feed` advances a position (the set of grammar states after the complete words, and the word
being written) by one token's text, or says that the text left the grammar. `PlanLogitsProcessor` masks, for greedy
decoding, every token but the best one that keeps the plan valid (candidates are tried in logit order), or with
``greedy=False`` every token that leaves it; EOS only once the plan is complete. `GrammarWalker.complete` finishes
a plan that ran out of tokens.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

GRAMMAR_FILE = "plan_grammar.json"
_LISTS = ("sizes", "colours", "textures", "kinds", "places", "motions", "relative_motions", "background_colours",
          "background_textures")

# Grammar fields: where a state is in the plan.
S, SIZE, COLOUR, TEXTURE, KIND, PLACE, MOTION, TCOLOUR, TKIND, DOT, BGTEX, BGWORD, BGDOT, END = range(14)


@dataclass(frozen=True)
class PlanGrammar:
    """The plan grammar's word lists (each entry a phrase of one or more lower-case words) and its shape cap."""

    sizes: tuple
    colours: tuple
    textures: tuple
    kinds: tuple
    places: tuple
    motions: tuple
    relative_motions: tuple
    background_colours: tuple
    background_textures: tuple
    max_shapes: int = 3
    synonyms: tuple = ()  # (phrase, plan word) pairs
    motion_phrases: tuple = ()  # (plan motion, (phrases that say it …)) pairs
    motion_words: tuple = ()  # (plan motion, (words only its phrases use …)) pairs
    rules: str = ""  # the "rules" table (engine/stated_rules.py) as JSON text, so the grammar stays hashable
    _cache: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    @classmethod
    def from_dict(cls, data: dict) -> "PlanGrammar":
        lists = {}
        for key in _LISTS:
            value = data.get(key, [] if key == "relative_motions" else None)
            if not isinstance(value, list) or not all(isinstance(x, str) and x.strip() for x in value):
                raise ValueError(f"plan grammar: {key} must be a list of phrases")
            lists[key] = tuple(tuple(x.lower().split()) for x in value)
            if not lists[key] and key != "relative_motions":
                raise ValueError(f"plan grammar: {key} is empty")
        single = ("sizes", "colours", "textures", "kinds", "background_colours", "background_textures")
        if any(len(p) != 1 for key in single for p in lists[key]):
            raise ValueError("plan grammar: sizes, colours, textures, kinds and backgrounds are single words")
        lists = {k: tuple(p[0] for p in v) if k in single else v for k, v in lists.items()}
        max_shapes = data.get("max_shapes", 3)
        if not isinstance(max_shapes, int) or isinstance(max_shapes, bool) or not 1 <= max_shapes <= 16:
            raise ValueError("plan grammar: max_shapes must be a whole number from 1 to 16")
        synonyms = data.get("synonyms", {})
        if not isinstance(synonyms, dict) or not all(isinstance(k, str) and isinstance(v, str) and k.strip()
                                                     and v.strip() for k, v in synonyms.items()):
            raise ValueError("plan grammar: synonyms must map phrases to plan words")
        pairs = tuple(sorted((" ".join(k.lower().split()), " ".join(v.lower().split())) for k, v in synonyms.items()))
        said = {}
        for key in ("motion_phrases", "motion_words"):
            table = data.get(key, {})
            motions = {" ".join(m) for m in lists["motions"] + lists["relative_motions"]}
            if not isinstance(table, dict) or not all(
                    m in motions and isinstance(v, list) and all(isinstance(x, str) and x.strip() for x in v)
                    for m, v in table.items()):
                raise ValueError(f"plan grammar: {key} must map the grammar's motions to lists of phrases")
            said[key] = tuple(sorted((m, tuple(" ".join(x.lower().split()) for x in v)) for m, v in table.items()))
        rules = data.get("rules", {})
        if not isinstance(rules, dict):
            raise ValueError("plan grammar: rules must be a JSON object")
        return cls(max_shapes=max_shapes, synonyms=pairs, rules=json.dumps(rules, sort_keys=True), **said, **lists)

    @classmethod
    def load(cls, folder: str | Path) -> "PlanGrammar | None":
        """The grammar shipped in ``folder`` (an understanding block folder), or None when it ships none."""
        path = Path(folder) / GRAMMAR_FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise ValueError(f"{path} is not valid JSON ({e}); reinstall the family or delete this file") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path} must hold a JSON object")
        try:
            return cls.from_dict(data)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None

    def _reader(self):
        """The engine.stated_attributes.StatedReader of this grammar's words (built once)."""
        if "reader" not in self._cache:
            from .stated_attributes import StatedReader
            from .stated_motion import MotionReader

            motions = None
            if self.motion_phrases or self.motion_words:
                motions = MotionReader(dict(self.motion_phrases), dict(self.motion_words),
                                       tuple(" ".join(m) for m in self.relative_motions),
                                       {w for p in self.places for w in p} - {"at", "in", "on", "the"})
            self._cache["reader"] = StatedReader(self.sizes, self.colours, self.textures, self.kinds, self.places,
                                                 dict(self.synonyms), motions)
        return self._cache["reader"]

    def _rule_reader(self):
        """The engine.stated_rules.RuleReader of this grammar's rule words (None: the family lists none)."""
        if "rules" not in self._cache:
            from .stated_rules import RuleReader

            table = json.loads(self.rules) if self.rules else {}
            try:
                self._cache["rules"] = RuleReader(table, self._reader()) if table else None
            except (TypeError, ValueError, AttributeError):
                self._cache["rules"] = None  # a malformed table only costs the rule reading; the LM decides
        return self._cache["rules"]

    def stated(self, instruction: str) -> dict[str, tuple[str, dict]]:
        """colour → (kind, {"size"/"texture"/"place"/"motion"/"target": plan words}) for each shape the instruction
        names, with what its own words state (engine/stated_attributes.py) and the motions a reasoning rule resolves
        to where it leaves no doubt (engine/stated_rules.py)."""
        stated = self._reader().read(instruction, self.max_shapes)
        rules = self._rule_reader()
        if rules is not None:
            _, unnamed = self.colour_allowance(instruction)
            for colour, motion in rules.resolve(instruction, stated, unnamed).items():
                kind, attrs = stated[colour]
                stated[colour] = (kind, {**attrs, **motion})
        return stated

    def limits(self, instruction: str) -> list[str]:
        """What the instruction asks that no plan of this grammar holds, one sentence each (StatedReader.limits)."""
        return self._reader().limits(instruction, self.max_shapes)

    def rule_motions(self, instruction: str) -> frozenset:
        """Motions the instruction's rules name (StatedReader.rule_motions)."""
        return self._reader().rule_motions(instruction)

    def colour_allowance(self, instruction: str) -> tuple[frozenset, int]:
        """(colours the instruction says, how many shapes it introduces without one); see StatedReader."""
        return self._reader().colours_and_unnamed(instruction)

    def named_pairs(self, instruction: str) -> dict[str, str]:
        """colour → kind for each shape the instruction names ("a big red striped circle", "the blue squares"):
        a colour, then sizes/textures, then a kind (or its plural). The first kind per colour, at most max_shapes."""
        return {c: kind for c, (kind, _) in self.stated(instruction).items()}

    def walker(self, instruction: str = "") -> "GrammarWalker":
        return GrammarWalker(self, self.stated(instruction), self.colour_allowance(instruction),
                             self.rule_motions(instruction), self.stated_background(instruction))

    def stated_background(self, instruction: str) -> tuple[str | None, str | None]:
        """(background colour, background texture) the instruction states, each None when it says none or two."""
        return self._reader().background(instruction, self.background_colours, self.background_textures)


# A state: (field, words of the field's phrase so far, shapes (colour, kind) so far incl. the current one once its
# kind is known, current colour, target colour, obligations: sorted (colour, kind, ((attr, value), …)) the plan must
# contain).
State = tuple


class GrammarWalker:
    """Walks plan text through the grammar, for one instruction (its named pairs are obligations from the start)."""

    def __init__(self, grammar: PlanGrammar, required: dict | None = None, allowance: tuple | None = None,
                 rule_motions=frozenset(), background: tuple = (None, None)):
        """required: colour → (kind, {attr: value}), each shape the instruction names with what it states
        (PlanGrammar.stated).
        allowance: (colours said, shapes introduced without a colour): when colours were said, the plan's shapes
        take those colours and at most that many others. None: any colours.
        rule_motions: motions a rule names; a shape with no motion of its own stated takes one of them or stays
        still (empty: any motion)."""
        self.g = grammar
        colours, unnamed = allowance if allowance and allowance[0] else (frozenset(grammar.colours), 0)
        self.said, self.unnamed = frozenset(colours) | frozenset(required or {}), unnamed
        self.rule_motions = frozenset(tuple(m.split()) for m in rule_motions) | {("stays", "still")}
        self.background = tuple(background)  # (colour, texture) the instruction states for the background, or None
        oblig = [(colour, kind, tuple(sorted(attrs.items()))) for colour, (kind, attrs) in (required or {}).items()]
        start: State = (S, (), (), None, None, tuple(sorted(oblig)))
        # a size is written before the colour it belongs to, so decoding cannot hold it: `restate` puts it right
        self.sizes = {c: dict(a)["size"] for c, _, a in oblig if "size" in dict(a)}
        self.start = (frozenset([start]), "")  # a position: (grammar states, the word being written)
        caches = grammar._cache.setdefault("walks", {})  # per colour allowance: it changes the options of a state
        if len(caches) > 64 or sum(len(c["options"]) for c in caches.values()) > 200_000:
            caches.clear()
        key = (self.said, self.unnamed, self.rule_motions, self.background)
        cache = caches.setdefault(key, {"options": {}, "next": {}, "steps": {}})
        self._options, self._next, self._steps = cache["options"], cache["next"], cache["steps"]

    # -- word level -------------------------------------------------------------------------------------------
    def options(self, st: State) -> tuple:
        """The phrases (word tuples) the field of ``st`` may take next, each one leaving the plan completable."""
        if st in self._options:
            return self._options[st]
        g = self.g
        fld, _, shapes, cur, tc, oblig = st
        used = {c: k for c, k in shapes}
        owed = {c: k for c, k, _ in oblig}
        want = dict((c, dict(a)) for c, _, a in oblig).get(cur, {})
        outstanding = sum(c not in used for c in owed)
        if fld == S:
            out = [("a",)] if self._new_colours(shapes, owed) else []
            if shapes and not outstanding:
                out += [(c,) for c in g.background_colours if self.background[0] in (None, c)]
        elif fld == SIZE:
            out = [(w,) for w in g.sizes]
        elif fld == COLOUR:
            out = [(c,) for c in self._new_colours(shapes, owed)]
        elif fld == TEXTURE:
            out = [(want["texture"],)] if "texture" in want else [(w,) for w in g.textures]
        elif fld == KIND:
            out = [(owed[cur],)] if cur in owed else [(k,) for k in g.kinds]
        elif fld == PLACE:
            out = [p for p in g.places if want.get("place", " ".join(p)) == " ".join(p)]
        elif fld == MOTION:
            targets = self._targets(st)
            out = list(g.motions) + (list(g.relative_motions) if targets else [])
            said = tuple(want.get("motion", "").split())
            if said and (said in g.motions or (said in g.relative_motions and (want.get("target"),) in targets)):
                out = [said]  # the motion the shape's own clause states (when the plan can still hold it)
            elif len(self.rule_motions) > 1 and not said:
                out = [m for m in out if m in self.rule_motions] or out  # what a rule hands out, or still
        elif fld == TCOLOUR:
            out = self._targets(st)
            if (want.get("target"),) in out:
                out = [(want["target"],)]
        elif fld == TKIND:
            out = [(used[tc],)] if tc in used else [(owed[tc],)] if tc in owed else [(k,) for k in g.kinds]
        elif fld in (DOT, BGDOT):
            out = [(".",)]
        elif fld == BGTEX:
            out = [(w,) for w in g.background_textures if self.background[1] in (None, w)]
        elif fld == BGWORD:
            out = [("background",)]
        else:
            out = []
        self._options[st] = tuple(out)
        return self._options[st]

    def _new_colours(self, shapes: tuple, owed: dict) -> list:
        """Colours a new shape may have: unused, allowed, leaving room for the shapes still owed."""
        used = {c for c, _ in shapes}
        outstanding = sum(c not in used for c in owed)
        room = self.g.max_shapes - len(shapes) - 1
        return [c for c in self.g.colours
                if c not in used and self._may_add(used, owed, c) and outstanding - (c in owed) <= room]

    def _may_add(self, used, owed, colour: str) -> bool:
        """May a shape of ``colour`` join the plan, beside the ``used`` and ``owed`` colours? A colour nobody said
        takes one of the shapes the instruction introduced without a colour (so does a target the LM named)."""
        if colour in self.said or colour in owed:
            return True
        return sum(c not in self.said for c in set(used) | set(owed)) < self.unnamed

    def _targets(self, st: State) -> list:
        """Colours another shape of the plan may have, for "moves toward the …" of the current shape."""
        _, _, shapes, cur, _, oblig = st
        used, owed = {c for c, _ in shapes}, {c for c, _, _ in oblig}
        room = self.g.max_shapes - len(shapes) - sum(c not in used for c in owed)
        return [(c,) for c in self.g.colours
                if c != cur and (c in used or c in owed or (room > 0 and self._may_add(used | {cur}, owed, c)))]

    def next_words(self, st: State) -> frozenset:
        """Words that may follow in state ``st``."""
        if st not in self._next:
            n = len(st[1])
            self._next[st] = frozenset(o[n] for o in self.options(st) if len(o) > n and o[:n] == st[1])
        return self._next[st]

    def step(self, st: State, word: str) -> tuple:
        """The states after ``word`` (none: the word leaves the grammar)."""
        key = (st, word)
        if key in self._steps:
            return self._steps[key]
        fld, words, shapes, cur, tc, oblig = st
        words = words + (word,)
        opts = [o for o in self.options(st) if o[: len(words)] == words]
        out = []
        if any(len(o) > len(words) for o in opts):
            out.append((fld, words, shapes, cur, tc, oblig))
        if words in opts:
            value = words[0] if len(words) == 1 else " ".join(words)
            out.append(self._finish(st, words, value))
        self._steps[key] = tuple(out)
        return self._steps[key]

    def _finish(self, st: State, words: tuple, value: str) -> State:
        fld, _, shapes, cur, tc, oblig = st
        nxt = {SIZE: COLOUR, TEXTURE: KIND, KIND: PLACE, PLACE: MOTION, TCOLOUR: TKIND, BGTEX: BGWORD,
               BGWORD: BGDOT, BGDOT: END}
        if fld == S:
            return (SIZE if value == "a" else BGTEX, (), shapes, None, None, oblig)
        if fld == COLOUR:
            return (TEXTURE, (), shapes, value, None, oblig)
        if fld == KIND:
            return (PLACE, (), shapes + ((cur, value),), cur, None, oblig)
        if fld == MOTION:
            return (TCOLOUR if words in self.g.relative_motions else DOT, (), shapes, cur, None, oblig)
        if fld == TCOLOUR:
            return (TKIND, (), shapes, cur, value, oblig)
        if fld == TKIND:
            known = {c for c, _ in shapes} | {c for c, _, _ in oblig}
            new = oblig if tc in known else tuple(sorted(oblig + ((tc, value, ()),)))
            return (DOT, (), shapes, cur, None, new)
        if fld == DOT:
            return (S, (), shapes, None, None, oblig)
        return (nxt[fld], (), shapes, cur, tc, oblig)

    # -- character level --------------------------------------------------------------------------------------
    def _allows_word(self, states: frozenset, partial: str) -> bool:
        return any(w != "." and w.startswith(partial) for st in states for w in self.next_words(st))

    def _close(self, states: frozenset, word: str) -> frozenset:
        return frozenset(s for st in states for s in self.step(st, word))

    def feed(self, pos: tuple, text: str) -> tuple | None:
        """The position after ``text`` (a token's string, spaces as " "), or None when it leaves the grammar.

        Words come after one space; "." follows a word directly. The last word is open until a space or "." ends
        it (a token may end mid-word: "▁b" "ig" is "big")."""
        states, tail = pos
        for ch in text:
            if ch == " " or ch == ".":
                if len(tail) > 1:  # " word": it is complete now
                    states = self._close(states, tail[1:])
                    if not states:
                        return None
                elif tail == " ":
                    return None  # two spaces, or " ."
                if ch == ".":
                    states = self._close(states, ".")
                    if not states:
                        return None
                    tail = ""
                else:
                    if not self._allows_word(states, ""):
                        return None
                    tail = " "
            elif "a" <= ch <= "z" and tail:
                tail += ch
                if not self._allows_word(states, tail[1:]):
                    return None
            else:
                return None  # another character, or a word not after a space
        return states, tail

    def can_end(self, pos: tuple) -> bool:
        """True when the text so far is a whole plan."""
        states, tail = pos
        return tail == "" and any(st[0] == END for st in states)

    def walk(self, text: str) -> tuple | None:
        """The position after a whole text written from the start (spaces as " ", words after one space)."""
        return self.feed(self.start, text)

    def complete(self, text: str) -> str:
        """Finish a plan prefix (``text`` must be one, as `walk` reads it) the shortest simple way: the open word
        with its first fitting word, then shapes the plan still owes, shapes that stay still, the background."""
        pos = self.walk(text)
        if pos is None:
            raise ValueError(f"not a plan prefix: {text!r}")
        while not self.can_end(pos):
            states, tail = pos
            if len(tail) > 1 and not any(tail[1:] in self.next_words(s) for s in states):
                piece = min((w for s in states for w in self.next_words(s) if w.startswith(tail[1:])), key=len)
                piece = piece[len(tail) - 1:]  # the open word, finished
            else:
                if len(tail) > 1:
                    states = self._close(states, tail[1:])
                word = self._simple_next(max(states, key=lambda s: s[0]))  # a finished phrase before a longer one
                piece = word if word == "." or tail == " " else " " + word
            text += piece
            pos = self.feed(pos, piece)
            assert pos is not None, text
        return text

    def restate(self, plan: str) -> str:
        """``plan`` with every named shape at the size its instruction stated."""
        def size(m):
            word = self.sizes.get(m.group(3), m.group(2)) if m.group(2) in self.g.sizes else m.group(2)
            return f"{m.group(1)}a {word} {m.group(3)} "

        return re.sub(r"(^|\. )a (\S+) (\S+) ", size, plan)

    def _simple_next(self, st: State) -> str:
        fld, words, shapes, cur, tc, oblig = st
        nxt = sorted(self.next_words(st))
        used = {c for c, _ in shapes}
        if fld == S:
            return next((w for w in nxt if w != "a"), "a")  # the background as soon as it may come
        if fld == COLOUR:
            owed = [c for c, _, _ in oblig if c not in used and c in nxt]
            return owed[0] if owed else nxt[0]
        if fld == TCOLOUR:
            return next((c for c in nxt if c in used), nxt[0])
        if fld == MOTION:  # a motion that needs no other shape, staying still where the grammar has it
            fixed = sorted((m for m in self.options(st) if m[: len(words)] == words and len(m) > len(words)),
                           key=lambda m: (m in self.g.relative_motions, m[-1] != "still"))
            return fixed[0][len(words)] if fixed else nxt[0]
        return nxt[0]


class PlanLogitsProcessor:
    """A transformers logits processor that keeps the generated text a prefix of a valid plan.

    ``prompt_len``: how many leading ids of each row are not plan (the causal LM's prompt, or a seq2seq decoder's
    start token). greedy=True leaves only the best valid token (same result as masking every invalid one for greedy
    decoding, at a fraction of the checks); greedy=False masks every invalid token."""

    def __init__(self, walker: GrammarWalker, tokenizer, prompt_len: int, greedy: bool = True):
        self.walker = walker
        self.prompt_len = prompt_len
        self.greedy = greedy
        self.eos = tokenizer.eos_token_id
        special = set(getattr(tokenizer, "all_special_ids", []) or [])
        tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
        self.pieces = [None if i in special or t is None else t.replace("\u2581", " ").replace("\u0120", " ")
                       for i, t in enumerate(tokens)]
        self._pos: dict[tuple, tuple | None] = {(): walker.start}
        self._masks: dict[tuple, object] = {}

    def position(self, ids: tuple) -> tuple | None:
        """The walker's position after generated ids (None: they left the grammar)."""
        if ids not in self._pos:
            parent = self.position(ids[:-1])
            piece = self.pieces[ids[-1]] if ids[-1] < len(self.pieces) else None
            self._pos[ids] = None if parent is None or piece is None else self.walker.feed(parent, piece)
        return self._pos[ids]

    def text(self, ids) -> str:
        """The plan text of generated ids (special tokens dropped)."""
        return "".join(self.pieces[i] or "" for i in ids if i < len(self.pieces)).strip()

    def allowed(self, pos: tuple, token: int) -> bool:
        if token == self.eos:
            return self.walker.can_end(pos)
        piece = self.pieces[token] if token < len(self.pieces) else None
        return bool(piece) and self.walker.feed(pos, piece) is not None

    def mask(self, pos: tuple, vocab: int):
        """Boolean tensor [vocab]: True where the token keeps the plan valid (cached per position)."""
        import torch

        key = (pos, vocab)
        if key not in self._masks:
            self._masks[key] = torch.tensor([self.allowed(pos, t) for t in range(vocab)], dtype=torch.bool)
        return self._masks[key]

    def __call__(self, input_ids, scores):
        import torch

        out = torch.full_like(scores, float("-inf"))
        for row in range(scores.shape[0]):
            pos = self.position(tuple(input_ids[row, self.prompt_len:].tolist()))
            if pos is None:  # cannot happen when every step went through here; end the row
                out[row, self.eos] = 0.0
                continue
            if not self.greedy:
                keep = self.mask(pos, scores.shape[-1]).to(scores.device)
                out[row] = scores[row].masked_fill(~keep, float("-inf"))
                continue
            for token in torch.argsort(scores[row], descending=True).tolist():
                if self.allowed(pos, token):
                    out[row, token] = scores[row, token]
                    break
            else:
                out[row, self.eos] = 0.0
        return out
