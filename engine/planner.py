"""The planner: an instruction LLM that gives a plain Wan pair the understanding block it lacks.

A Qwen2.5-Instruct class model (any transformers causal LM whose tokenizer has a chat template), from a local folder
or a Hugging Face repo id already in the local cache, rewrites the instruction into an explicit shot description:
who or what is in it, where, how it moves, and what any rule in the instruction resolves to. The light generator
reads that plan's text tokens; the heavy one reads the instruction as typed (or the plan, when ModelSpec.heavy_reads
is "plan").

It stays off the GPU's critical path: loaded on first use into host memory, moved to the device only while it
writes, and back afterwards. Decoding is greedy (deterministic) and bounded, and stops within a token when its
cancel flag is set. Any failure (a wrong folder, an exception while writing, an empty answer) falls back to the
instruction as typed, and the result says so (`PlanResult.fell_back`, `.reason`) for the app to show.

Importing this module imports neither torch nor transformers (engine.api re-exports its light parts).
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from .errors import Cancelled as CancelledError
from .errors import ModelError

log = logging.getLogger(__name__)

HEAVY_READS = ("instruction", "plan")  # what the heavy generator of a planned pair reads
MAX_NEW_TOKENS = 160  # about 120 words: well inside Wan's 512-token text window
RESULT_ENTRIES = 256
SYSTEM_PROMPT = (
    "You rewrite an instruction for a text-to-video model into one explicit shot description. Say who or what is "
    "in the shot, where it is, and how it moves, in plain, concrete words. If the instruction states a rule or a "
    "riddle (\"the one that is not red\", \"the larger shape\"), resolve it and name the thing it means. Write one "
    "to three sentences in the present tense: no lists, no preamble, no explanation."
)
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")
_CONFIG_BOUNDS = {"hidden_size": (1, 1 << 16), "intermediate_size": (1, 1 << 20), "num_hidden_layers": (1, 1000),
                  "num_attention_heads": (1, 1024), "num_key_value_heads": (1, 1024), "vocab_size": (1, 1 << 21)}


@dataclass(frozen=True)
class PlanResult:
    """What a planner answered: the plan text (the instruction as typed when it fell back), whether it fell back,
    why (one line to show as a banner), and the planner's id (None for a family's own understanding block)."""

    text: str
    fell_back: bool = False
    reason: str | None = None
    planner: str | None = None


def check_planner(source: str) -> Path:
    """The planner's local folder, checked from its files alone (no weights are read): ModelError naming what is
    missing for a folder that is not an instruction LLM. A repo id is looked up in the local cache only."""
    from .models import _check_numbers, _check_size, _check_weights, _read_json, resolve_path

    path = resolve_path(source)
    if not (path / "config.json").is_file():
        raise ModelError(f"{path} is not a language model folder: it has no config.json (choose the folder of an "
                         f"instruction model such as Qwen2.5-1.5B-Instruct)")
    config = _read_json(path / "config.json")
    architectures = config.get("architectures") or []
    causal = isinstance(architectures, list) and any(isinstance(a, str) and a.endswith("ForCausalLM")
                                                     for a in architectures)
    if not causal and (architectures or not config.get("model_type")):  # a model_type alone: let transformers say
        what = architectures or config.get("_class_name") or "model of unknown kind"
        raise ModelError(f"{path} holds a {str(what)[:60]}, not a causal language model (…ForCausalLM) such as "
                         f"Qwen2.5-Instruct")
    _check_numbers(config, _CONFIG_BOUNDS, path / "config.json")
    h, layers = config.get("hidden_size", 1), config.get("num_hidden_layers", 1)
    _check_size(config, path, layers * (4 * h * h + 3 * h * config.get("intermediate_size", 1))
                + 2 * h * config.get("vocab_size", 1))
    if not any((path / name).is_file() for name in _TOKENIZER_FILES):
        raise ModelError(f"{path} has no tokenizer (tokenizer.json or tokenizer_config.json)")
    if not _has_chat_template(path):
        raise ModelError(f"{path} has no chat template: choose an instruction-tuned model (…-Instruct), not a base "
                         f"model")
    _check_weights(path, "the planner")
    return path


def _has_chat_template(path: Path) -> bool:
    if (path / "chat_template.jinja").is_file() or (path / "chat_template.json").is_file():
        return True
    if (path / "tokenizer_config.json").is_file():
        from .models import _read_json

        return bool(_read_json(path / "tokenizer_config.json").get("chat_template"))
    return False


def clean_plan(text: str) -> str:
    """The model's answer as a plan: surrounding quotes and blank lines gone, whitespace runs collapsed."""
    from .request import MAX_PLAN_CHARS

    text = re.sub(r"[ \t]+", " ", text.replace("\r", "")).strip().strip("\"'").strip()
    text = re.sub(r"\n\s*\n+", "\n", text)
    return text[:MAX_PLAN_CHARS].strip()


def _describe(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text if isinstance(exc, ModelError) else f"{type(exc).__name__}: {text}".rstrip(": ")


class Planner:
    """One planner model, loaded on first use. `plan(instruction, cancel_flag)` -> PlanResult (never raises, except
    CancelledError when the flag is set). Not shared across threads: the engine's worker is its only caller."""

    def __init__(self, source: str, device="cpu", dtype=None, max_new_tokens: int = MAX_NEW_TOKENS):
        self.source = str(source)
        self.device = device
        self.dtype = dtype
        self.max_new_tokens = max_new_tokens
        self.model = None
        self.tokenizer = None
        self._load_error: str | None = None  # a failed load is not retried until the models are reloaded
        self._results: dict[str, PlanResult] = {}
        self._lock = threading.Lock()

    @property
    def id(self) -> str:
        return self.source

    @property
    def loaded(self) -> bool:
        return self.model is not None

    def load(self) -> None:
        """Read the planner into host memory (once). ModelError naming what is wrong."""
        if self.model is not None:
            return
        if self._load_error is not None:
            raise ModelError(self._load_error)
        try:
            self._load()
        except Exception as exc:
            self._load_error = (str(exc) if isinstance(exc, ModelError) else
                                f"could not load the planner {self.source}: {_describe(exc)}")
            raise ModelError(self._load_error) from None

    def _load(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        path = check_planner(self.source)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        if not getattr(tokenizer, "chat_template", None):
            raise ModelError(f"{path}'s tokenizer has no chat template: choose an instruction-tuned model")
        kwargs = {"dtype": self.dtype} if self.dtype is not None else {}
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, use_safetensors=True, **kwargs)
        self.model, self.tokenizer = model.requires_grad_(False).eval(), tokenizer

    def unload(self) -> None:
        self.model = self.tokenizer = None

    def result(self, instruction: str) -> PlanResult | None:
        """The last answer for `instruction` (None when it was never asked)."""
        return self._results.get(instruction)

    def plan(self, instruction: str, cancel_flag=None) -> PlanResult:
        with self._lock:
            cached = self._results.get(instruction)
            if cached is not None and not cached.fell_back:
                return cached
            if not instruction.strip():
                return self._keep(instruction, PlanResult(instruction, planner=self.id))
            try:
                text = clean_plan(self.write(instruction, cancel_flag))
                reason = None if text else "the planner wrote nothing"
            except CancelledError:
                raise
            except Exception as exc:  # every failure falls back to the instruction as typed
                text, reason = "", _describe(exc)
            if reason is not None:
                log.warning("the planner fell back to the instruction as typed: %s", reason)
                return self._keep(instruction, PlanResult(instruction, True, reason, self.id))
            return self._keep(instruction, PlanResult(text, planner=self.id))

    def _keep(self, instruction: str, result: PlanResult) -> PlanResult:
        if len(self._results) >= RESULT_ENTRIES:
            self._results.pop(next(iter(self._results)))
        self._results[instruction] = result
        return result

    def messages(self, instruction: str) -> list[dict]:
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": instruction}]

    def write(self, instruction: str, cancel_flag=None) -> str:
        """The model's raw answer (greedy, at most max_new_tokens); raises on any failure, CancelledError when the
        flag is set before or while it writes."""
        import torch

        def cancelled() -> bool:
            return cancel_flag is not None and cancel_flag.is_set()

        if cancelled():
            raise CancelledError(None)
        self.load()
        tok, model = self.tokenizer, self.model
        prompt = tok.apply_chat_template(self.messages(instruction), add_generation_prompt=True, tokenize=False)
        inputs = tok(prompt, return_tensors="pt", add_special_tokens=False)
        device = torch.device(self.device)
        moved = device.type != "cpu"
        try:
            if moved:
                model.to(device)
            with torch.inference_mode():
                out = model.generate(**{k: v.to(device) for k, v in inputs.items()},
                                     generation_config=self._generation_config(),
                                     stopping_criteria=_cancel_criteria(cancel_flag))
        finally:
            if moved:  # back to host memory: the generators get the device
                model.to("cpu")
                if device.type == "cuda":
                    torch.cuda.empty_cache()
        if cancelled():
            raise CancelledError(None)
        new = out[0, inputs["input_ids"].shape[1]:]
        return tok.decode(new.tolist(), skip_special_tokens=True)

    def _generation_config(self):
        from transformers import GenerationConfig

        own = self.model.generation_config
        eos = own.eos_token_id if own.eos_token_id is not None else self.tokenizer.eos_token_id
        pad = self.tokenizer.pad_token_id
        pad = pad if pad is not None else (eos[0] if isinstance(eos, list) else eos)
        return GenerationConfig(max_new_tokens=self.max_new_tokens, do_sample=False, num_beams=1,
                                eos_token_id=eos, pad_token_id=pad)


def _cancel_criteria(cancel_flag):
    """A StoppingCriteriaList that ends generation within a token once `cancel_flag.is_set()`."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _Cancel(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            stop = cancel_flag is not None and cancel_flag.is_set()
            return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([_Cancel()])


# -- what the runtime asks (kept here: engine/runtime.py is long) ------------------------------------------------
def planner_of(models):
    """The loaded pair's planner, or None (none chosen, or a family with its own understanding block)."""
    return getattr(models, "planner", None) if getattr(models, "understanding", None) is None else None


def heavy_reads_plan(models, light_reads: bool) -> bool:
    """Whether the heavy generator reads the plan's text tokens: a planned pair switched to "plan", with a plan."""
    return light_reads and planner_of(models) is not None and getattr(models, "heavy_reads", "") == "plan"


def planner_metadata(models, req, plan: str | None) -> dict:
    """The take's record of its planner ({} without one): id, what the heavy read, where the plan came from
    ("planner", "given": the request's own, e.g. the user's edit; "fallback", "off": use_plan false), and why it
    fell back."""
    planner = planner_of(models)
    if planner is None:
        return {}
    result = planner.result(req.prompt)
    if not req.use_plan or plan is None:
        source = "off"
    elif req.plan is not None:
        source = "given"
    else:
        source = "fallback" if result is not None and result.fell_back else "planner"
    return {"planner": {"id": planner.id, "heavy_reads": getattr(models, "heavy_reads", "instruction"),
                        "source": source, "fell_back": source == "fallback",
                        "reason": result.reason if source == "fallback" else None}}
