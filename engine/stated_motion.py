"""The motion a shape's own clause states ("a red circle with dots climbs up", "a blue box to remain in place"), in
the plan's words, read without the LM (see engine/stated_attributes.py for why and for the rest of a shape's words).

The family lists, per plan motion ("moves left", "moves toward the" …), the phrases it was trained on (every verb
form: "moves left", "going to the left", "does not move") and the words only that motion's phrases use ("climbs",
"inflates", "smaller"). In one clause, with the shape's own words and its place taken out:

* the longest listed phrase gives the motion; a relative one ("moves toward the") also needs the shape named right
  after it ("heads towards the green circle");
* no phrase: the words of exactly one motion give it;
* words of another motion anywhere else in the clause ("grows smaller"), a condition ("if", "otherwise"), a
  negation the phrase does not hold ("does not grow"; "does not move" is a phrase of its own) or a comparison
  ("bigger than"): no motion is stated, and the LM decides. Words that also name places ("left", "right") count
  only inside a phrase: alone they may be a place or a relation ("to its right", "left side of the …").
"""

from __future__ import annotations

# The plan's motion for a shape that stays. Said with a posture verb ("a ball sitting at the top") it may only be
# how a place was said: a motion stated after it wins (stated_attributes), a rule may move the shape (stated_rules).
STILL = "stays still"
ADVERBS = ("just", "slowly", "quickly", "gently", "simply", "also", "then", "now", "calmly", "steadily", "gradually")
CONDITIONS = ("if", "otherwise", "unless", "else", "when", "whenever", "except", "only", "than")
NEGATIONS = ("not", "never", "no", "t", "without", "nor", "cannot")


class MotionReader:
    def __init__(self, phrases: dict[str, list[str]], words: dict[str, list[str]], relative: tuple,
                 place_words=()):
        """phrases / words: plan motion → phrases / words that say it; relative: the plan's relative motions;
        place_words: words that also name places (not motions on their own)."""
        self.phrases = sorted(((tuple(p.split()), m) for m, ps in phrases.items() for p in ps),
                              key=lambda pm: -len(pm[0]))
        self.words = {w: m for m, ws in words.items() for w in ws if w not in set(place_words)}
        self.relative = set(relative)

    def _phrases_in(self, clause: list[str], taken: set[int]) -> tuple[set[str], set[int]]:
        """(the motions of the listed phrases in the clause, longest first and not overlapping ``taken`` or each
        other; the indices they cover with ``taken``)."""
        out, used = set(), set(taken)
        for phrase, motion in self.phrases:
            for i in range(len(clause) - len(phrase) + 1):
                span = set(range(i, i + len(phrase)))
                if tuple(clause[i: i + len(phrase)]) == phrase and not used & span:
                    out.add(motion)
                    used |= span
        return out, used

    def said(self, clause: list[str], taken: set[int]) -> set[str]:
        """Every motion the clause's words name (phrases, longest first, then single words), however they are
        used: the motions a rule can hand out ("the one nearest the top gets larger", "…, otherwise it shrinks")."""
        out, used = self._phrases_in(clause, taken)
        return out | {self.words[w] for i, w in enumerate(clause) if i not in used and w in self.words}

    def opens(self, clause: list[str]) -> bool:
        """Whether the clause's first word (after adverbs: "just idles") is a motion's: a verb phrase with its subject
        left out ("slides left")."""
        i = next((k for k, w in enumerate(clause) if w not in ADVERBS), len(clause))
        return i < len(clause) and (clause[i] in self.words or i in self.phrase_spans(clause))

    def phrase_spans(self, clause: list[str]) -> set[int]:
        """The indices of the clause's words that belong to a listed motion phrase (longest first)."""
        return self._phrases_in(clause, set())[1]

    def read(self, clause: list[str], taken: set[int], mentions: list[tuple]) -> tuple[str, str | None] | None:
        """(plan motion, target colour or None) the clause states, or None. taken: indices that are the shape's own
        words or its place; mentions: (colour, kind, attrs, definite, start, end) of the clause."""
        if any(w in CONDITIONS for w in clause):
            return None
        free = [i for i in range(len(clause)) if i not in taken]
        best, used = None, set()
        for phrase, motion in self.phrases:
            if best is not None and len(phrase) < len(best[0]):
                break
            for i in free:
                span = range(i, i + len(phrase))
                if tuple(clause[k] for k in span if k < len(clause)) == phrase and not taken & set(span):
                    if best is not None and best[1] != motion:
                        return None  # two motions said as long: unclear
                    best, used = (phrase, motion, i + len(phrase)), set(span)
        if best is None:
            found = {self.words[clause[i]] for i in free if clause[i] in self.words}
            if len(found) != 1:
                return None
            motion = found.pop()
            used = {i for i in free if self.words.get(clause[i]) == motion}
            end = max(used) + 1
        else:
            phrase, motion, end = best
            if any(w in NEGATIONS for w in clause) and not any(w in NEGATIONS for w in phrase):
                return None  # "does not grow"
        if best is None and any(w in NEGATIONS for w in clause):
            return None
        others = {self.words[clause[i]] for i in free if i not in used and clause[i] in self.words}
        if others - {motion}:
            return None  # "grows smaller": words of two motions
        if motion not in self.relative:
            return motion, None
        after = [m for m in mentions if m[4] >= end]
        if not after or after[0][4] - end > 1:  # the shape named right after it ("toward (the) green circle")
            return None
        return motion, after[0][0]
