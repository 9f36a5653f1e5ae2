"""The engine's public API: everything app/ and the CLI may use. Importing this module does not import torch."""
# ruff: noqa: F401 - every name imported here is re-exported

from . import __version__
from .atomic_files import atomic_write_bytes, atomic_write_json, atomic_write_text
from .errors import Cancelled as CancelledError
from .errors import ExportError, LumosError, ModelError, OutOfMemory, ProjectError, describe_exception
from .events import (
    Cancelled,
    DraftReady,
    Done,
    Event,
    Failed,
    LoadProgress,
    ModelsLoaded,
    PlanReady,
    Queued,
    Started,
    StepEvent,
    Take,
)
from .export import MAX_CRF, MAX_EXPORT_SIDE, MAX_FPS, MAX_SCALE, check_export_size, partial_path
from .handoff import (
    DEFAULT_FLOW_SHIFT,
    OFFICIAL_GAMMA_W,
    OFFICIAL_HANDOFF,
    GateSchedule,
    Resolved,
    default_handoff,
    gamma_w_to_handoff,
    gate_schedule,
    handoff_to_gamma_w,
    resolve_request,
)
from .jobs import Engine, JobHandle
from .lora import check_lora_file, find_recorded_lora, parse_lora_arg
from .memory_plan import MEMORY_CHOICES, PLANS as MEMORY_PLANS, MemoryEstimate, MemoryPlan, choose_plan, next_plan
from .models import (
    DEFAULT_FAMILY,
    ModelSpec,
    PairReport,
    embedded_family_available,
    expected_defaults,
    family_defaults,
    validate_spec,
)
from .nexus import FAMILIES as MODEL_FAMILIES
from .nexus import family_folder_problems, family_info, family_of_folders
from .planner import HEAVY_READS, PlanResult, check_planner
from .request import (
    FAST_PRESET,
    MAX_FRAMES,
    MAX_NEGATIVE_CHARS,
    MAX_PLAN_CHARS,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    MAX_SIDE,
    MAX_STEPS,
    MODES,
    SCHEDULERS,
    ModelLimits,
    RenderRequest,
    RequestError,
    UPFBParams,
    check_request,
    is_checked,
    nearest_valid_frames,
    take_identity,
)
from .vocabulary import family_vocabulary, instruction_limits, instruction_words, unknown_words


def estimate_memory(spec=None, width=None, height=None, num_frames=None, device=None):
    """(MemoryEstimate, MemoryPlan) for a ModelSpec and a request size (None: the family's defaults) on its device
    now, from config files alone (nothing is loaded; imports torch). The plan is what loading `spec` would apply:
    spec.memory, or with "auto" the first of resident/balanced/low that fits the free memory (resident off CUDA).
    `plan.describe()` is the one line to show; `estimate.peak(name)` is each plan's peak in bytes."""
    from .loading import estimate_memory as estimate

    return estimate(spec, width, height, num_frames, device)


def export_take(take, path, **kwargs):
    """Write `take` to an MP4 at `path` (see engine.export.export_mp4 for the options)."""
    from .export import export_mp4

    return export_mp4(take.frames, path, fps=kwargs.pop("fps", take.fps), metadata=take.metadata, **kwargs)


def remove_stale_partials(folder):
    """Remove partial exports that killed exports left in `folder` (only our own naming pattern; see engine.export)."""
    from .export import remove_stale_partials as remove

    return remove(folder)


def read_take_metadata(path):
    """The metadata stored in an exported MP4 (raises ExportError if it has none)."""
    from .export import read_metadata

    return read_metadata(path)


__all__ = [name for name in dir() if not name.startswith("_")]
