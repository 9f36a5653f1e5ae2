"""Word pools of the free phrasing (miniworld/phrasing.py): every way the world's words, motions and rules may be
said, each pool split into TRAIN and HELD-OUT entries.

A held-out entry (a sentence frame, a verb and particle pairing, a rule's wording, a filler, a synonym) is never
used for training data, so the bench's held-out phrasing set measures wordings the family never saw. Entries are
plain strings: ``<verb>`` marks a verb conjugated by `conjugate`, ``{x}`` a slot filled by the phraser.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pool:
    train: tuple[str, ...]
    held: tuple[str, ...] = ()


def pool(train, held=()) -> Pool:
    return Pool(tuple(train), tuple(held))


# lemma → (third person singular, -ing form); the base form is the lemma itself.
VERBS = {
    "move": ("moves", "moving"), "go": ("goes", "going"), "slide": ("slides", "sliding"),
    "drift": ("drifts", "drifting"), "head": ("heads", "heading"), "travel": ("travels", "travelling"),
    "rise": ("rises", "rising"), "climb": ("climbs", "climbing"), "float": ("floats", "floating"),
    "sink": ("sinks", "sinking"), "descend": ("descends", "descending"), "bounce": ("bounces", "bouncing"),
    "fall": ("falls", "falling"), "drop": ("drops", "dropping"), "grow": ("grows", "growing"),
    "get": ("gets", "getting"), "expand": ("expands", "expanding"), "inflate": ("inflates", "inflating"),
    "become": ("becomes", "becoming"), "shrink": ("shrinks", "shrinking"), "deflate": ("deflates", "deflating"),
    "stay": ("stays", "staying"), "do": ("does", "doing"), "rest": ("rests", "resting"),
    "remain": ("remains", "remaining"), "sit": ("sits", "sitting"), "keep": ("keeps", "keeping"),
    "approach": ("approaches", "approaching"), "back": ("backs", "backing"), "retreat": ("retreats", "retreating"),
    "shift": ("shifts", "shifting"), "roll": ("rolls", "rolling"), "glide": ("glides", "gliding"),
    "swell": ("swells", "swelling"), "puff": ("puffs", "puffing"), "contract": ("contracts", "contracting"),
    "hold": ("holds", "holding"), "hover": ("hovers", "hovering"), "come": ("comes", "coming"),
    "pop": ("pops", "popping"),
}


def _dir_pool(d: str) -> Pool:
    """left / right: verbs × particles; "Xwards" and three pairings are held out."""
    held_pairs = {("head", f"to the {d}"), ("drift", f"to the {d}"), ("slide", f"{d}ward"), ("roll", f"{d}ward"),
                  ("shift", f"over to the {d}")}
    train, held = [], [f"<go> {d}wards", f"<travel> {d}wards", f"<glide> to the {d}"]
    for v in ("move", "go", "slide", "drift", "head", "travel", "shift", "roll"):
        for part in (d, f"to the {d}", f"{d}ward", f"over to the {d}"):
            (held if (v, part) in held_pairs else train).append(f"<{v}> {part}")
    return pool(train, held)


MOTIONS = {
    "left": _dir_pool("left"),
    "right": _dir_pool("right"),
    "up": pool(["<move> up", "<go> up", "<rise>", "<climb>", "<float> up", "<move> upward", "<drift> up",
                "<slide> up", "<rise> up", "<go> upward", "<shift> up", "<travel> up", "<float> upward"],
               ["<climb> up", "<head> up", "<move> upwards", "<float> upwards", "<glide> up", "<roll> up"]),
    "down": pool(["<move> down", "<go> down", "<sink>", "<slide> down", "<drift> down", "<move> downward",
                  "<descend>", "<go> downward", "<shift> down", "<roll> down", "<come> down", "<float> down"],
                 ["<sink> down", "<head> down", "<go> downwards", "<travel> down", "<glide> down"]),
    "bounce": pool(["<bounce>", "<fall> and <bounce>", "<drop> and <bounce>", "<bounce> up and down"],
                   ["<fall> and <bounce> back up", "<drop> down and <bounce>"]),
    "grow": pool(["<grow>", "<get> bigger", "<expand>", "<inflate>", "<grow> larger", "<become> bigger",
                  "<swell>", "<swell> up", "<puff> up", "<get> big", "<grow> in size", "<expand> a little",
                  "<get> a bit bigger"],
                 ["<get> larger", "<grow> bigger", "<become> larger", "<grow> big", "<swell> a little"]),
    "shrink": pool(["<shrink>", "<get> smaller", "<deflate>", "<become> smaller", "<shrink> down", "<contract>",
                    "<get> small", "<get> a bit smaller", "<shrink> in size", "<become> small",
                    "<get> smaller and smaller"],
                   ["<grow> smaller", "<shrink> a little", "<contract> a little", "<become> tiny"]),
    "still": pool(["<stay> still", "<do> not move", "<stay> put", "<rest>", "<remain> still", "<sit> still",
                   "<stay> in place", "<hold> still", "<stay> where it is", "<sit> there", "<hover> in place",
                   "<keep> its place"],
                  ["<keep> still", "<remain> in place", "<do> not move at all", "<hold> its place", "<sit> put"]),
    "toward": pool(["<move> toward {t}", "<move> towards {t}", "<go> toward {t}", "<head> toward {t}",
                    "<approach> {t}", "<slide> toward {t}", "<come> toward {t}", "<go> to {t}",
                    "<move> closer to {t}", "<roll> toward {t}"],
                   ["<head> towards {t}", "<drift> toward {t}", "<travel> towards {t}"]),
    "away": pool(["<move> away from {t}", "<go> away from {t}", "<back> away from {t}", "<slide> away from {t}",
                  "<retreat> from {t}", "<roll> away from {t}", "<move> farther from {t}", "<shift> away from {t}"],
                 ["<head> away from {t}", "<drift> away from {t}", "<travel> away from {t}"]),
}

# Direct imperatives ("move the red circle left"): verb, then the shape, then the rest of the motion phrase.
IMPERATIVE_VERBS = ("move", "slide")
IMPERATIVE_OTHER = {"grow": ("inflate {x}", "make {x} bigger"), "shrink": ("deflate {x}", "make {x} smaller"),
                    "bounce": ("bounce {x}",), "still": ("keep {x} still", "leave {x} where it is")}

SIZES = {"big": pool(["big", "large", "huge"]), "small": pool(["small", "little", "tiny"])}
COLOURS = {c: pool([c]) for c in ("red", "yellow", "green", "cyan", "blue", "magenta")}
KINDS = {"circle": pool(["circle", "ball"]), "square": pool(["square", "box", "block"]),
         "triangle": pool(["triangle"]), "star": pool(["star"])}
PLURAL = {"circle": "circles", "ball": "balls", "square": "squares", "box": "boxes", "block": "blocks",
          "triangle": "triangles", "star": "stars"}
# texture → adjectives (before the kind) and "with …" phrases (after it)
TEXTURE_ADJ = {"striped": pool(["striped", "stripy"]), "checked": pool(["checked", "checkered"]),
               "dotted": pool(["dotted", "spotted"]), "plain": pool(["plain", "solid"])}
TEXTURE_WITH = {"striped": pool(["with stripes"]), "checked": pool(["with checks"]),
                "dotted": pool(["with dots", "with spots"]), "plain": pool([])}
NUMBERS = {1: "one", 2: "two", 3: "three"}


def _corner(v: str, h: str) -> Pool:
    up = {"top": "upper", "bottom": "lower"}[v]
    return pool([f"at the {v} {h}", f"in the {v} {h}", f"in the {v} {h} corner", f"at the {up} {h}"],
                [f"in the {up} {h} corner", f"at the {v} {h} corner"])


PLACES = {
    "top left": _corner("top", "left"), "top right": _corner("top", "right"),
    "bottom left": _corner("bottom", "left"), "bottom right": _corner("bottom", "right"),
    "left": pool(["at the left", "on the left", "on the left side", "at the left edge", "on the far left"],
                 ["at the left side"]),
    "right": pool(["at the right", "on the right", "on the right side", "at the right edge", "on the far right"],
                  ["at the right side"]),
    "top": pool(["at the top", "at the top edge", "up top", "near the top"], ["at the top side"]),
    "bottom": pool(["at the bottom", "at the bottom edge", "down at the bottom", "near the bottom"],
                   ["at the bottom side"]),
    "center": pool(["in the center", "in the centre", "in the middle", "at the middle", "in the very center"],
                   ["at the centre", "at the center"]),
}

BG_COLOURS = {"gray": pool(["gray", "grey"]), "sand": pool(["sand", "sandy"]), "slate": pool(["slate"])}
BG_TEXTURES = {"striped": pool(["striped", "stripy"]), "checked": pool(["checked", "checkered"]),
               "dotted": pool(["dotted", "spotted"])}
BACKGROUND = pool(["{c} {t} background.", "on a {c} {t} background.", "the background is {c} and {t}.",
                   "with a {c} {t} background.", "background: {c}, {t}."],
                  ["over a {c} {t} background.", "the background is {t} and {c}."])

PREFIX = pool(["", "", "", "", "please ", "show me ", "i want ", "i want a video where ", "make a video where ",
               "can you show ", "i'd like ", "create a clip where ", "a video of ", "render "],
              ["please, ", "please make a video where ", "could you make "])
SUFFIX = pool(["", "", ".", "!", " please.", " thanks.", " thank you!", "?"], ["!!", " please!"])

# Explicit register: the sentence frames around the shapes' clauses.
EXPLICIT = pool(["sentences", "list", "there_is", "make", "imperative", "place_first", "show_gerund", "count_list",
                 "video_with", "we_have"],
                ["while", "want_to", "there_are_gerund", "place_there_is"])
# Reasoning register: how the layout is said, and how the rule follows it.
LAYOUT = pool(["sentences", "list", "there_is", "count_list", "same_kind", "place_first", "we_have", "scene_has"],
              ["there_are", "place_is"])
RULE_JOIN = pool(["{layout} {rule}.", "{layout} {rule}", "{layout_open}, and {rule}.", "{layout} then {rule}.",
                  "{layout_open}. {rule}.", "{layout_open} - {rule}."],
                 ["{layout_open}; {rule}."])

# Reasoning rules, by form. {m} is a motion phrase (3rd person singular), {mp} the same for a plural subject.
RELATION_SIZE = {
    "big": pool(["the larger shape", "the bigger one", "the big shape", "the larger one", "the large one",
                 "the big shape of the two"], ["the bigger shape", "the big one"]),
    "small": pool(["the smaller shape", "the smaller one", "the small one", "the little one", "the tiny one"],
                  ["the small shape"]),
}
RELATION_SUBJECT = pool(["the shape {rel} {ref}", "the one {rel} {ref}", "whatever is {rel} {ref}",
                         "the shape which is {rel} {ref}", "the one sitting {rel} {ref}"],
                        ["the shape that is {rel} {ref}", "the one that is {rel} {ref}", "the one placed {rel} {ref}"])
RELATIONS = {"to the left of": pool(["to the left of", "left of"], ["on the left of"]),
             "to the right of": pool(["to the right of", "right of"], ["on the right of"]),
             "above": pool(["above", "over"], ["on top of"]), "below": pool(["below", "under", "beneath"],
                                                                          ["just below"])}
NEGATION = {
    "colour": pool(["every shape that is not {v} {m}", "all shapes that are not {v} {mp}",
                    "everything except the {v} one {m}", "every shape except the {v} one {m}",
                    "the shapes that aren't {v} {mp}", "every shape whose colour is not {v} {m}",
                    "every shape whose color is not {v} {m}", "each shape that isn't {v} {m}",
                    "all but the {v} one {mp}", "every non-{v} shape {m}", "every shape other than the {v} one {m}",
                    "the ones that are not {v} {mp}", "anything not {v} {m}"],
                   ["everything that is not {v} {m}", "all the shapes except the {v} one {mp}",
                    "any shape that isn't {v} {m}"]),
    "kind": pool(["every shape that is not a {v} {m}", "all shapes that are not {vs} {mp}",
                  "everything except the {vx} {m}", "every shape except the {vx} {m}",
                  "each shape that isn't a {v} {m}", "all but the {vx} {mp}", "every shape other than the {vx} {m}",
                  "anything that isn't a {v} {m}"],
                 ["everything that is not a {v} {m}", "all the shapes except the {vx} {mp}"]),
    "texture": pool(["every shape that is not {v} {m}", "all shapes that are not {v} {mp}",
                     "everything except the {v} {ones} {m}", "the shapes that aren't {v} {mp}",
                     "each shape that isn't {v} {m}", "all but the {v} {ones} {mp}", "anything not {v} {m}"],
                    ["everything that is not {v} {m}", "all the shapes except the {v} {ones} {mp}"]),
}
ONLY_ONE = pool(["only the {c} one {m}", "only the {c} {k} {m}", "just the {c} one {m}", "just the {c} {k} {m}",
                 "the {c} one alone {m}"], ["only the {c} shape {m}", "just the {c} shape {m}"])
COMPARISON = {
    "biggest": pool(["the biggest shape", "the largest shape", "the biggest one", "the largest one",
                     "whichever shape is biggest", "the largest of them", "the biggest of the shapes"],
                    ["the shape that is biggest", "the one that is largest"]),
    "smallest": pool(["the smallest shape", "the smallest one", "the tiniest shape", "the tiniest one",
                      "whichever shape is smallest", "the smallest of them"],
                     ["the shape that is smallest", "the one that is tiniest"]),
    "leftmost": pool(["the leftmost shape", "the leftmost one", "the shape furthest to the left",
                      "the shape farthest left", "the shape on the far left", "whichever shape is furthest left",
                      "the shape closest to the left edge"],
                     ["the one furthest to the left", "the one farthest left", "the one closest to the left edge"]),
    "rightmost": pool(["the rightmost shape", "the rightmost one", "the shape furthest to the right",
                       "the shape farthest right", "the shape on the far right", "whichever shape is furthest right",
                       "the shape closest to the right edge"],
                      ["the one furthest to the right", "the one farthest right", "the one on the far right"]),
    "topmost": pool(["the topmost shape", "the highest shape", "the highest one", "the shape nearest the top",
                     "the shape closest to the top", "whichever shape is highest", "the highest of them"],
                    ["the one nearest the top", "the one closest to the top"]),
    "lowest": pool(["the lowest shape", "the lowest one", "the bottommost shape", "the shape nearest the bottom",
                    "the shape closest to the bottom", "whichever shape is lowest", "the lowest of them"],
                   ["the one nearest the bottom", "the one lowest down"]),
}
# with two shapes, "the bigger one" is the biggest
COMPARISON_TWO = {"biggest": pool(["the bigger one", "the bigger shape", "the larger shape"]),
                  "smallest": pool(["the smaller one", "the smaller shape"])}
CORNERS = {"triangle": "three corners", "square": "four corners", "star": "five points", "circle": "no corners"}
COUNT_CORNERS = pool(["the shape with {c}", "the one with {c}", "the shape that has {c}", "whichever shape has {c}",
                      "the shape having {c}"], ["the one that has {c}", "the one having {c}"])
COUNT_IF = pool(["if there {are} {n} {shapes}, {ref} {m1}, otherwise it {m2}",
                 "if there {are} {n} {shapes} {ref} {m1}, otherwise it {m2}",
                 "if there {are} {n} {shapes}, {ref} {m1}; otherwise it {m2}",
                 "when there {are} {n} {shapes}, {ref} {m1}, else it {m2}",
                 "{ref} {m1} when there {are} {n} {shapes}; otherwise it {m2}",
                 "{ref} {m1} in case there {are} {n} {shapes}, else it {m2}",
                 "in a scene with {n} {shapes}, {ref} {m1}; if not, it {m2}",
                 "{ref} {m1} only if there {are} {n} {shapes}. if not, it {m2}"],
                ["{ref} {m1} if there {are} {n} {shapes}, and otherwise it {m2}",
                 "should there be {n} {shapes}, {ref} {m1}, otherwise it {m2}"])
CAUSE = {
    "push": pool(["{a} pushes {b}", "{a} shoves {b}", "{b} is pushed by {a}", "{a} bumps into {b} and pushes it",
                  "{b} is shoved by {a}"], ["{b} gets pushed by {a}", "{b} gets shoved by {a}"]),
    "pull": pool(["{a} pulls {b}", "{a} drags {b}", "{b} is pulled by {a}", "{b} is dragged by {a}",
                  "{a} tugs {b}"], ["{b} gets pulled by {a}", "{b} gets dragged by {a}"]),
    "pump": pool(["{x} is pumped full of air", "air is pumped into {x}", "{x} fills with air", "{x} is inflated",
                  "someone pumps air into {x}", "{x} is blown up with air"],
                 ["{x} gets pumped full of air", "{x} gets filled with air"]),
    "deflate": pool(["{x} lets out its air", "{x} loses its air", "air leaks out of {x}", "{x} is deflated",
                     "{x} has a leak", "the air goes out of {x}"],
                    ["{x} gets deflated", "air is let out of {x}"]),
    "drop": pool(["{x} is dropped", "someone drops {x}", "{x} gets dropped", "drop {x}", "{x} is let go of",
                  "let go of {x}"], ["{x} is dropped down", "someone lets go of {x}"]),
    "wind": pool(["a wind blows from {s}", "wind blows from {s}", "the wind comes from {s}",
                  "a strong wind blows from {s}", "a gust of wind blows from {s}", "wind comes in from {s}"], ["there is a wind from {s}", "a wind is blowing from {s}"]),
}
WIND_SIDES = {"left": pool(["the left"]), "right": pool(["the right"]), "top": pool(["the top", "above"]),
              "bottom": pool(["the bottom", "below"])}

# Words of the template language (plans and template instructions) that no pool above contains.
TEMPLATE_WORDS = """a at the in top left right bottom center moves toward away from bounces grows shrinks stays still
background every shape that is not with no corners three four five points if there are one two three shapes
otherwise it to of above below larger smaller one biggest smallest leftmost rightmost topmost lowest pushes pulls
pumped full air lets out its dropped wind blows gray sand slate striped checked dotted plain big small""".split()

# Words people drop into an instruction that change nothing ("a red circle slowly moves left"): the phrasing corpus
# inserts some of them, and letter strings the family has never seen, so the LM learns to read past words it does
# not know (training/stage_phrasing.py).
NOISE_WORDS = pool(["really", "just", "kindly", "now", "so", "slowly", "gently", "quickly", "nicely", "simply",
                    "also", "then", "okay", "ok", "maybe", "very", "cute", "shiny", "nice", "little bit", "um",
                    "basically", "actually", "soft", "bright"])
