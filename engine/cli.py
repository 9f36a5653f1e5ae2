"""`python main.py render ...` and `python main.py reproduce FILE.mp4`: the engine from a terminal.

Argument parsing imports neither torch nor diffusers, so --help is instant. Every path ends with one of four exit
codes and at most one line of error, never a traceback: 0 written, 1 the render or export failed, 2 bad input
(arguments, a file's metadata, a request the models cannot render), 130 cancelled (Ctrl+C; within a step, and no
partial file is left).

The arguments and their up-front checks are in engine/cli_args.py; this module loads the models, renders, exports.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import sys
from pathlib import Path

from .api import (
    MAX_FPS,
    Cancelled,
    Done,
    Engine,
    Failed,
    LoadProgress,
    LumosError,
    ModelsLoaded,
    ModelSpec,
    RenderRequest,
    RequestError,
    StepEvent,
    check_export_size,
    check_request,
    describe_exception,
    estimate_memory,
    expected_defaults,
    export_take,
    read_take_metadata,
    validate_spec,
)
from .cli_args import (
    CliError,
    _check_export_args,
    _check_model_args,
    _check_output,
    _join_dash_values,
    _loras_of,
    _model_source,
    _recorded_family,
    _recorded_loras,
    _recorded_planner,
    build_parser,
    request_from_args,
)


class _Session:
    """Owns the Engine of one CLI run, so that every way out stops its worker first: exiting while the worker is
    inside torch aborts the process (SIGABRT, "terminate called without an active exception")."""

    JOIN_S = 15.0  # a cancelled render stops within a step; loading cannot be interrupted

    def __init__(self):
        self.engine = None

    def start(self, spec: ModelSpec, on_event):
        self.engine = Engine(spec, on_event=on_event, preview=False)
        return self.engine

    def close(self, code: int) -> int:
        if self.engine is None:
            return code
        try:
            self.engine.shutdown(wait=False)
            if self.engine.join(self.JOIN_S):
                return code
        except KeyboardInterrupt:  # a second Ctrl+C: stop waiting
            code = code or 130
        # the worker is still busy (a model still loading): leave without running the C++ runtime's exit handlers
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _wait(events: "queue.Queue", job_id: int):
    while True:  # a timeout keeps the main thread responsive to Ctrl+C
        try:
            event = events.get(timeout=0.2)
        except queue.Empty:
            continue
        if event.job_id == job_id:
            return event


def run_render(request: RenderRequest, spec: ModelSpec, out: Path, *, fps: int | None, crf: int, scale: int,
               quiet: bool, session: _Session, made_with: str | None = None) -> int:
    from tqdm import tqdm


    finished: "queue.Queue" = queue.Queue()
    result: dict = {}
    bar = None if quiet else tqdm(total=request.steps, file=sys.stderr, unit="step", desc="loading models")

    def on_event(event) -> None:
        if bar is not None and isinstance(event, LoadProgress):
            bar.set_description(event.message)
        if bar is not None and isinstance(event, StepEvent):
            if not result.get("stepping"):  # start the clock at the first step, not at model loading
                result["stepping"] = True
                bar.reset(total=event.total)
            bar.set_description(event.phase)
            bar.n = event.step
            bar.set_postfix(w=f"{event.w_t:.2f}", refresh=False)
            bar.refresh()
        if isinstance(event, (ModelsLoaded, Done, Failed, Cancelled)):
            finished.put(event)

    def failed(event) -> int:
        print(f"error: {event.message}", file=sys.stderr)
        return 2 if event.error_type == "RequestError" else 1

    try:
        if made_with is not None:
            _say(bar, made_with)
        engine = session.start(spec, on_event)
        # load first: the request is then checked against what these models can render before it is queued
        event = _wait(finished, engine.load(spec).id)
        if isinstance(event, Failed):
            return failed(event)
        if isinstance(event, Cancelled):
            return 130
        if made_with is not None:
            _say(bar, f"rendering it with light {event.summary.get('light')}, heavy {event.summary.get('heavy')}")
        try:
            job = engine.submit(request)
        except RequestError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        event = _wait(finished, job.id)
    finally:
        if bar is not None:
            bar.close()
    if isinstance(event, Failed):
        return failed(event)
    if isinstance(event, Cancelled):
        print("cancelled", file=sys.stderr)
        return 130
    take = event.take
    _say_plan(take.metadata)
    path = export_take(take, out, fps=fps or take.fps, crf=crf, scale=scale)
    print(f"wrote {path} ({take.frames.shape[0]} frames, {take.frames.shape[2]}x{take.frames.shape[1]}, "
          f"{take.elapsed:.1f} s)", file=sys.stderr)
    return 0


def _say_plan(meta: dict) -> None:
    """A planned take: its plan, or that the planner fell back to the instruction as typed (and why)."""
    planner = meta.get("planner") if isinstance(meta, dict) else None
    if not isinstance(planner, dict):
        return
    if planner.get("fell_back"):
        print(f"warning: the planner failed ({planner.get('reason')}); the light generator read the instruction as "
              f"typed", file=sys.stderr)
    elif planner.get("source") == "planner":
        print(f"plan: {meta.get('plan')}", file=sys.stderr)


def _say(bar, line: str) -> None:
    if bar is not None:
        bar.write(line, file=sys.stderr)
    else:
        print(line, file=sys.stderr)


def _models_of(meta: dict) -> tuple[str | None, str | None]:
    models = meta.get("models")
    if models is None:
        return None, None
    if not isinstance(models, dict):
        raise CliError(f"the file's model list is malformed: {str(models)[:60]!r}")
    ids = []
    for role in ("light", "heavy"):
        value = models.get(role)
        if value is not None and (not isinstance(value, str) or len(value) > 1000):
            raise CliError(f"the file's {role} model id is malformed: {str(value)[:60]!r}")
        ids.append(value)
    return ids[0], ids[1]


def _prepare(args):
    """(request, spec, out, made_with) from the arguments; CliError, RequestError or LumosError for bad input."""
    _check_export_args(args)
    _check_model_args(args)
    if args.command == "render":
        out = _check_output(args.out if args.out is not None else "take.mp4")
        spec = ModelSpec(light=args.light, heavy=args.heavy, understanding=args.understanding,
                         device=args.device, dtype=args.dtype, offload=args.offload, memory=args.memory,
                         lora_light=_loras_of(args.lora_light), lora_heavy=_loras_of(args.lora_heavy),
                         planner=args.planner, heavy_reads=args.heavy_reads or "instruction")
        if args.planner and expected_defaults(spec).get("has_understanding"):
            raise CliError("--planner is for a pair without an understanding block; these models have their own "
                           "(add --understanding none to plan with the planner instead)")
        request = check_request(request_from_args(args))
        check_export_size(request.width, request.height, args.scale)  # --scale with the size, before rendering
        return request, spec, out, None
    meta = read_take_metadata(args.file)
    data = meta.get("request")
    if not isinstance(data, dict):
        raise CliError(f"{Path(args.file).name} carries no render settings")
    request = check_request(RenderRequest.from_dict(data))
    check_export_size(request.width, request.height, args.scale)
    light_id, heavy_id = _models_of(meta)
    made_with = f"the take was made with light {light_id or 'unknown'}, heavy {heavy_id or 'unknown'}"
    if args.trust_models_in_file:
        light, heavy = args.light or _model_source(light_id), args.heavy or _model_source(heavy_id)
    else:  # the file is untrusted input: it never chooses which folders we load
        light, heavy = args.light, args.heavy
    family = _recorded_family(meta, light, heavy)
    if family is not None:
        made_with += f" (family {family})"
    lora_light, lora_heavy = _recorded_loras(meta, args)
    planner, heavy_reads = _recorded_planner(meta, request, args)
    if planner is not None:
        made_with += f", planner {planner} (heavy reads the {heavy_reads})"
    spec = ModelSpec(light=light, heavy=heavy, device=args.device, dtype=args.dtype, offload=args.offload,
                     memory=args.memory, lora_light=lora_light, lora_heavy=lora_heavy, planner=planner,
                     heavy_reads=heavy_reads, family=family)
    out = _check_output(args.out if args.out is not None else str(Path(args.file).with_name(Path(args.file).stem + "-reproduced.mp4")))
    if args.fps is None and meta.get("fps") is not None:
        fps = meta["fps"]
        if isinstance(fps, bool) or not isinstance(fps, int) or not 1 <= fps <= MAX_FPS:
            raise CliError(f"the file's fps must be a whole number from 1 to {MAX_FPS}, got {str(fps)[:40]!r}")
        args.fps = fps
    return request, spec, out, made_with


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_join_dash_values(parser, list(sys.argv[1:] if argv is None else argv)))
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    jobs_log = logging.getLogger("engine.jobs")
    level = jobs_log.level
    jobs_log.setLevel(logging.CRITICAL)  # a failed job is printed once, as "error: ..."
    session = _Session()
    try:
        code = _run(args, session)
    except KeyboardInterrupt:
        print("\ncancelled", file=sys.stderr)
        code = 130
    try:
        return session.close(code)
    finally:
        jobs_log.setLevel(level)


def _memory_plan(spec: ModelSpec, request: RenderRequest) -> ModelSpec:
    """Choose the memory plan for this request's size (configs only, nothing loaded), print it, and have the loader
    apply that plan as is. A config the estimate cannot read leaves the choice to the loader."""
    try:
        _estimate, plan = estimate_memory(spec, request.width, request.height, request.num_frames)
    except LumosError:
        raise
    except Exception as exc:  # noqa: BLE001 - the loader plans without an estimate and says so
        logging.getLogger(__name__).warning("could not estimate the memory needed (%s)", exc)
        return spec
    print(plan.describe(), file=sys.stderr)
    return dataclasses.replace(spec, memory=plan.name)


def _run(args, session: _Session) -> int:
    try:
        request, spec, out, made_with = _prepare(args)
        if getattr(args, "family", None):  # a released system (engine/nexus/): --light and --heavy are its folders
            spec = dataclasses.replace(spec, family=args.family)
        report = validate_spec(spec)
        if not report.ok:
            raise LumosError(report.message())
        spec = _memory_plan(spec, request)
    except (CliError, RequestError, LumosError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: still one line, never a traceback
        print(f"error: {describe_exception(exc)[0]}", file=sys.stderr)
        return 1
    try:
        return run_render(request, spec, out, fps=args.fps, crf=args.crf, scale=args.scale, quiet=args.quiet,
                          session=session, made_with=made_with)
    except LumosError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"error: {describe_exception(exc)[0]}", file=sys.stderr)
        return 1
