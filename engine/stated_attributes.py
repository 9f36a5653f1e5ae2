"""What an instruction states about each shape it names, in the plan's own words.

The understanding LM writes the plan, but a small LM can bind an attribute to the wrong shape of a long sentence
("a green box with spots in the upper left corner, …" planned plain, or at the right). Colours, kinds, sizes,
textures and places are closed word classes the family's plan grammar lists, so what a shape's own noun phrase says
can be read without the LM and handed to constrained decoding as obligations (engine/plan_grammar.py): the LM still
writes the plan (motions, rules, defaults), but may not contradict what was stated.

Read per clause (split at . ; , ! ? : and the words "and", "while", "then"):

* a **mention** is a colour, then any sizes/textures, then a kind (or its plural): "a big red striped circle".
  Sizes and textures just before the colour or a texture word just after the kind belong to it too
  ("a striped red circle", "a red circle with dots"). Only a colour's first mention counts; later ones are
  references ("the one left of the red circle").
* a **place** is a preposition (at, in, on, near), "the", at most one other word ("far", "very"), then the plan's
  place words ("top left", "center") and maybe "corner"/"side"/"edge", not followed by "of" (that is a relation:
  "on the left of the red circle"). It belongs to the clause's one mention; a clause that is only a place belongs
  to the next clause's ("at the left, a red circle moves right").

Around a shape's own clause, the clauses that follow it add to it (`_more_of`): attributes and places ("…, big,
plain, in the centre", "make it a small checkered one"), a motion after a pronoun or with the subject left out ("- it
shrinks", "and let it sink", ", slides left"), a motion toward a shape said elsewhere; an aside ("…, halfway down,")
keeps the shape they follow.

Synonyms come from the family (plan_grammar.json "synonyms": "with dots" → "dotted", "upper" → "top", "ball" →
"circle" …), so the engine knows no world of its own. Anything not read here is simply not an obligation.
"""

from __future__ import annotations

import re
import unicodedata

from .stated_motion import CONDITIONS, STILL

PREPOSITIONS = ("at", "in", "on", "near")
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
           "ten": 10, "several": 2, "many": 2}
PLACE_NOUNS = ("corner", "side", "edge")
TEXTURE_NOUNS = ("finish", "pattern", "print", "look", "design", "texture", "coat", "surface", "skin")
TEXTURE_LINKS = ("with", "a", "an", "patterned", "like", "painted", "decorated", "covered")
# "at the bottom of the screen" is a place, not a relation to a shape ("at the left of the red circle")
FRAME_NOUNS = ("frame", "screen", "picture", "image", "video", "scene", "shot", "clip", "canvas", "view")
CLAUSE_WORDS = ("and", "while", "then")
NOT_A = ("not", "t", "than", "except", "but")  # "… that isn't a square": a kind named to exclude it
QUANTIFIERS = ("both", "all", "each", "every")  # "both big", "all of them striped"
SHARED_FILLER = ("are", "is", "of", "them", "they", "the", "shapes", "ones", "equally")
PRONOUNS = ("it", "which", "that", "who")  # "a red circle at the left, which moves up"
CAUSATIVES = ("let", "make", "have", "get", "watch", "see")  # "put a blue box at the top and let it sink"
TIME_WORDS = ("one", "day", "soon", "suddenly", "finally", "later", "eventually", "afterwards", "meanwhile", "now")
ATTRIBUTE_FILLER = ("it", "is", "its", "s", "and", "a", "an", "one", "be")  # "make it a small checkered one"


def normalise(text: str, synonyms: dict[str, str]) -> list[str]:
    """Lower-case words and clause marks ("," "." …) of ``text``, synonyms replaced (longest phrase first)."""
    text = re.sub(r"\s[-\u2013\u2014]+\s", " ; ", unicodedata.normalize("NFKC", text).lower())  # " - " ends a clause
    words = re.findall(r"[a-z]+|\d+|[.;,!?:]", text)
    phrases = sorted(((tuple(k.split()), v) for k, v in synonyms.items()), key=lambda kv: -len(kv[0]))
    out, i = [], 0
    while i < len(words):
        for src, dst in phrases:
            if tuple(words[i: i + len(src)]) == src:
                out.extend(dst.split())  # "tl" → "top left"
                i += len(src)
                break
        else:
            out.append(words[i])
            i += 1
    return out


def clauses(words: list[str], starts: list | None = None) -> list[list[str]]:
    """The clauses of normalised words. starts, when given, gets for each clause whether it begins a sentence."""
    out, cur, at_start, first = [], [], True, True
    for k, w in enumerate(words):
        if w == "and" and words[k - 1: k] == ["up"] and words[k + 1: k + 2] == ["down"]:
            cur.append(w)  # "bounces up and down": one motion
            continue
        if w in ".;,!?:" or w in CLAUSE_WORDS:
            if cur:
                out.append(cur)
                if starts is not None:
                    starts.append(first)
            cur = []
            first = at_start = w in ".;!?"  # after ":" the sentence goes on ("magenta circle bottom-left: static")
        else:
            if not cur:
                first = at_start
            cur.append(w)
    if cur:
        out.append(cur)
        if starts is not None:
            starts.append(first)
    return out


def _past_frame(clause: list[str], j: int) -> int:
    """The index after "of the screen" (any of FRAME_NOUNS) at ``j``, else ``j``."""
    k = j + 1 + (clause[j + 1: j + 2] == ["the"])
    return k + 1 if clause[j: j + 1] == ["of"] and k < len(clause) and clause[k] in FRAME_NOUNS else j


def _number(word: str) -> int:
    return int(word) if word.isdigit() and len(word) < 4 else NUMBERS.get(word, 0)


class StatedReader:
    """Reads stated attributes with one family's plan words (a `PlanGrammar`'s lists and synonyms)."""

    def __init__(self, sizes, colours, textures, kinds, places, synonyms: dict[str, str] | None = None,
                 motions=None):
        """motions: an engine.stated_motion.MotionReader (None: motions are left to the LM)."""
        self.motions = motions
        self.sizes, self.colours, self.textures, self.kinds = set(sizes), set(colours), set(textures), tuple(kinds)
        self.synonyms = dict(synonyms or {})
        # a plan place by its content words: "at the top left" → {top, left}
        self.places = {frozenset(w for w in p if w not in ("at", "in", "on", "the")): " ".join(p) for p in places}
        centre = self.places.get(frozenset({"center"}))
        for key, place in list(self.places.items()):  # "top centre", "the middle of the left side": the edge
            if centre and len(key) == 1 and key != frozenset({"center"}):
                self.places.setdefault(key | {"center"}, place)
        self.place_words = set().union(*self.places) if self.places else set()

    def _past_adjectives(self, words: list[str], i: int, step: int) -> int:
        """The index of the first word from ``i`` on (``step`` +1 or -1) that is not a size or a texture."""
        while 0 <= i < len(words) and (words[i] in self.sizes or words[i] in self.textures):
            i += step
        return i

    def _adjectives(self, words: list[str]) -> dict:
        return {("size" if w in self.sizes else "texture"): w for w in words}

    def kind_of(self, word: str) -> str | None:
        return next((k for k in self.kinds if word in (k, k + "s", k + "es")), None)

    def place_in(self, clause: list[str]) -> tuple[str | None, set[int]]:
        """(the plan place a clause states, or None (none, or more than one); the indices of every place or
        relation phrase: "at the top left", "left of")."""
        found, spans = set(), {i for i in range(len(clause) - 1) if clause[i + 1] == "of"}
        for i, w in enumerate(clause):
            if w not in PREPOSITIONS and not (w == "up" and i + 1 < len(clause) and clause[i + 1] in self.place_words):
                continue  # "up top" is a place too
            j = i + 1
            if j < len(clause) and clause[j] == "the":
                j += 1
            if j < len(clause) and clause[j] not in self.place_words and j + 1 < len(clause) \
                    and clause[j + 1] in self.place_words:
                j += 1  # "on the far left", "in the very center"
            content = []
            while j < len(clause) and clause[j] in self.place_words:
                content.append(clause[j])
                j += 1
            if j < len(clause) and clause[j] in PLACE_NOUNS:
                j += 1
            j = _past_frame(clause, j)
            if content and (j >= len(clause) or clause[j] != "of"):
                place = self.places.get(frozenset(content))
                if place:
                    found.add(place)
                    spans |= set(range(i, j))
        return (found.pop() if len(found) == 1 else None), spans

    def bare_place(self, clause: list[str], i: int) -> tuple[str, set[int]] | None:
        """(plan place, its indices) of place words right after a shape with no preposition ("a cyan star bottom
        left", "red circle top right corner"), up to the clause's end; None otherwise (a relation: "left of …")."""
        j = i
        while j < len(clause) and clause[j] in self.place_words:
            j += 1
        k = _past_frame(clause, j + (j < len(clause) and clause[j] in PLACE_NOUNS))
        if j == i or k != len(clause):
            return None
        place = self.places.get(frozenset(clause[i:j]))
        return (place, set(range(i, k))) if place else None

    def mentions(self, clause: list[str]) -> list[tuple[str, str, dict, bool, int, int]]:
        """(colour, kind, {size, texture}, definite, start, end) of each colour + kind in a clause; definite: "the
        red circle", a reference to a shape said elsewhere (or a first mention that says nothing else)."""
        out = []
        for i, w in enumerate(clause):
            if w not in self.colours:
                continue
            j = self._past_adjectives(clause, i + 1, 1)
            kind = self.kind_of(clause[j]) if j < len(clause) else None
            if kind is None:
                continue
            k = self._past_adjectives(clause, i - 1, -1)
            # the words between colour and kind win over those before the colour
            attrs = {**self._adjectives(clause[k + 1: i]), **self._adjectives(clause[i + 1: j])}
            end = j + 1
            while end < len(clause) and (clause[end] in self.textures or clause[end] in self.sizes):
                attrs.setdefault("texture" if clause[end] in self.textures else "size", clause[end])  # "red square big"
                end += 1
            # "a square with a checkerboard finish", "a disc patterned like a checkerboard"
            link = end
            while link < min(end + 3, len(clause)) and clause[link] in TEXTURE_LINKS:
                link += 1
            if link > end and link < len(clause) and clause[link] in self.textures:
                attrs.setdefault("texture", clause[link])
                end = link + 1 + (link + 1 < len(clause) and clause[link + 1] in TEXTURE_NOUNS)
            out.append((w, kind, attrs, k >= 0 and clause[k] == "the", k + 1, end))
        return out

    def colours_and_unnamed(self, instruction: str) -> tuple[frozenset, int]:
        """(the shape colours an instruction says, how many shapes it introduces without a colour: "a square",
        "two circles"). A plan draws no shape of another colour beyond that many (a small LM otherwise adds shapes
        nobody asked for when it loses track)."""
        words = normalise(instruction, self.synonyms)
        return frozenset(w for w in words if w in self.colours), self.unnamed_in(words)

    def unnamed_in(self, words: list[str]) -> int:
        """How many shapes ``words`` introduce without a colour ("a square", "two circles")."""
        unnamed = 0
        for i, w in enumerate(words):
            if self.kind_of(w) is None:
                continue
            k = self._past_adjectives(words, i - 1, -1)
            det = words[k] if k >= 0 else ""
            if k >= 1 and words[k - 1] in NOT_A:
                continue  # "every shape that is not a circle" introduces no circle
            if det not in self.colours:
                unnamed += 1 if det in ("a", "an") else _number(det)
        return unnamed

    def limits(self, instruction: str, max_shapes: int) -> list[str]:
        """What the instruction asks that a plan of this family cannot hold, one sentence each: several shapes of
        one colour ("two red squares": a plan has one shape per colour), more shapes than it draws."""
        words = normalise(instruction, self.synonyms)
        notes, most = [], 0
        for i, w in enumerate(words):
            n = _number(w)
            if n < 2:
                continue
            j = self._past_adjectives(words, i + 1, 1)
            if j + 1 < len(words) and words[j] in self.colours and self.kind_of(words[j + 1]):
                kind = self.kind_of(words[j + 1])
                notes.append(f"Several {words[j]} {kind}s: this family draws one shape per colour, so the plan has "
                             f"at most one {words[j]} {kind}.")
            if j < len(words) and (self.kind_of(words[j]) or words[j] in ("shapes", "things", "objects")):
                most = max(most, n)
        kinds: dict[str, str] = {}
        for clause in clauses(words):
            for colour, kind, *_ in self.mentions(clause):
                if kinds.setdefault(colour, kind) != kind:
                    notes.append(f"A {colour} {kinds[colour]} and a {colour} {kind}: this family draws one shape per "
                                 f"colour, so the plan keeps the {colour} {kinds[colour]}.")
        _, unnamed = self.colours_and_unnamed(instruction)
        if max(most, len(kinds) + unnamed) > max_shapes:
            notes.append(f"This family draws at most {max_shapes} shapes: the plan keeps the first {max_shapes}.")
        return notes

    def background(self, instruction: str, colours, textures) -> tuple[str | None, str | None]:
        """(colour, texture) of the background from the sentences that say "background": a background colour
        anywhere in them; a texture only in one that introduces no shape ("a striped circle on a slate background"
        is the circle's). Either is None when unsaid or said twice differently."""
        found: dict[str, set] = {"colour": set(), "texture": set()}
        sentence: list[str] = []
        for w in normalise(instruction, self.synonyms) + ["."]:
            if w not in ".;!?":
                sentence.append(w)
                continue
            # the background's colours are no shape's ("on a sand-coloured checkerboard"): they say it too
            if "background" in sentence or any(x in colours for x in sentence):
                found["colour"] |= {x for x in sentence if x in colours}
                if not any(self.mentions(c) or self.unnamed_in(c) for c in clauses(sentence)):
                    found["texture"] |= {x for x in sentence if x in textures}
                found["texture"] |= self._next_to_background(sentence, colours, textures)
            sentence = []
        return tuple(next(iter(v)) if len(v) == 1 else None for v in (found["colour"], found["texture"]))

    def _motions_said(self, clause: list[str]) -> bool:
        """Whether the clause names any motion, however it is used."""
        return bool(self.motions is not None and self.motions.said(clause, set()))

    @staticmethod
    def _next_to_background(sentence: list[str], colours, textures) -> set[str]:
        """Textures said right at the word "background" or a background colour, whatever else the sentence holds: "a
        red ball on a grey striped background", "… background with stripes" (read "background striped"), "on a sand
        checkerboard"."""
        out = set()
        for b, w in enumerate(sentence):
            if w != "background" and w not in colours:
                continue
            before = b - 1
            while before >= 0 and sentence[before] in colours:
                before -= 1
            after = b + 1 + (b + 1 < len(sentence) and sentence[b + 1] in colours)
            out |= {sentence[i] for i in (before, after) if 0 <= i < len(sentence) and sentence[i] in textures}
        return out

    def rule_motions(self, instruction: str) -> frozenset:
        """The motions named in clauses that introduce no shape (a rule's: "everything except the red one grows",
        "if there are two shapes, the red circle moves up, otherwise it shrinks"). A rule moves some shapes so and
        leaves the others still, so a plan's shapes whose own clause states no motion take one of these or stay
        still. Empty: no rule names a motion (a cause: "the red ball pushes the blue box"), nothing is implied."""
        if self.motions is None:
            return frozenset()
        out: set[str] = set()
        for clause in clauses(normalise(instruction, self.synonyms)):
            found = self.mentions(clause)
            if any(not m[3] for m in found) or self.unnamed_in(clause):
                continue  # a clause that introduces a shape: its motion is that shape's own
            _, place_span = self.place_in(clause)
            out |= self.motions.said(clause, place_span | {i for m in found for i in range(m[4], m[5])})
        return frozenset(out)

    def read(self, instruction: str, max_shapes: int) -> dict[str, tuple[str, dict]]:
        """colour → (kind, {attr: plan words}) for each shape the instruction names, at most ``max_shapes``: from
        its first indefinite mention ("a red circle …"), else its first mention. A clause's place belongs to its
        one indefinite mention (or its one mention), and so does its motion (only an indefinite one's: "the red
        circle moves up" may be a rule's outcome)."""
        first: dict[str, tuple[str, dict, bool]] = {}
        pending_place, previous = None, None
        starts: list[bool] = []
        words = normalise(instruction, self.synonyms)
        for clause, starts_sentence in zip(clauses(words, starts), starts):
            found = self.mentions(clause)
            place, place_span = self.place_in(clause)
            if not found:
                more = self._more_of(clause, place, place_span, words, starts_sentence)
                if previous is not None and more:  # "cyan box, big, plain, in the centre - it shrinks"
                    kind, attrs, definite = first[previous]
                    if attrs.get("motion") == STILL and "motion" in more:  # "a ball sitting at the top, and it hops"
                        attrs = {k: v for k, v in attrs.items() if k != "motion"}
                    first[previous] = (kind, {**more, **attrs}, definite)
                    continue
                if previous is not None and not starts_sentence and not self._motions_said(clause):
                    continue  # "…, halfway down, and it just bounces": an aside keeps the shape it follows
                # "at the left, a red circle …", "Top left: a cyan circle": a sentence that opens with a place gives
                # it to what follows
                bare = self.bare_place(clause, 0) if place is None else None
                pending_place, previous = ((place or (bare and bare[0])) if starts_sentence else None), None
                continue
            new = [m for m in found if not m[3]]
            if previous is not None and not new and not starts_sentence:
                self._motion_toward(clause, found, first, previous)
            owner = new[0] if len(new) == 1 else found[0] if len(found) == 1 else None
            if owner is not None and place is not None and any(
                    m is not owner and owner[5] <= m[4] < min(place_span) for m in found):
                place = None  # "moves toward the blue square at the left": the place is the other shape's
            if owner is not None and place is None and len(found) == 1:
                place, bare = pending_place, self.bare_place(clause, owner[5])
                if bare is not None:
                    place, place_span = bare[0], place_span | bare[1]
            pending_place = None
            for m in found:
                colour, kind, attrs, definite = m[:4]
                if m is owner and place:
                    attrs = {**attrs, "place": place}
                elif owner is None:  # "the cyan triangle in the bottom-right corner gives the red ball in the …"
                    own = self._place_right_after(clause, m, found)
                    attrs = {**attrs, "place": own} if own else attrs
                if m is owner and not definite and self.motions is not None:
                    taken = place_span | {i for x in found for i in range(x[4], x[5])}
                    said = self.motions.read(clause, taken, found)
                    if said is not None and said[1] != colour:
                        attrs = {**attrs, "motion": said[0], **({"target": said[1]} if said[1] else {})}
                if colour not in first or (first[colour][2] and not definite):
                    first[colour] = (kind, attrs, definite)
            previous = owner[0] if owner is not None and not owner[3] and len(found) == 1 else None
        shared = self.shared(words)
        out: dict[str, tuple[str, dict]] = {}
        for colour, (kind, attrs, _) in first.items():
            if len(out) < max_shapes:
                out[colour] = (kind, {**shared, **attrs})
        return out

    def _place_right_after(self, clause: list[str], mention: tuple, found: list[tuple]) -> str | None:
        """The place said right after a mention (within its first two words), up to the next mention: in a clause
        of several shapes, "the red ball in the top-left corner" says where that ball is."""
        end = mention[5]
        stop = min([m[4] for m in found if m[4] >= end] + [len(clause)])
        place, spans = self.place_in(clause[end:stop])
        return place if place is not None and spans & {0, 1} else None  # "a red circle sitting in the corner"

    def _motion_toward(self, clause: list[str], found: list[tuple], first: dict, previous: str) -> None:
        """A clause whose words before a shape said elsewhere are a motion toward or away from it gives that motion to
        the shape just named ("tiny striped red triangle, bottom-right, creeps over toward the big yellow star parked
        in the top-left corner"); the words after that shape are its own."""
        if self.motions is None or any(w in CONDITIONS for w in clause):
            return
        head = clause[: found[0][5]]
        said = self.motions.read(head, set(range(found[0][4], found[0][5])), found[:1])
        kind, attrs, definite = first[previous]
        if said is not None and said[1] not in (None, previous) and attrs.get("motion", STILL) == STILL:
            first[previous] = (kind, {**attrs, "motion": said[0], "target": said[1]}, definite)

    def _more_of(self, clause: list[str], place, place_span: set[int], words: list[str],
                 starts_sentence: bool) -> dict | None:
        """What a clause with no shape of its own adds to the shape just named: sizes, textures, a place ("…, big,
        plain, in the centre", "make it a small checkered one"), or a motion where the instruction states no
        condition, after a pronoun ("- it shrinks", ", which grows", "and let it sink") or with the subject left out
        (", slides left", "and hops"). None: anything else (a rule, filler, a quantifier: see `shared`)."""
        if any(w in QUANTIFIERS for w in clause):
            return None
        lead = next((k for k, w in enumerate(clause[:3]) if w not in TIME_WORDS), 0)  # "one day it began to bounce"
        lead = (lead + 2 if clause[lead] in CAUSATIVES and clause[lead + 1: lead + 2] == ["it"]
                else lead + 1 if clause[lead] in PRONOUNS else 0)
        bare = self.bare_place(clause, lead) if place is None else None  # "striped green block, bottom middle"
        if bare is not None:
            place, place_span = bare[0], place_span | bare[1]
        content = [w for i, w in enumerate(clause) if i not in place_span and i >= lead and w not in ATTRIBUTE_FILLER]
        if ((lead or not starts_sentence) and all(w in self.sizes or w in self.textures for w in content)
                and (content or place)):
            more = {("size" if w in self.sizes else "texture"): w for w in content}
            return {**more, **({"place": place} if place else {})}
        if self.motions is None or any(w in CONDITIONS for w in words):
            return None
        if lead or (not starts_sentence and self.motions.opens(clause)):  # "small cyan box top right, slides left"
            said = self.motions.read(clause, set(place_span) | set(range(lead)), [])
            if said is not None and said[1] is None:
                return {"motion": said[0]}
        return None

    def shared(self, words: list[str]) -> dict:
        """A size or texture said of every shape at once ("both big and both striped", "- all small and dotted -"):
        a run of clauses that opens with a quantifier and holds nothing but sizes, textures and filler. A shape's own
        words win over it."""
        out, run = {}, False
        for clause in clauses(words):
            content = [w for w in clause if w not in QUANTIFIERS and w not in SHARED_FILLER]
            only_attrs = content and all(w in self.sizes or w in self.textures for w in content)
            run = bool(only_attrs and (run or any(w in QUANTIFIERS for w in clause)))
            if run:
                for w in content:
                    out.setdefault("size" if w in self.sizes else "texture", set()).add(w)
        return {k: v.pop() for k, v in out.items() if len(v) == 1}
