"""Constrained plan decoding (engine/plan_grammar.py): with the shipped family's grammar, every plan parses, names
every colour + kind the instruction names, and the logits processor never lets the text leave the plan grammar
(checked against a literal regex of the world's plan language, written here from miniworld's own concepts)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import regex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.models import DEFAULT_FAMILY
from engine.plan_grammar import GRAMMAR_FILE, PlanGrammar, PlanLogitsProcessor
from miniworld import phrasing_pools as P
from miniworld.language import _POS, parse_plan
from miniworld.scene import BG_COLOURS, BG_TEXTURES, COLOURS, KINDS, SIZES, SLOT_NAMES, TEXTURES

UNDERSTANDING = DEFAULT_FAMILY / "understanding"
pytestmark = pytest.mark.skipif(not (UNDERSTANDING / "lm").is_dir(), reason="the embedded family is not built")


def _alt(words) -> str:
    return "(?:%s)" % "|".join(sorted(map(regex.escape, words), key=len, reverse=True))


# The world's plan language, literally (" " before each word, as the token strings give it).
_C, _K = _alt(COLOURS), _alt(KINDS)
_MOTION = r"(?:moves (?:left|right|up|down)|bounces|grows|shrinks|stays still|moves (?:toward|away from) the %s %s)" % (
    _C, _K)
_SHAPE = r" a %s %s %s %s %s %s\." % (_alt(SIZES), _C, _alt(TEXTURES), _K, _alt(_POS.values()), _MOTION)
PLAN_RE = regex.compile(r"(?:%s){1,3} %s %s background\." % (_SHAPE, _alt(BG_COLOURS), _alt(BG_TEXTURES)))


@pytest.fixture(scope="module")
def block():
    from engine.understanding import UnderstandingBlock

    return UnderstandingBlock.from_pretrained(UNDERSTANDING)


def _plan(block, instruction: str) -> str:
    from engine.understanding import decode_plan

    return decode_plan(block.lm, block.tokenizer, instruction, grammar=block.grammar)


def _shapes(plan: str) -> set[tuple[str, str]]:
    return {(s.colour, s.kind) for s in parse_plan(plan).shapes}


def _check_scene(plan: str) -> None:
    scene = parse_plan(plan)  # raises when it does not parse
    assert PLAN_RE.fullmatch(" " + plan), plan
    for i, s in enumerate(scene.shapes):
        if s.motion in ("toward", "away"):
            assert s.target is not None and s.target != i, plan  # another shape of the plan


def test_the_shipped_grammar_is_the_worlds():
    data = json.loads((UNDERSTANDING / GRAMMAR_FILE).read_text())
    assert (data["colours"], data["kinds"], data["sizes"], data["textures"]) == (
        list(COLOURS), list(KINDS), list(SIZES), list(TEXTURES))
    assert data["places"] == [_POS[s] for s in SLOT_NAMES]
    assert (data["background_colours"], data["background_textures"]) == (list(BG_COLOURS), list(BG_TEXTURES))
    assert data["max_shapes"] == 3


def test_the_block_loads_its_grammar(block):
    assert isinstance(block.grammar, PlanGrammar)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=60), st.just(""), st.text(alphabet="abcdefghijklmnopqrstuvwxyz .,", max_size=80),
                 st.text(min_size=200, max_size=400), st.sampled_from([" ", "\n\t", "🎈 ☃ héllo wörld", "\u0000",
                                                                       "a red circle " * 60, "RED CIRCLE!!!"])))
def test_any_instruction_gives_a_plan_that_parses(block, instruction):
    _check_scene(_plan(block, instruction))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_named_shapes_appear_in_the_plan(block, data):
    n = data.draw(st.integers(1, 3))
    colours = data.draw(st.permutations(list(COLOURS)))[:n]
    kinds = [data.draw(st.sampled_from(KINDS)) for _ in colours]
    plural = data.draw(st.booleans())
    names = [f"{data.draw(st.sampled_from(['', 'big ', 'small striped ']))}{c} {k}{'s' if plural else ''}"
             for c, k in zip(colours, kinds)]
    filler = data.draw(st.sampled_from(["please show me {}", "{} somewhere", "The {} ... goes wherever!", "{}"]))
    instruction = filler.format(" and ".join(names))
    plan = _plan(block, instruction)
    _check_scene(plan)
    assert set(zip(colours, kinds)) <= _shapes(plan), (instruction, plan)


def test_a_plan_cut_short_is_finished(block):
    from engine.understanding import decode_plan

    for budget in (1, 3, 7, 12):
        plan = decode_plan(block.lm, block.tokenizer, "a red circle moves toward the blue square", budget,
                           grammar=block.grammar)
        _check_scene(plan)
        assert {("red", "circle"), ("blue", "square")} <= _shapes(plan)


def _walk(processor, rng, steps: int):
    """Random walk through the processor's full mask: (text, position) after each step."""
    ids: list[int] = []
    out = []
    for _ in range(steps):
        pos = processor.position(tuple(ids))
        mask = processor.mask(pos, len(processor.pieces)).numpy()
        allowed = np.flatnonzero(mask)
        assert len(allowed), processor.text(ids)  # never a dead end
        out.append((ids[:], pos, allowed))
        token = int(rng.choice(allowed))
        if token == processor.eos:
            break
        ids.append(token)
    return out


@pytest.mark.parametrize("instruction", ["", "the red circle moves toward the blue star", "green squares"])
def test_the_processor_never_allows_a_continuation_outside_the_grammar(block, instruction):
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(12):
        processor = PlanLogitsProcessor(block.grammar.walker(instruction), block.tokenizer, 0, greedy=False)
        for ids, pos, allowed in _walk(processor, rng, 90):
            text = "".join(processor.pieces[i] for i in ids)
            for token in allowed:
                if token == processor.eos:
                    _check_scene(text.strip())
                    assert PLAN_RE.fullmatch(text)
                else:
                    assert PLAN_RE.fullmatch(text + processor.pieces[token], partial=True), (text, token)
                checked += 1
            # and what the literal grammar forbids, the processor forbids (a sample of the rest)
            for token in rng.choice(len(processor.pieces), 20):
                piece = processor.pieces[token]
                if piece is None or not PLAN_RE.fullmatch(text + piece, partial=True):
                    assert token not in allowed or token == processor.eos
    assert checked > 1000


def test_the_grammar_refuses_what_parse_plan_or_the_world_would():
    g = PlanGrammar.load(UNDERSTANDING)
    walker = g.walker("")
    one = " a big red plain circle at the top left moves right."
    pos = walker.walk(one)
    assert pos is not None and not walker.can_end(pos)
    assert walker.feed(pos, " a small red") is None  # two shapes of one colour
    assert walker.walk(" a big red plain circle at the top left moves toward the red") is None  # itself
    assert walker.walk(one + "  a") is None and walker.walk(one + " .") is None
    assert walker.walk(" a big red plain circle at the top left moves sideways") is None
    three = one + " a big blue plain circle at the top moves up. a big green plain star at the left grows."
    assert walker.walk(three + " a") is None  # at most three shapes
    assert walker.can_end(walker.walk(three + " sand striped background."))
    # a target not yet written must be written before the background
    ahead = " a big red plain circle at the top left moves toward the blue square."
    assert walker.walk(ahead + " sand") is None
    assert walker.walk(ahead + " a big blue plain circle") is None  # the blue shape is a square
    blue = " a big blue plain square at the right stays still. sand dotted background."
    assert walker.can_end(walker.walk(ahead + blue))
    # shapes the instruction names come before the background
    named = g.walker("a red circle moves right, and the yellow star moves up")
    assert named.walk(one + " sand") is None
    yellow = " a small yellow dotted star in the center moves up. gray dotted background."
    assert named.can_end(named.walk(one + yellow))
    # shapes of colours nobody said are not drawn, unless the instruction introduces shapes without a colour
    assert g.walker("the yellow star moves up").walk(one) is None
    assert g.walker("a yellow star and a circle").walk(one) is not None
    assert g.walker("a yellow star and a circle").walk(one + " a big blue") is None  # only one unnamed shape
    assert g.walker("a star moves up").walk(one) is not None  # no colour said: any
    # a target the plan names takes the colourless shape: no other unsaid colour may then come (no dead end)
    heads = " a big red plain circle at the left moves toward the blue circle."
    assert g.walker("a red ball and a square").walk(heads + " a big green") is None
    _check_scene(g.walker("a red ball and a square").complete(heads).strip())


def test_what_a_shape_s_own_words_state_is_kept():
    """Size, texture and place said next to a shape are obligations, in the family's synonyms; places inside a
    relation ("on the left of") and motions ("to the left") are not places."""
    g = PlanGrammar.load(UNDERSTANDING)
    st = g.stated("Please, in the UPPER right corner there is a huge green box with dots that drifts left; "
                  "a little stripy red ball on the far left, and a blue star on top of the red ball.")
    assert st["green"] == ("square", {"size": "big", "texture": "dotted", "place": "at the top right",
                                      "motion": "moves left"})
    assert st["red"] == ("circle", {"size": "small", "texture": "striped", "place": "at the left"})
    assert st["blue"] == ("star", {})
    assert g.stated("at the centre, a red circle moves to the left")["red"] == \
        ("circle", {"place": "in the center", "motion": "moves left"})  # "to the left" is a motion, not a place
    assert g.stated("a red circle and a blue square at the top")["red"] == ("circle", {})  # not its clause
    assert g.stated("a red circle at the left and a blue square, the red circle moves to the right")["red"][1] == \
        {"place": "at the left"}  # a later mention is a reference
    # a place belongs to its own clause's shape, never to the next one's or to the shape a motion heads for
    assert "place" not in g.stated("A red ball, in the top left corner, and a blue box that moves down.")["blue"][1]
    assert "place" not in g.stated("a red circle moves toward the blue square at the left")["red"][1]
    # "the green circle" refers ahead: the green ball's own clause says its place; " - " ends a clause
    st = g.stated("in the lower right corner there is a red circle that heads towards the green circle; near the "
                  "top there is a green ball - the one on top of the red circle grows")
    assert st == {"red": ("circle", {"place": "at the bottom right", "motion": "moves toward the", "target": "green"}),
                  "green": ("circle", {"place": "at the top"})}
    walker = g.walker("a big red striped circle with dots at the bottom")  # the first texture said wins
    assert walker.walk(" a big red plain") is None and walker.walk(" a big red striped circle at the top") is None
    assert walker.walk(" a big red striped circle at the bottom moves up.") is not None
    # a size is written before its colour: it is put right after decoding
    assert walker.restate("a small red striped circle at the bottom moves up. a small blue plain star at the left "
                          "grows. gray checked background.").startswith("a big red striped circle")
    assert "a small blue plain star" in walker.restate("a big red plain circle at the top grows. a small blue plain "
                                                       "star at the left grows. gray checked background.")


def test_a_background_said_and_attributes_said_of_every_shape_are_kept():
    """The background's own sentence ("Slate background with stripes", "background: sand, stripy"), a size or
    texture said of all shapes at once ("both big", "- all small and dotted -") and a place without a preposition
    ("cyan star bottom left") are obligations too; a shape's own words win, and a shape's texture is not the
    background's."""
    g = PlanGrammar.load(UNDERSTANDING)
    assert g.stated_background("A green triangle at the left. Slate background with stripes.") == ("slate", "striped")
    assert g.stated_background("a red circle; background: sand, stripy!") == ("sand", "striped")
    assert g.stated_background("a red striped circle on a grey background") == ("gray", None)
    assert g.stated_background("a red circle. sand background, slate background") == (None, None)
    walker = g.walker("a red circle moves up. the background is grey and dotted")
    assert walker.walk(" a small red plain circle in the center moves up. sand") is None
    assert walker.walk(" a small red plain circle in the center moves up. gray striped") is None
    assert walker.walk(" a small red plain circle in the center moves up. gray dotted background.") is not None
    st = g.stated("a magenta triangle on the left and a big yellow square on the right, both small and both striped")
    assert st == {"magenta": ("triangle", {"size": "small", "texture": "striped", "place": "at the left"}),
                  "yellow": ("square", {"size": "big", "texture": "striped", "place": "at the right"})}
    st = g.stated("Red circle at the top, cyan star bottom left - all dotted - on a slate background")
    assert st["cyan"] == ("star", {"texture": "dotted", "place": "at the bottom left"})
    assert g.stated("a red circle and a blue star. all the shapes except the striped one grow")["red"] == ("circle", {})
    assert "place" not in g.stated("a red circle left of a blue square")["red"][1]
    # what the clauses right after a shape add to it: attributes, a pronoun's motion (never under a condition)
    assert g.stated("cyan box, big, plain, in the centre - it shrinks")["cyan"] == (
        "square", {"size": "big", "texture": "plain", "place": "in the center", "motion": "shrinks"})
    st = g.stated("a red ball at the top; it bounces. a blue box at the bottom, which shrinks")
    assert (st["red"][1]["motion"], st["blue"][1]["motion"]) == ("bounces", "shrinks")
    assert "motion" not in g.stated("a red circle. when there are two shapes, it moves up")["red"][1]
    # a placing verb ("put", "place") says where, not that the shape stays: the clause after it says how it moves
    st = g.stated("put a small blue box in the top left corner and let it sink slowly. place a red ball at the "
                  "right and have it shrink. set a green star at the bottom; make it bounce")
    assert [st[c][1].get("motion") for c in ("blue", "red", "green")] == ["moves down", "shrinks", "bounces"]
    assert g.stated("put a blue box at the right. it should move left")["blue"][1]["motion"] == "moves left"
    assert "motion" not in g.stated("put a red ball in the centre")["red"][1]
    assert g.stated("a red box stays put at the top")["red"][1]["motion"] == "stays still"  # the phrase still is
    assert "motion" not in g.stated("a red circle. let the blue star grow")["red"][1]  # not "it": not its motion


def test_everyday_wordings_state_what_they_mean():
    """Fragments and everyday words people type: a motion with its subject left out (", slides left"), attributes
    through a pronoun ("make it a small checkered one"), a bare place opening a sentence ("Top left: …"), a place "of
    the screen", and pattern, colour, size and motion words the training wordings never use."""
    g = PlanGrammar.load(UNDERSTANDING)
    st = g.stated("small cyan box top right, slides left. red circle bottom left, no movement")
    assert (st["cyan"][1]["motion"], st["red"][1]["motion"]) == ("moves left", "stays still")
    st = g.stated("There's a blue ball at the bottom of the screen, centered. It rises up. "
                  "Make it a small checkered one.")
    assert st["blue"] == ("circle", {"place": "at the bottom", "motion": "moves up", "size": "small",
                                     "texture": "checked"})
    assert g.stated("A red ball at the top. It is big and striped.")["red"] == (
        "circle", {"place": "at the top", "size": "big", "texture": "striped"})
    assert g.stated("dotted yellow star, upper left. striped green block, bottom middle")["green"][1]["place"] == \
        "at the bottom"
    st = g.stated("Three shapes. Top left: a cyan circle with dots. Bottom middle: a striped yellow ball.")
    assert (st["cyan"][1]["place"], st["yellow"][1]["place"]) == ("at the top left", "at the bottom")
    st = g.stated("a giant pink polka-dot disc that hops, and a teeny turquoise rectangle that doesn't budge")
    assert st["magenta"] == ("circle", {"size": "big", "texture": "dotted", "motion": "bounces"})
    assert st["cyan"] == ("square", {"size": "small", "motion": "stays still"})
    assert g.stated_background("a red ball. slate bg, stripes") == ("slate", "striped")
    assert g.stated_background("a red ball. a beige checkerboard background") == ("sand", "checked")
    st = g.stated("yellow triangle top-right: moves down. magenta circle bottom-left: bounces")
    assert (st["yellow"][1]["motion"], st["magenta"][1]["motion"]) == ("moves down", "bounces")
    # an aside keeps the shape it follows, and a motion said after a posture ("sitting") is the shape's motion
    st = g.stated("there's a big dotted cyan square sitting on the left side, halfway down, and it just bounces")
    assert st["cyan"][1]["motion"] == "bounces"
    assert g.stated("red square big at the top left")["red"] == ("square", {"size": "big", "place": "at the top left"})
    assert g.stated_background("a red ball on a grey striped background") == ("gray", "striped")
    assert g.stated_background("a red striped circle on a grey background") == ("gray", None)  # the circle's
    assert g.stated_background("cyan star left, yellow square right, bg sand/dotted") == ("sand", "dotted")
    st = g.stated("red square at top left, green circle at bottom, magenta triangle at top right. The shape which is "
                  "the most on the right side goes down.")
    assert [st[c][1].get("motion") for c in ("red", "green", "magenta")] == ["stays still", "stays still",
                                                                            "moves down"]
    assert g.stated("a big yellow star right in the middle is going to hop up and down, up and down!")["yellow"][1][
        "motion"] == "bounces"  # "up and down" is one motion
    assert g.stated("a single oversized magenta square with a checkerboard finish that expands")["magenta"] == (
        "square", {"size": "big", "texture": "checked", "motion": "grows"})
    assert g.stated("cyan star spawns in the bottom-left and just idles")["cyan"][1]["motion"] == "stays still"
    assert g.stated("a static red box at the top")["red"][1]["motion"] == "stays still"
    st = g.stated("tiny striped red triangle, bottom-right, creeps over toward the big yellow star parked in the "
                  "top-left corner")
    assert (st["red"][1]["motion"], st["red"][1]["target"], st["yellow"][1]["place"]) == (
        "moves toward the", "yellow", "at the top left")
    assert g.stated_background("Three things on a sand-coloured checkerboard: a red star") == ("sand", "checked")
    assert g.stated_background("a red box. sandy stripes behind.") == ("sand", "striped")
    st = g.stated("The cyan triangle in the bottom-right corner gives the little red ball in the top-left corner a "
                  "shove.")  # several shapes in one clause: each one's place right after it
    assert (st["cyan"][1]["place"], st["red"][1]["place"]) == ("at the bottom right", "at the top left")
    # a count rule in other words: its number further from the "if", "a single", "in every other case"
    st = g.stated("Please put a red square in the top-left corner and a yellow star in the bottom-right corner. If the "
                  "scene has exactly two shapes, the red square should move down; if not, it should grow instead.")
    assert (st["red"][1]["motion"], st["yellow"][1]["motion"]) == ("moves down", "stays still")
    st = g.stated("green triangle top left, cyan circle top right, magenta square bottom centre. if only a single "
                  "shape is on screen, the cyan circle slides left; in every other case it bounces.")
    assert [st[c][1]["motion"] for c in ("green", "cyan", "magenta")] == ["stays still", "bounces", "stays still"]
    st = g.stated("a green square at the top and a blue star at the bottom left. the green square reels in the blue "
                  "star")  # a cause in an everyday verb
    assert (st["blue"][1]["motion"], st["blue"][1]["target"], st["green"][1]["motion"]) == (
        "moves toward the", "green", "stays still")
    st = g.stated("a large cyan disc patterned like a checkerboard, resting in the lower left corner. Once upon a time "
                  "a big red triangle lived at the top right, and one day it began to bounce.")
    assert st["cyan"][1]["texture"] == "checked" and st["red"][1]["motion"] == "bounces"
    st = g.stated("a turquoise square at the top scoots away from a red circle sitting in the bottom left corner. a "
                  "little plain yellow star at the right never moved")
    assert (st["red"][1]["place"], st["yellow"][1]["motion"]) == ("at the bottom left", "stays still")
    # a rule's comparisons in other words
    st = g.stated("A large red star and a little blue triangle. The bigger of the two bounces.")
    assert (st["red"][1].get("motion"), st["blue"][1].get("motion")) == ("bounces", "stays still")
    st = g.stated("a red star at the top, a green circle at the bottom left and a yellow square at the bottom right. "
                  "Whichever shape is higher up than the green circle should shrink.")
    assert [st[c][1].get("motion") for c in ("red", "green", "yellow")] == ["shrinks", "stays still", "stays still"]
    # a rule after a shape is no fragment of its own: "the bigger one grows" is the red circle's (the rule reading)
    st = g.stated("a big red circle and a small blue star, the bigger one grows")
    assert (st["red"][1].get("motion"), st["blue"][1].get("motion")) == ("grows", "stays still")
    assert "motion" not in g.stated("a red circle at the left, otherwise grows")["red"][1]


def test_the_motion_a_shape_s_own_clause_states_is_kept():
    """A motion said in an introducing clause is an obligation; two motions' words ("grows smaller"), a condition,
    a rule about a shape said elsewhere ("the red circle moves up") or a relation ("left of") state none."""
    g = PlanGrammar.load(UNDERSTANDING)

    def motion(text, colour="red"):
        return g.stated(text)[colour][1].get("motion"), g.stated(text)[colour][1].get("target")

    assert motion("a big red ball in the upper left climbs") == ("moves up", None)
    assert motion("there is a red box that does not move, and a blue star") == ("stays still", None)
    assert motion("i want a red star on the far left to keep its place") == ("stays still", None)
    assert motion("A red circle slowly heads towards the blue square. A blue square.") == ("moves toward the", "blue")
    assert motion("a green star at the left, a red circle rolling over to the right") == ("moves right", None)
    for none in ("a red star that does not grow", "a red ball that won't move left", "a red circle is bigger than "
                 "the blue square", "a blue square and a red circle to its right", "a blue square. a red circle to "
                 "the left side of the blue square",
                 "a red circle grows smaller", "a red circle. if there are two shapes the red circle moves up",
                 "a red circle at the left and the red circle moves up", "a red ball left of a blue box",
                 "a blue star, and the red circle moves up"):
        assert "motion" not in g.stated(none).get("red", ("", {}))[1], none
    walker = g.walker("a red circle at the left drifts up and a blue star")
    assert walker.walk(" a small red plain circle at the left moves left") is None
    assert walker.walk(" a small red plain circle at the left moves up.") is not None
    toward = g.walker("a red circle heads towards the blue star; a blue star at the top")
    assert toward.walk(" a small red plain circle at the left moves away") is None
    assert toward.walk(" a small red plain circle at the left moves toward the green") is None
    assert toward.walk(" a small red plain circle at the left moves toward the blue star.") is not None


def test_shapes_a_rule_moves_take_a_motion_the_rule_names_or_stay_still():
    g = PlanGrammar.load(UNDERSTANDING)
    assert g.rule_motions("a red circle and a blue star. the one nearest the top gets larger") == {"grows"}
    assert g.rule_motions("a red circle. if there are two shapes, the red circle moves up, otherwise it shrinks") \
        == {"moves up", "shrinks"}
    assert g.rule_motions("a red circle and a blue square; the red circle pushes the blue square") == set()
    assert g.rule_motions("a red circle moves left and a blue star grows") == set()  # each shape's own motion
    walker = g.walker("a red circle and a blue star at the top. the one nearest the top gets larger")
    assert walker.walk(" a small red plain circle at the left moves up") is None
    assert walker.walk(" a small red plain circle at the left stays still.") is not None
    assert walker.walk(" a small red plain circle at the left grows.") is not None
    # a cause names no motion word; engine/stated_rules.py resolves it: the pushed shape moves away, the pusher rests
    push = g.walker("a red circle and a blue star; the red circle pushes the blue star")
    assert push.walk(" a small red plain circle at the left moves toward the blue star.") is None
    assert push.walk(" a small red plain circle at the left stays still. a small blue plain star at the right moves "
                     "away from the red circle.") is not None


def test_the_shipped_grammar_file_is_the_one_training_writes():
    from training.grammar_file import grammar_spec

    assert json.loads((UNDERSTANDING / "plan_grammar.json").read_text()) == grammar_spec()
    held = {w for p in (P.SIZES, P.TEXTURE_ADJ, P.TEXTURE_WITH, P.KINDS) for x in p.values() for w in x.held}
    assert not held & set(grammar_spec()["synonyms"])  # held-out wordings stay held out


def test_named_pairs():
    g = PlanGrammar.load(UNDERSTANDING)
    pairs = g.named_pairs("The big Red striped Circles, and a blue star; not green.")
    assert pairs == {"red": "circle", "blue": "star"}
    assert g.named_pairs("a red circle and a red square") == {"red": "circle"}  # colours are distinct in a plan
    assert len(g.named_pairs("red circle blue star green square yellow triangle")) == 3  # the world's cap


@pytest.mark.parametrize("arch", ["causal", "seq2seq"])
def test_untrained_lms_of_either_kind_still_write_plans_that_parse(arch):
    """Nothing depends on the shipped weights: a fresh LM (random weights) of either kind, with a world tokenizer
    built from six instructions (words it never saw are spelled in pieces), writes plans that parse and name what
    the instruction names."""
    import numpy as np

    from engine.understanding import decode_plan
    from miniworld.language import CATEGORIES, sample_example
    from training.stage_lm import LM_ARCHS, make_lm
    from training.stage_text import build_tokenizer

    if arch not in LM_ARCHS:
        pytest.skip(f"no {arch} LM in this recipe")
    rng = np.random.default_rng(3)
    tok = build_tokenizer([sample_example(rng, c).instruction for c in CATEGORIES])
    lm = make_lm(len(tok), arch=arch, **({} if arch == "seq2seq" else {"readings": 1})).eval()
    grammar = PlanGrammar.load(UNDERSTANDING)
    for instruction in ("", "the green triangle and the magenta star", "zzz 🎈"):
        plan = decode_plan(lm, tok, instruction, 48, grammar=grammar)
        _check_scene(plan)
        assert grammar.named_pairs(instruction).items() <= dict(_shapes(plan)).items()


@pytest.mark.parametrize("damage", ["{bad json", "[1, 2]", '{"sizes": "big"}', "motion_phrases", "synonyms", "rules"])
def test_a_damaged_grammar_file_is_refused_naming_the_file(tmp_path, damage):
    data = json.loads((UNDERSTANDING / GRAMMAR_FILE).read_text())
    if damage == "motion_phrases":
        text = json.dumps(dict(data, motion_phrases={"flies": ["zooms"]}))
    elif damage == "synonyms":
        text = json.dumps(dict(data, synonyms={"ball": 3}))
    elif damage == "rules":
        text = json.dumps(dict(data, rules=[1, 2]))
    else:
        text = damage
    (tmp_path / GRAMMAR_FILE).write_text(text)
    with pytest.raises(ValueError, match=GRAMMAR_FILE):
        PlanGrammar.load(tmp_path)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(
    "a the and , . ; red blue green yellow cyan magenta circle ball square box star triangle big huge tiny little "
    "striped with dots spotted plain at in on top upper bottom lower left right center corner side moves goes up "
    "down grows shrinks stays still does not move toward away from if otherwise every except only two three "
    "bigger smaller of its - isn't but just leftmost biggest larger one under above pushes pulled by is wind blows "
    "air pumped dropped corners five points 2 else there are shapes".split()), max_size=40))
def test_stated_words_never_leave_the_walker_without_a_plan(words):
    """Any mix of the world's words (rule words too: engine/stated_rules.py): what is read as stated, motions a rule
    resolves to included, is kept, and the simplest plan that holds it parses."""
    g = PlanGrammar.load(UNDERSTANDING)
    instruction = " ".join(words)
    plan = g.walker(instruction).complete("")
    plan = g.walker(instruction).restate(plan.strip())
    _check_scene(plan)
    got = {s.colour: s for s in parse_plan(plan).shapes}
    for colour, (kind, attrs) in g.stated(instruction).items():
        assert got[colour].kind == kind
        for attr in ("size", "texture"):
            if attr in attrs:
                assert getattr(got[colour], attr) == attrs[attr], (instruction, plan)
        if "place" in attrs:
            assert _POS[got[colour].slot] == attrs["place"], (instruction, plan)
        if "target" in attrs:
            assert attrs["motion"].endswith(" the") and attrs["target"] in got, (instruction, attrs)
            assert got[attrs["target"]] == parse_plan(plan).shapes[got[colour].target], (instruction, plan)
