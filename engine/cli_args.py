"""The command line's arguments: the parser, and every check that can be made before a model loads.

engine/cli.py runs what these describe. Like it, this module reaches the engine through engine.api only, and
imports neither torch nor diffusers, so --help and every bad-argument message are instant.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from pathlib import Path

from .api import (
    DEFAULT_FAMILY,
    FAST_PRESET,
    HEAVY_READS,
    MAX_CRF,
    MAX_FPS,
    MAX_SCALE,
    MEMORY_CHOICES,
    MODES,
    SCHEDULERS,
    ModelSpec,
    RenderRequest,
    UPFBParams,
    default_handoff,
    embedded_family_available,
    expected_defaults,
    family_defaults,
    partial_path,
)

OFFICIAL_UPFB = UPFBParams()

WAN_DEFAULTS = {"width": 832, "height": 480, "num_frames": 81, "steps": 50, "fps": 16, "guidance_light": 5.0,
                "guidance_heavy": 5.0}


class CliError(Exception):
    """Bad command-line input: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line ("error: ..."), exit code 2, not the usage block."""

    def error(self, message: str):
        hint = f"see `{self.prog} --help`"
        if "expected one argument" in message:
            hint = "a value that starts with '-' can also be written --option=-1; " + hint
        self.exit(2, f"error: {message} ({hint})\n")


def _join_dash_values(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """`--cfg -1`, `--size -16x-16`, `--prompt "-a dog"`: argparse takes a value starting with '-' for an option and
    answers "expected one argument"; give it to the option as `--cfg=-1`, so that the value's own rule is named."""
    takes_value, options = set(), set()
    parsers = [parser] + [p for a in parser._actions if isinstance(a, argparse._SubParsersAction)
                          for p in a.choices.values()]
    for p in parsers:
        for action in p._actions:
            options.update(action.option_strings)
            if action.option_strings and action.nargs is None:
                takes_value.update(action.option_strings)
    out, i = [], 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            out += argv[i:]
            break
        if (token in takes_value and i + 1 < len(argv) and argv[i + 1].startswith("-")
                and argv[i + 1] not in options and argv[i + 1] != "--"):
            out.append(f"{token}={argv[i + 1]}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 832x480, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="main.py", description="Lumos Studio: draft with a light video generator, "
                                     "hand over to a heavy one with UPFB, export MP4. No arguments starts the app.")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="render one take to an MP4")
    r.add_argument("--prompt", required=True, help="the instruction")
    r.add_argument("--negative", default="", help="negative prompt")
    r.add_argument("--light", help="light generator: a diffusers Wan folder or a cached HF repo id (default: embedded)")
    r.add_argument("--heavy", help="heavy generator: folder or cached HF repo id (default: embedded)")
    r.add_argument("--understanding", help="understanding block folder, or 'none'")
    r.add_argument("--family", choices=("lumos-nexus",), help="a released system: lumos-nexus is the authors' "
                   "release, --light the Omni-Video bundle folder, --heavy the original-format Wan2.1-T2V-14B folder "
                   "(docs/nexus_release.md)")
    r.add_argument("--handoff", type=float, help="hand-off s in [0,1]; 0 = draft (default: the model family's "
                   "measured hand-off from its lumos.json, e.g. 0.2 for the embedded family; else the authors' "
                   "gamma_w = 0.3 placed at --shift, the family's flow shift, or Wan's 5: s = 0.645)")
    r.add_argument("--gamma-w", type=float, help="set UPFB's gate exponent directly (overrides --handoff)")
    r.add_argument("--light-lead", type=int, default=0, help="steps the light generator runs alone first (k0)")
    r.add_argument("--gamma-hf", type=float, default=OFFICIAL_UPFB.gamma_hf,
                   help=f"light high-frequency weight (default {OFFICIAL_UPFB.gamma_hf})")
    r.add_argument("--sigma-min", type=float, default=OFFICIAL_UPFB.sigma_min,
                   help=f"blur width at the end of the run (default {OFFICIAL_UPFB.sigma_min})")
    r.add_argument("--sigma-max", type=float, default=OFFICIAL_UPFB.sigma_max,
                   help=f"blur width at pure noise (default {OFFICIAL_UPFB.sigma_max})")
    r.add_argument("--mode", choices=MODES, default="upfb")
    r.add_argument("--switch-step", type=int, help="switch mode: first step run by the heavy generator")
    r.add_argument("--steps", type=int)
    r.add_argument("--frames", type=int, help="frame count, 4k+1 (others are rounded with a warning)")
    r.add_argument("--size", type=_size, help="WIDTHxHEIGHT, multiples of 16")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--cfg", type=float, help="guidance scale for both generators")
    r.add_argument("--cfg-heavy", type=float, help="guidance scale for the heavy generator")
    r.add_argument("--scheduler", choices=SCHEDULERS, help=f"sampler (default {SCHEDULERS[0]}); fewstep: for step- "
                   "and CFG-distilled generators, fixed timesteps re-noised each step (4 steps, no CFG unless given)")
    r.add_argument("--fast", action="store_true", help="the Fast preset for distilled generators: --scheduler fewstep "
                   "--steps 4 --cfg 1 (an explicit --steps or --cfg wins)")
    r.add_argument("--shift", type=float, help="flow shift (default: the model's)")
    r.add_argument("--plan", help="plan text to condition the light generator on (default: the block's own)")
    r.add_argument("--no-plan", action="store_true", help="condition on the instruction only")
    _output_args(r)
    p = sub.add_parser("reproduce", help="re-render a take from the metadata in its MP4",
                       description="Re-render a take from the settings stored in its MP4. The file is untrusted "
                       "input: it is rendered with the models you name (--light/--heavy, else the embedded family), "
                       "not with model folders the file names, unless you pass --trust-models-in-file.")
    p.add_argument("file", help="an MP4 exported by Lumos Studio")
    p.add_argument("--light", help="light generator (default: the embedded family)")
    p.add_argument("--heavy", help="heavy generator (default: the embedded family)")
    p.add_argument("--trust-models-in-file", action="store_true",
                   help="load the model folders or repo ids named in the file (for --light/--heavy not given)")
    _output_args(p)
    return parser


def _lora(text: str) -> tuple[str, float | None]:
    from .api import parse_lora_arg

    try:
        return parse_lora_arg(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _loras_of(given) -> tuple:
    """The LoRA flags as ModelSpec wants them, each file checked now (.safetensors, exists)."""
    from .api import check_lora_file

    return tuple((str(check_lora_file(path)), 1.0 if scale is None else scale) for path, scale in given or ())


def _recorded_loras(meta: dict, args) -> tuple[tuple, tuple]:
    """reproduce: the LoRAs the take recorded, found among the --lora-* paths or next to the MP4 by file name, each
    with the recorded sha256 (engine.lora.find_recorded_lora); a --lora-* SCALE overrides the recorded strength, and
    a --lora-* file the take did not record is added."""
    from .api import check_lora_file, find_recorded_lora

    recorded = meta.get("loras") or {}
    if not isinstance(recorded, dict):
        raise CliError(f"the file's LoRA list is malformed: {str(recorded)[:60]!r}")
    out = []
    for role in ("light", "heavy"):
        given = list(getattr(args, f"lora_{role}", None) or [])
        records = recorded.get(role) or []
        if not isinstance(records, list) or len(records) > 64:
            raise CliError(f"the file's {role} LoRA list is malformed")
        chosen = []
        for record in records:
            if not isinstance(record, dict):
                raise CliError(f"the file's {role} LoRA record is malformed: {str(record)[:60]!r}")
            path = find_recorded_lora(record, role, [g[0] for g in given], args.file)
            scale = record.get("scale", 1.0)
            if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not abs(scale) <= 100:
                raise CliError(f"the file's {role} LoRA strength is malformed: {str(scale)[:40]!r}")
            for g in given:
                if Path(g[0]).name == path.name:
                    given.remove(g)
                    scale = scale if g[1] is None else g[1]
                    break
            chosen.append((str(path), float(scale)))
        chosen += [(str(check_lora_file(p)), 1.0 if sc is None else sc) for p, sc in given]
        out.append(tuple(chosen))
    return out[0], out[1]


def _output_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="output .mp4 (default: take.mp4, or FILE-reproduced.mp4)")
    p.add_argument("--fps", type=int, help="frames per second (default: the model family's)")
    p.add_argument("--crf", type=int, default=18, help="H.264 quality 0..51, lower is better (default 18)")
    p.add_argument("--scale", type=int, default=1, help="integer upscale before encoding")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N, mps")
    p.add_argument("--dtype", default="auto", help="auto, float32, bfloat16, float16")
    p.add_argument("--offload", action="store_true", help="stream generator blocks from CPU memory (GPU); "
                   "the same as --memory low")
    p.add_argument("--memory", choices=MEMORY_CHOICES, default="auto",
                   help="GPU memory plan: resident (everything on the GPU), balanced (text encoder off the GPU between "
                   "prompts, heavy generator streamed block by block), low (both generators streamed, VAE tiling); "
                   "auto (default) picks the first that fits the card's free memory (resident on CPU)")
    for role in ("light", "heavy"):
        p.add_argument(f"--lora-{role}", type=_lora, action="append", default=[], metavar="PATH[:SCALE]",
                       help=f"a .safetensors LoRA for the {role} generator, with its strength (default 1); "
                       "repeatable")
    p.add_argument("--planner", metavar="DIR|REPO_ID", help="an instruction LLM (e.g. Qwen2.5-1.5B-Instruct: a folder "
                   "or a repo id in the local Hugging Face cache) that rewrites the instruction into an explicit shot "
                   "description for the light generator of a pair without an understanding block")
    p.add_argument("--heavy-reads", choices=HEAVY_READS, help="with --planner: what the heavy generator reads, the "
                   "instruction as typed (default) or the plan")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _recorded_family(meta: dict, light: str | None, heavy: str | None) -> str | None:
    """reproduce: the model family the take was made with (its conditioning record names it; None for a plain pair),
    checked against the folders it is to be rendered with: a take of one family is not rendered with another's."""
    from .api import MODEL_FAMILIES as FAMILIES
    from .api import family_info, family_of_folders

    record = meta.get("conditioning")
    if record is not None and not isinstance(record, dict):
        raise CliError(f"the file's conditioning record is malformed: {str(record)[:60]!r}")
    recorded = (record or {}).get("family")
    if recorded is not None and (not isinstance(recorded, str) or recorded not in FAMILIES):
        raise CliError(f"the file names an unknown model family {str(recorded)[:40]!r} (known: {', '.join(FAMILIES)})")
    given = family_of_folders(light, heavy)
    if recorded == given:
        return recorded
    if recorded is not None:
        what = f"the {family_info(recorded)['label']} ({recorded})"
        if light is None and heavy is None:
            raise CliError(f"the take was made with {what}: give --light its Omni-Video bundle folder and --heavy its "
                           f"Wan2.1-T2V-14B folder (or --trust-models-in-file for the folders the file names)")
        why = "does not exist" if not Path(os.path.expanduser(light or "")).exists() else \
            "is not an Omni-Video bundle"
        raise CliError(f"the take was made with {what}, but the light folder {str(light)[:200]} {why}: give the "
                       f"release's folders (--light the bundle, --heavy Wan2.1-T2V-14B)")
    raise CliError(f"the take was made with a light + heavy pair, not a released system, but {str(light)[:200]} is "
                   f"the Omni-Video bundle of the {family_info(given)['label']} ({given}): give the pair's folders")


def _defaults_for(light: str | None, family: str | None = None) -> dict:
    if family:
        return {**WAN_DEFAULTS, **expected_defaults(ModelSpec(family=family)).get("defaults", {})}
    if light is None:
        return {**WAN_DEFAULTS, **(family_defaults(DEFAULT_FAMILY) if embedded_family_available() else {})}
    folder = Path(light)
    for candidate in (folder, folder.parent):
        if (candidate / "lumos.json").is_file():
            return {**WAN_DEFAULTS, **family_defaults(candidate)}
    return dict(WAN_DEFAULTS)


def _model_source(model_id: str | None) -> str | None:
    """Turn a model id stored in metadata back into a source ('lumos-mini/...' is the embedded family)."""
    if model_id and model_id.startswith("lumos-mini/"):
        rel = model_id.split("/", 1)[1]
        if ".." in Path(rel).parts:
            raise CliError(f"the file names a model outside the embedded family: {model_id!r}")
        return str(DEFAULT_FAMILY / rel)
    return model_id


def _check_output(path: str) -> Path:
    """The output path, refused before any rendering when it cannot be written (with the system's own reason)."""
    try:
        return _check_output_path(path)
    except OSError as exc:  # a name too long, a loop of links, ...: the system's reason, not an internal error
        raise CliError(f"cannot write --out {_cut(path)}: {exc.strerror or exc}") from None


def _cut(text: str, n: int = 80) -> str:
    return text if len(text) <= n else text[:n - 3] + "..."


def _check_output_path(path: str) -> Path:
    if not path.strip():
        raise CliError("--out is empty; give a file name ending in .mp4")
    out = Path(os.path.expanduser(path))
    if out.suffix.lower() != ".mp4":
        raise CliError(f"--out must end in .mp4, got {path!r}")
    if not out.parent.is_dir():
        raise CliError(f"the output folder {out.parent} does not exist")
    limit = os.pathconf(out.parent, "PC_NAME_MAX") if hasattr(os, "pathconf") else 255
    if len(os.fsencode(out.name)) > limit:
        raise CliError(f"--out's file name is {len(os.fsencode(out.name))} bytes long; at most {limit} here")
    if out.is_dir():
        raise CliError(f"--out {path} is a folder")
    if not os.access(out.parent, os.W_OK):
        raise CliError(f"cannot write to {out.parent}: permission denied")
    probe = partial_path(out)  # access() trusts permissions alone: /proc, read-only mounts, a full disk say no later
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        os.unlink(probe)
    except OSError as exc:
        raise CliError(f"cannot write to {out.parent}: {exc.strerror or exc}") from None
    return out


def _check_export_args(args) -> None:
    """--fps, --crf and --scale are checked before rendering, not after it."""
    if args.fps is not None and not 1 <= args.fps <= MAX_FPS:
        raise CliError(f"--fps must be between 1 and {MAX_FPS}, got {args.fps}")
    if not 0 <= args.crf <= MAX_CRF:
        raise CliError(f"--crf (H.264 quality) must be from 0 to {MAX_CRF}, got {args.crf}")
    if not 1 <= args.scale <= MAX_SCALE:
        raise CliError(f"--scale must be from 1 to {MAX_SCALE}, got {args.scale}")


_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d{1,3})?)$")
_DTYPES = ("auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16")


def _check_model_args(args) -> None:
    """--device, --dtype and --understanding are checked before anything loads, not after the generators have."""
    for name in ("light", "heavy"):
        value = getattr(args, name, None)
        if value is not None and not value.strip():  # "" would quietly mean the embedded family
            raise CliError(f"--{name} is empty; give a model folder or a Hugging Face repo id, or leave it out for "
                           f"the embedded family")
    if not _DEVICE.match(args.device):
        raise CliError(f"--device must be auto, cpu, cuda, cuda:N or mps, got {args.device[:40]!r}")
    if args.dtype not in _DTYPES:
        raise CliError(f"--dtype must be auto, float32, bfloat16 or float16, got {args.dtype[:40]!r}")
    if getattr(args, "family", None) and not (args.light and args.heavy):
        raise CliError(f"--family {args.family} needs --light (the Omni-Video bundle folder) and --heavy (the "
                       f"Wan2.1-T2V-14B folder)")
    folder = getattr(args, "understanding", None)
    if folder is not None and folder != "none":
        path = Path(os.path.expanduser(folder))
        if not path.is_dir():
            what = "is not a folder" if path.exists() else "does not exist"
            raise CliError(f"--understanding {folder[:200]} {what}; give the block's folder (lm/ and connector/) "
                           f"or 'none'")
    planner = getattr(args, "planner", None)
    if planner is not None:
        from .api import ModelError, check_planner

        if not planner.strip():
            raise CliError("--planner is empty; give an instruction model's folder or a cached Hugging Face repo id")
        try:
            check_planner(planner)
        except ModelError as exc:
            raise CliError(f"--planner: {exc}") from None
    if args.command == "render" and getattr(args, "heavy_reads", None) and planner is None:
        raise CliError("--heavy-reads applies to a pair with a --planner")


def _recorded_planner(meta: dict, request: RenderRequest, args) -> tuple[str | None, str]:
    """reproduce: (planner, heavy_reads) for the spec. A planned take records its plan in the request, so the planner
    is not needed to reproduce it: the recorded id only marks the pair as planned (it is not loaded while the plan is
    given). --planner replaces it; --heavy-reads overrides the recorded choice."""
    recorded = meta.get("planner")
    if recorded is not None and not isinstance(recorded, dict):
        raise CliError(f"the file's planner record is malformed: {str(recorded)[:60]!r}")
    recorded = recorded or {}
    planner_id, reads = recorded.get("id"), recorded.get("heavy_reads", "instruction")
    if planner_id is not None and (not isinstance(planner_id, str) or not planner_id.strip() or len(planner_id) > 1000):
        raise CliError(f"the file's planner id is malformed: {str(planner_id)[:60]!r}")
    if reads not in HEAVY_READS:
        raise CliError(f"the file's heavy_reads is malformed: {str(reads)[:40]!r}")
    heavy_reads = args.heavy_reads or reads
    if args.planner:
        return args.planner, heavy_reads
    if planner_id is None:
        if args.heavy_reads:
            raise CliError("--heavy-reads applies to a take made with a planner, or with --planner")
        return None, "instruction"
    if request.use_plan and request.plan is None and not args.trust_models_in_file:
        raise CliError(f"the take was planned by {planner_id[:80]} but the file holds no plan; give --planner")
    return planner_id, heavy_reads


def request_from_args(args) -> RenderRequest:
    if args.shift is not None and not (math.isfinite(args.shift) and 0.01 <= args.shift <= 100.0):
        # checked before the default hand-off is placed at this shift, which would otherwise be the one named
        raise CliError(f"--shift (the flow shift) must be a number from 0.01 to 100, got {args.shift}")
    if args.plan is not None and args.no_plan:
        raise CliError("--plan and --no-plan contradict each other: give one of them")
    if args.switch_step is not None and args.mode != "switch":
        raise CliError(f"--switch-step applies to --mode switch only (this is --mode {args.mode})")
    if args.fast and args.scheduler not in (None, FAST_PRESET["scheduler"]):
        raise CliError(f"--fast samples with --scheduler {FAST_PRESET['scheduler']}, not {args.scheduler}")
    scheduler = FAST_PRESET["scheduler"] if args.fast else (args.scheduler or SCHEDULERS[0])
    d = _defaults_for(args.light, getattr(args, "family", None))
    if scheduler == FAST_PRESET["scheduler"]:  # a distilled generator's own steps and guidance
        d = {**d, **{k: FAST_PRESET[k] for k in ("steps", "guidance_light", "guidance_heavy")}}
    width, height = args.size if args.size else (d["width"], d["height"])
    handoff = args.handoff if args.handoff is not None else default_handoff(d, args.shift)[0]
    steps = args.steps if args.steps is not None else d["steps"]
    switch_step = args.switch_step
    if args.mode == "switch" and switch_step is None:
        switch_step = round(steps * 18 / 50)  # where the official gate crosses 1/2
    g_light = args.cfg if args.cfg is not None else d["guidance_light"]
    g_heavy = args.cfg_heavy if args.cfg_heavy is not None else (args.cfg if args.cfg is not None else d["guidance_heavy"])
    return RenderRequest(
        prompt=args.prompt, negative_prompt=args.negative, mode=args.mode, handoff=handoff, gamma_w=args.gamma_w,
        upfb=UPFBParams(gamma_hf=args.gamma_hf, sigma_min=args.sigma_min, sigma_max=args.sigma_max,
                        light_lead=args.light_lead),
        switch_step=switch_step, steps=steps, num_frames=args.frames if args.frames is not None else d["num_frames"],
        width=width, height=height, seed=args.seed, guidance_light=g_light, guidance_heavy=g_heavy,
        scheduler=scheduler, flow_shift=args.shift, plan=args.plan, use_plan=not args.no_plan)
