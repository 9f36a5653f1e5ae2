"""Typed errors whose messages are written for the person using the app or the CLI."""

from __future__ import annotations


class LumosError(Exception):
    """Base of every error the engine raises on purpose; str(error) is a complete, human message."""


class ModelError(LumosError):
    """A model folder, repo id or pair cannot be used (missing, corrupt, mismatched)."""


class ExportError(LumosError):
    """A take could not be written (path, disk, size)."""


class ProjectError(LumosError):
    """A project or settings file cannot be read or written."""


class OutOfMemory(LumosError):
    """The device ran out of memory during a render. Everything the render held is freed; the request is kept.

    suggested_plan: the memory plan to reload the models with ("balanced", "low"), or None when the lowest plan was
    already in use (then only a smaller request helps). current_plan: the plan in use. request: the render asked for.
    """

    def __init__(self, message: str, *, suggested_plan: str | None = None, current_plan: str | None = None,
                 request=None):
        super().__init__(message)
        self.suggested_plan = suggested_plan
        self.current_plan = current_plan
        self.request = request


class Cancelled(Exception):
    """Raised inside a run when its job was cancelled; not an error."""

    def __init__(self, at_step: int | None):
        super().__init__(f"cancelled at step {at_step}")
        self.at_step = at_step


def describe_exception(exc: BaseException) -> tuple[str, str]:
    """(message for a person, error type name) for any exception a job may raise."""
    from .request import RequestError

    if isinstance(exc, (LumosError, RequestError)):
        return str(exc), type(exc).__name__  # OutOfMemory -> "OutOfMemory"
    text = str(exc)
    if isinstance(exc, MemoryError) or "out of memory" in text.lower():
        return (
            "Out of memory while rendering. Try fewer frames, a smaller size or fewer steps, "
            "or a lower memory plan (--memory balanced or low; CPU offload in the model settings).",
            "OutOfMemory",
        )
    return f"Unexpected error ({type(exc).__name__}): {text or 'no details'}", "InternalError"
