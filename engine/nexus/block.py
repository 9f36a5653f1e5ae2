"""The release's understanding block at run time: VILA's LLM → vision head → DM adapter → the light context.

`NexusUnderstanding` is what `LoadedModels.understanding` holds for the lumos-nexus family. It writes no readable
plan (the release has none: `plan()` is None), and it brings its own `conditioning(runtime, req, plan)`, which
engine/runtime.py's ``conditioning`` hands over to: the light generator gets the release's assembled context, the
heavy one the T5 tokens, and both unconditional branches the release's stored unconditional context (a typed
negative prompt is not used, as in the release; the take's metadata says so).
Guidance: the release writes CFG as ``cond + g·(cond − uncond)``; the engine's sampler uses
``uncond + s·(cond − uncond)``, the same thing with s = g + 1, so the family's default s = 6.0 is the release's g = 5.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import torch

from .context import HEAVY_TEXT_LEN, LIGHT_TEXT_LEN, adapter_tokens, light_context, pad_to
from .llm import last_hidden_states

CACHE_ENTRIES = 8
GUIDANCE_NOTE = ("release convention cond + g*(cond - uncond) with g = guidance - 1; the engine computes "
                 "uncond + guidance*(cond - uncond), the same velocity")


class _Connector(torch.nn.Module):
    """The vision head and the adapter as one module (what the previewer's model identity lists)."""

    def __init__(self, head, adapter):
        super().__init__()
        self.head, self.adapter = head, adapter


def t5_length(tokenizer, prompt: str, window: int) -> int:
    """How many real T5 tokens the prompt has after Wan's cleaning (what Wan's T5 wrapper keeps)."""
    from diffusers.pipelines.wan.pipeline_wan import prompt_clean

    return int(sum(tokenizer(prompt_clean(prompt), max_length=window, truncation=True,
                             add_special_tokens=True).attention_mask))


class NexusUnderstanding:
    """VILA's LLM + vision head + DM adapter + special tokens + the stored unconditional context."""

    family = "lumos-nexus"

    def __init__(self, lm, tokenizer, head, adapter, special: dict, uncond_t5: torch.Tensor,
                 uncond_states: torch.Tensor, *, device, dtype, lm_dtype, offloaded: bool = False):
        self.lm, self.tokenizer = lm, tokenizer
        self.connector = _Connector(head, adapter)
        self.special = special
        self.uncond_t5 = uncond_t5
        self.uncond_states = uncond_states
        self.device, self.dtype, self.lm_dtype = torch.device(device), dtype, lm_dtype
        self.offloaded = offloaded
        self._lock = threading.Lock()
        self._cache: dict[tuple, torch.Tensor] = {}

    @property
    def head(self):
        return self.connector.head

    @property
    def adapter(self):
        return self.connector.adapter

    # -- the engine's understanding interface -----------------------------------------------------------------
    def plan(self, instruction: str):
        return None  # the release's understanding block writes no readable plan

    def count_tokens(self, text: str) -> int:
        with self._lock:
            return len(self.tokenizer(text, add_special_tokens=False).input_ids)

    def max_instruction_tokens(self, plan) -> int | None:
        limit = getattr(self.lm.config, "max_position_embeddings", None)
        return None if not limit else max(0, int(limit) - 96)  # the template's own tokens

    @contextmanager
    def on_device(self):
        """The LM, head and adapter on the device for the block's duration (plans that keep them in host memory)."""
        if not self.offloaded:
            yield
            return
        self.lm.to(self.device)
        self.connector.to(self.device)
        try:
            yield
        finally:
            self.lm.to("cpu")
            self.connector.to("cpu")
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    @torch.no_grad()
    def tokens(self, prompt: str | None, latent_frames: int) -> torch.Tensor:
        """Adapter tokens [1, N, D] for `prompt` (None: the stored unconditional VILA states), cached."""
        key = (prompt, latent_frames)
        with self._lock:
            if key not in self._cache:
                with self.on_device():
                    if prompt is None:
                        states = self.uncond_states.to(self.device)
                    else:
                        states = last_hidden_states(self.lm, self.tokenizer, prompt)
                    out = adapter_tokens(self.head, self.adapter, states.to(self.device, self.dtype), latent_frames)
                if len(self._cache) >= CACHE_ENTRIES:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[key] = out.detach()
            return self._cache[key]

    def context(self, instruction: str, plan=None) -> torch.Tensor:
        """The light context's understanding part for engine code that asks for one (the previewer): the
        unconditional adapter tokens between <ipl_st> and <ipl_ed> for an empty instruction, else the prompt's."""
        toks = self.tokens(instruction if instruction.strip() else None, 2)[0]
        sp = {k: v.to(toks.device, toks.dtype).reshape(-1, toks.shape[-1]) for k, v in self.special.items()}
        return torch.cat([sp["<ipl_st>"], toks, sp["<ipl_ed>"]]).unsqueeze(0)

    # -- the family's conditioning ------------------------------------------------------------------------------
    def conditioning(self, runtime, req, plan):
        from ..sampler import Conditioning

        models = runtime.models
        temporal = int(models.vae.config.scale_factor_temporal)
        frames = (req.num_frames - 1) // temporal + 1
        window = models.max_sequence_length
        text = runtime._text(req.prompt)  # [1, 512, D]: real T5 tokens, zero-padded (Wan's wrapper + padding)
        t5 = text[0, : t5_length(models.tokenizer, req.prompt, window)]
        device = text.device
        light = light_context(self.special, self.tokens(req.prompt, frames)[0].to(device), t5, LIGHT_TEXT_LEN)
        uncond_t5 = self.uncond_t5.to(device)
        light_u = light_context(self.special, self.tokens(None, frames)[0].to(device), uncond_t5, LIGHT_TEXT_LEN)
        heavy_u = pad_to(uncond_t5.to(text.dtype), HEAVY_TEXT_LEN)
        return Conditioning(
            light_cond=light.unsqueeze(0).to(models.light.dtype),
            light_uncond=light_u.unsqueeze(0).to(models.light.dtype) if req.guidance_light > 1.0 else None,
            heavy_cond=pad_to(t5, HEAVY_TEXT_LEN).unsqueeze(0).to(models.heavy.dtype),
            heavy_uncond=heavy_u.unsqueeze(0).to(models.heavy.dtype) if req.guidance_heavy > 1.0 else None,
        )

    def take_metadata(self, req) -> dict:
        """What a take records about this family's conditioning (engine/runtime.py adds it to the metadata)."""
        return {"family": self.family, "guidance_convention": GUIDANCE_NOTE,
                "release_guidance": {"light": round(req.guidance_light - 1.0, 6),
                                     "heavy": round(req.guidance_heavy - 1.0, 6)},
                "light_context": "[<ipl_st>, adapter tokens, <ipl_ed>, <prp_st>, T5 tokens, <prp_ed>], "
                                 f"zero-padded to {LIGHT_TEXT_LEN}",
                "heavy_context": f"T5 tokens, zero-padded to {HEAVY_TEXT_LEN}",
                "unconditional": "the release's stored unconditional context"
                                 + (" (the negative prompt is not used)" if req.negative_prompt.strip() else "")}
