"""Which models made a take, read from its metadata (an MP4's: untrusted), and the models to switch to. No Qt here.

A take records its light and heavy models ("models"), a released system's family ("conditioning": {"family"},
engine/nexus/block.py) and a plain pair's planner ("planner": {"id", "heavy_reads", ...}, engine/planner.py). Each
value is checked on its own (app.schema): a malformed one is left out and named, never raised, so that a take's other
settings are restored anyway. `switch_spec` is the ModelSpec that loads what made the take, from the current one;
`describe` is what the banner says about it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from engine.api import HEAVY_READS, MODEL_FAMILIES, ModelSpec, family_info

from . import schema
from .schema import Invalid

EMBEDDED_PREFIX = "lumos-mini/"  # the engine's id for the embedded family's models
_ID = schema.Str(schema.MAX_PATH_CHARS, no_nul=True)


@dataclass(frozen=True)
class MadeWith:
    """What a take says made it. family: a released system (None: a pair); planner: a pair's planner id."""

    family: str | None = None
    planner: str | None = None
    heavy_reads: str = "instruction"
    light: str | None = None  # the engine's model ids (a folder, a repo id, or lumos-mini/...)
    heavy: str | None = None
    problems: tuple = ()


def made_with(meta) -> MadeWith:
    """Read the take's family, planner and models leniently: a bad value is left out and named in `problems`."""
    meta = meta if isinstance(meta, dict) else {}
    problems = []

    def read(value, check, where):
        if value is None:
            return None
        try:
            return check.check(value, where)
        except Invalid as exc:
            problems.append(str(exc))
            return None

    record = meta.get("conditioning")
    family = read(record.get("family"), schema.OneOf(tuple(MODEL_FAMILIES)), "conditioning.family") \
        if isinstance(record, dict) else None
    planner = meta.get("planner")
    if planner is not None and not isinstance(planner, dict):
        problems.append(f"planner: must be an object, got {schema.show(planner)}")
        planner = None
    planner = planner or {}
    planner_id = read(planner.get("id"), schema.Str(schema.MAX_PATH_CHARS, non_empty=True, no_nul=True), "planner.id")
    heavy_reads = read(planner.get("heavy_reads"), schema.OneOf(HEAVY_READS), "planner.heavy_reads")
    models = meta.get("models") if isinstance(meta.get("models"), dict) else {}
    return MadeWith(family, planner_id if family is None else None,
                    (heavy_reads or "instruction") if planner_id and family is None else "instruction",
                    read(models.get("light"), _ID, "models.light"), read(models.get("heavy"), _ID, "models.heavy"),
                    tuple(problems))


def _source(model_id: str | None) -> str | None:
    """A recorded model id as a ModelSpec source (the embedded family's ids are its default: None)."""
    return None if model_id is None or model_id.startswith(EMBEDDED_PREFIX) else model_id


def switch_spec(made: MadeWith, current: ModelSpec, loaded: tuple | None = None) -> ModelSpec | None:
    """The spec that loads the family / planner the take was made with, keeping the current device, memory plan and
    LoRAs; None when the current models already are what made it (family and planner alike). `loaded`: the loaded
    models' (light, heavy) ids: when they are the take's, the current light and heavy sources are kept."""
    same_family = made.family == current.family
    same_planner = made.family is not None or (made.planner == current.planner and (
        made.planner is None or made.heavy_reads == current.heavy_reads))
    if same_family and same_planner:
        return None
    light, heavy = current.light, current.heavy
    pair_is_the_takes = (loaded == (made.light, made.heavy)) if loaded else \
        (_source(made.light), _source(made.heavy)) == (current.light, current.heavy)
    if (not same_family or not pair_is_the_takes) and made.light is not None and made.heavy is not None:
        light, heavy = _source(made.light), _source(made.heavy)
    return replace(current, family=made.family, light=light, heavy=heavy, planner=made.planner,
                   heavy_reads=made.heavy_reads if made.planner else "instruction")


def describe(made: MadeWith, target: ModelSpec) -> tuple[str, str]:
    """(what the banner says about the models that made the take, the switch button's text)."""
    if made.family is not None:
        label = family_info(made.family)["label"]
        return (f"It was made with the {label}; these models are not it.", f"Switch to the {label}")
    if made.planner is not None:
        reads = "the plan" if made.heavy_reads == "plan" else "the instruction as typed"
        name = made.planner.rstrip("/").rsplit("/", 1)[-1]
        return (f"It was made with the planner {made.planner} (the heavy generator read {reads}); these models "
                "do not use it.", f"Use the planner {name}")
    if target.light is None and target.heavy is None:
        return "It was made with the embedded family, not with these models.", "Switch to the embedded family"
    return "It was made by a light + heavy pair without a planner, not with these models.", "Switch to its models"
