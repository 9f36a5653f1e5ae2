"""One request carries every generation input; it is checked once, at the door.

`check_request` returns the request marked as checked (against the model limits it was given); a checked request
is trusted from then on, by `check_request` itself and by the engine's worker. Any change (`replace`, `from_dict`,
a new request) gives an unchecked request again, so a value can never skip the rules.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import numbers
import unicodedata
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

MODES = ("light", "heavy", "switch", "upfb")
SCHEDULERS = ("unipc", "euler", "fewstep")  # fewstep: step- and CFG-distilled generators (engine.schedulers)
# The settings a step- and CFG-distilled generator (e.g. the published 4-step Wan2.1 distillations) is run with:
# the fixed few-step schedule with fresh noise each step, and no CFG. The CLI's --fast and the app's Fast preset.
FAST_PRESET = {"scheduler": "fewstep", "steps": 4, "guidance_light": 1.0, "guidance_heavy": 1.0}
# Text limits, checked before any model sees the text: the understanding LM's cost grows with the square of its
# input (a 100 KB negative asked for a 519 GB allocation), and the take's metadata travels on ffmpeg's command line.
MAX_PROMPT_CHARS = 2000
MAX_NEGATIVE_CHARS = 2000
MAX_PLAN_CHARS = 4000
MAX_SIDE = 2048
MAX_FRAMES = 241
MAX_STEPS = 200
# One seed range for the engine, the CLI, stored takes and the UI's seed box (a 32-bit spin box); torch's generators
# take any 64-bit seed, so the UI is the narrowest consumer.
MAX_SEED = 2**31 - 1


class RequestError(ValueError):
    """A request value breaks a rule; the message names the field, the rule and the value."""


@dataclass(frozen=True)
class UPFBParams:
    """UPFB knobs (docs/design.md §2). Defaults are the authors' official values, written here only: everything
    else (the sampler, the fusion, the CLI, the app) takes them from this class. light_lead is our extension."""

    gamma_hf: float = 0.7
    sigma_min: float = 0.35
    sigma_max: float = 0.7
    light_lead: int = 0  # k0: steps run by the light generator alone before the gate starts

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RenderRequest:
    """Everything that determines a take.

    mode: "light" (the draft), "heavy", "switch" (hard hand-off at `switch_step`) or "upfb".
    handoff: s in [0, 1], what the slider sends. In "upfb" mode it sets gamma_w (see engine.handoff);
        s = 0 is the draft itself (light alone, no UPFB). Ignored by the other modes.
    gamma_w: set it to bypass the slider mapping with an exact gate exponent (e.g. the official 0.3).
    guidance_*: diffusers convention, v_u + g * (v_c - v_u); g <= 1 disables CFG for that generator.
    plan: the understanding block's plan to condition on (None: let the block write one); use_plan=False
        conditions the light generator on the instruction alone.
    """

    prompt: str
    negative_prompt: str = ""
    mode: str = "upfb"
    handoff: float = 0.0
    gamma_w: float | None = None
    upfb: UPFBParams = field(default_factory=UPFBParams)
    switch_step: int | None = None
    steps: int = 50
    num_frames: int = 81
    width: int = 832
    height: int = 480
    seed: int = 0
    guidance_light: float = 5.0
    guidance_heavy: float = 5.0
    scheduler: str = "unipc"
    flow_shift: float | None = None  # None: the scheduler config's own shift
    plan: str | None = None
    use_plan: bool = True

    def replace(self, **changes) -> "RenderRequest":
        return dataclasses.replace(self, **changes)

    @property
    def is_draft(self) -> bool:
        """True when only the light generator runs (the draft)."""
        return self.mode == "light" or (self.mode == "upfb" and self.handoff <= 0.0 and self.gamma_w is None)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["upfb"] = self.upfb.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "RenderRequest":
        """Rebuild a request from `to_dict` output (e.g. an exported take's metadata); unknown keys are ignored."""
        if not isinstance(data, dict) or "prompt" not in data:
            raise RequestError("request data must be an object with at least a 'prompt'")
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        upfb = kwargs.get("upfb")
        if upfb is not None and not isinstance(upfb, dict):
            raise RequestError(f"upfb must be an object of UPFB settings, got {_show(upfb)}")
        if isinstance(upfb, dict):
            unames = {f.name for f in dataclasses.fields(UPFBParams)}
            kwargs["upfb"] = UPFBParams(**{k: v for k, v in upfb.items() if k in unames})
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise RequestError(f"request data is malformed: {exc}") from None


def _show(value) -> str:
    """A value for a one-line message: long texts (e.g. from a crafted file) are cut."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _finite(name: str, value, lo: float | None = None, hi: float | None = None) -> float:
    # text that looks like a number ("0.5" from a file) is refused too: it would fail later in comparisons
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise RequestError(f"{name} must be a number, got {_show(value)}")
    v = float(value)
    if not math.isfinite(v):
        raise RequestError(f"{name} must be finite, got {value!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise RequestError(f"{name} must be in [{lo}, {hi}], got {value!r}")
    return v


def _integer(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise RequestError(f"{name} must be a whole number, got {_show(value)}")
    if not lo <= value <= hi:
        raise RequestError(f"{name} must be between {lo} and {hi}, got {_show(value)}")
    return value


def nearest_valid_frames(frames: int) -> int:
    """Wan's VAE compresses time 4x with one extra first frame: valid counts are 4k + 1."""
    return max(1, 4 * round((frames - 1) / 4) + 1)


def check_request(req: RenderRequest, repair: bool = True, limits: "ModelLimits | None" = None) -> RenderRequest:
    """Validate `req` and return it, with repairable values repaired (and logged) when `repair` is true, marked as
    checked. limits: also check it against what the loaded models can render (`Engine.submit` passes them).

    A request this function has returned is trusted as it is (no second pass), unless new limits are given.
    Raises RequestError naming the field, the rule and the value received.
    """
    if is_checked(req, limits):
        return req
    checked = _validate(req, repair, limits)
    object.__setattr__(checked, _CHECKED, (limits,))
    return checked


def is_checked(req: RenderRequest, limits: "ModelLimits | None" = None) -> bool:
    """Whether `check_request` returned this very request (against `limits`, when given)."""
    stamp = getattr(req, _CHECKED, None)
    return stamp is not None and (limits is None or stamp[0] == limits)


_CHECKED = "_checked_against"  # an attribute outside the dataclass fields: not in to_dict, ==, or replace()


def _validate(req: RenderRequest, repair: bool, limits: "ModelLimits | None") -> RenderRequest:
    # texts first, lengths before anything else: no model may see an unbounded text
    if not isinstance(req.prompt, str):
        raise RequestError(f"prompt must be text, got {_show(req.prompt)}")
    if not _visible(req.prompt):
        raise RequestError("prompt must be a non-empty instruction")
    _text_limit("prompt", req.prompt, MAX_PROMPT_CHARS)
    if not isinstance(req.negative_prompt, str):
        raise RequestError(f"negative_prompt must be text, got {_show(req.negative_prompt)}")
    _text_limit("negative prompt", req.negative_prompt, MAX_NEGATIVE_CHARS)
    if req.plan is not None:
        if not isinstance(req.plan, str):
            raise RequestError(f"plan must be text or None, got {_show(req.plan)}")
        _text_limit("plan", req.plan, MAX_PLAN_CHARS)
    if not isinstance(req.use_plan, bool):
        raise RequestError(f"use_plan must be true or false, got {_show(req.use_plan)}")
    if not isinstance(req.mode, str) or req.mode not in MODES:
        raise RequestError(f"mode must be one of {', '.join(MODES)}, got {_show(req.mode)}")
    if not isinstance(req.scheduler, str) or req.scheduler not in SCHEDULERS:
        raise RequestError(f"scheduler must be one of {', '.join(SCHEDULERS)}, got {_show(req.scheduler)}")
    if not isinstance(req.upfb, UPFBParams):
        raise RequestError(f"upfb must be UPFB settings, got {_show(req.upfb)}")
    changes: dict = {}
    for name in ("width", "height"):
        v = _integer(name, getattr(req, name), 16, MAX_SIDE)
        if v % 16:
            raise RequestError(f"{name} must be a multiple of 16 (Wan's VAE and patching), got {v}")
    frames = _integer("num_frames", req.num_frames, 1, MAX_FRAMES)
    if (frames - 1) % 4:
        fixed = nearest_valid_frames(frames)
        if not repair:
            raise RequestError(f"num_frames must be 4k + 1 (e.g. 17, 33, 81), got {frames}")
        log.warning("num_frames %d is not 4k + 1; using %d", frames, fixed)
        changes["num_frames"] = fixed
    steps = _integer("steps", req.steps, 1, MAX_STEPS)
    _integer("seed", req.seed, 0, MAX_SEED)
    _finite("handoff", req.handoff, 0.0, 1.0)
    if req.gamma_w is not None:
        _finite("gamma_w", req.gamma_w, 0.0, 1e6)
    _finite("guidance_light", req.guidance_light, 0.0, 50.0)
    _finite("guidance_heavy", req.guidance_heavy, 0.0, 50.0)
    if req.flow_shift is not None:
        _finite("flow_shift", req.flow_shift, 0.01, 100.0)
    u = req.upfb
    _finite("upfb.gamma_hf", u.gamma_hf, 0.0, 10.0)
    smin = _finite("upfb.sigma_min", u.sigma_min, 0.0, 100.0)
    smax = _finite("upfb.sigma_max", u.sigma_max, 0.0, 100.0)
    if smin > smax:
        raise RequestError(f"upfb.sigma_min ({smin}) must not exceed upfb.sigma_max ({smax})")
    _integer("upfb.light_lead", u.light_lead, 0, steps)
    if req.mode == "switch":
        if req.switch_step is None:
            raise RequestError("switch mode needs switch_step (the first step run by the heavy generator)")
        _integer("switch_step", req.switch_step, 0, steps)
    if limits is not None:
        limits.check(req.replace(**changes) if changes else req)
    return req.replace(**changes) if changes else req


def take_identity(req: RenderRequest) -> str:
    """The identity of the take a request renders: a digest of every field of the checked request, which with the
    models (and their flow shift, for a request without one) determines the frames. Two requests with the same
    identity render the same take; the engine's takes cache and the app's take lookup both key on it."""
    data = check_request(req).to_dict()
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _text_limit(name: str, text: str, limit: int) -> None:
    if len(text) > limit:
        raise RequestError(f"the {name} has {len(text)} characters; at most {limit}")
    # the texts go to the tokenizers (a lone surrogate, from bytes that are not UTF-8, fails deep inside them) and
    # into the MP4's metadata through ffmpeg's command line (which cannot carry a NUL)
    if "\x00" in text:
        raise RequestError(f"the {name} contains a NUL character (\\x00); remove it")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RequestError(f"the {name} is not valid text: character {exc.start + 1} is not Unicode (bytes that are "
                           f"not UTF-8?); retype it") from None


def _visible(text: str) -> bool:
    """Whether `text` has a character that shows: spaces, zero-width and control characters alone are no instruction."""
    return any(not ch.isspace() and unicodedata.category(ch)[0] not in "CZ" for ch in text)


@dataclass(frozen=True)
class ModelLimits:
    """What a loaded model pair can render, from its configs: the largest size and frame count its position
    signals cover (RoPE tables, an absolute position grid), the size step its VAE and patching need, and its text
    encoder's token window. Beyond them a render fails deep inside the model ("token grid ... exceeds",
    "view size is not compatible"), so requests are checked against them before they are queued."""

    name: str  # "this model pair", or the family's name
    max_width: int
    max_height: int
    max_frames: int
    size_step: int = 16  # width and height must be multiples of it
    text_tokens: int | None = None  # the text encoder's window, in its own tokens

    def rule(self) -> str:
        return f"{self.name} renders at most {self.max_width}×{self.max_height} and {self.max_frames} frames"

    def check(self, req: RenderRequest) -> None:
        for name in ("width", "height"):
            value = getattr(req, name)
            if value % self.size_step:
                raise RequestError(f"{name} must be a multiple of {self.size_step} for {self.name}, got {value}")
        if req.width > self.max_width or req.height > self.max_height or req.num_frames > self.max_frames:
            raise RequestError(f"{self.rule()}; asked for {req.width}×{req.height} and {req.num_frames} frames")
