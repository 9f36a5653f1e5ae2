"""The runtime's text side: what the understanding block (or a pair's planner) writes, and the conditioning each
generator reads. A mixin of engine.runtime.Runtime, which holds the loaded models (`_require()`), the plan and text
caches (`_plans`, `_text_cache`)."""

from __future__ import annotations

from .request import MAX_PROMPT_CHARS, RenderRequest, RequestError

TEXT_CACHE_ENTRIES = 64


class ConditioningMixin:
    """Plans and conditioning for Runtime (see the module docstring)."""

    def _check_understanding(self, name: str, text: str, plan: str | None) -> None:
        block = self._require().understanding
        if block is None or not text.strip() or not hasattr(block, "max_instruction_tokens"):
            return
        limit = block.max_instruction_tokens(plan)
        if limit is not None and (count := block.count_tokens(text)) > limit:
            raise RequestError(f"the {name} is {count} tokens long; the understanding block reads at most {limit}")

    # -- understanding ----------------------------------------------------------------------------------
    def plan(self, instruction: str, cancel_flag=None) -> str | None:
        result = self.plan_result(instruction, cancel_flag)
        return None if result is None else result.text

    def plan_result(self, instruction: str, cancel_flag=None):
        """engine.planner.PlanResult for `instruction` from the understanding block or the pair's planner (which
        falls back to the instruction as typed, and says so); None when the models have neither."""
        from .planner import PlanResult, planner_of

        models = self._require()
        planner = planner_of(models)
        if models.understanding is None and planner is None:
            return None
        if not isinstance(instruction, str) or len(instruction) > MAX_PROMPT_CHARS:
            raise RequestError(f"the prompt has {len(instruction)} characters; at most {MAX_PROMPT_CHARS}")
        if planner is not None:
            return planner.plan(instruction, cancel_flag)
        self._check_understanding("prompt", instruction, None)
        if instruction not in self._plans:
            self._plans[instruction] = models.understanding.plan(instruction)
        return PlanResult(self._plans[instruction])

    # -- conditioning -----------------------------------------------------------------------------------
    def _text(self, prompt: str):
        import torch

        models = self._require()
        key = (prompt, models.max_sequence_length)
        if key not in self._text_cache:
            if len(self._text_cache) >= TEXT_CACHE_ENTRIES:
                self._text_cache.pop(next(iter(self._text_cache)))
            with torch.no_grad(), models.text_encoding():
                self._text_cache[key] = models.pipe._get_t5_prompt_embeds(
                    prompt=prompt, max_sequence_length=models.max_sequence_length, device=models.device,
                    dtype=models.dtype)
        return self._text_cache[key]

    def conditioning(self, req: RenderRequest, plan: str | None):
        """Light: text tokens (+ understanding tokens: mixed context). Heavy: the raw instruction's text tokens.

        A family whose lumos.json says ``"light_text": "plan"`` gives the light generator the text tokens of the plan
        (the understanding block's, or the user's edit) instead of the instruction's: the block rewrites the prompt
        for the generator it is aligned with, as well as reaching it through the connector. The heavy one keeps the
        raw instruction, as the paper's frozen G_H does.
        """
        import torch

        from .sampler import Conditioning

        models = self._require()
        family_conditioning = getattr(models.understanding, "conditioning", None)
        if family_conditioning is not None:  # a released system assembles its own contexts (engine/nexus/block.py)
            return family_conditioning(self, req, plan)
        negative = req.negative_prompt or ""
        text, text_neg = self._text(req.prompt), self._text(negative)
        from .planner import heavy_reads_plan

        light_reads = self.light_reads_plan(req, plan)
        light_text = self._text(plan) if light_reads else text
        heavy_text = light_text if heavy_reads_plan(models, light_reads) else text
        light_cond, light_uncond = light_text, text_neg
        if models.understanding is not None:
            with torch.no_grad():
                # an empty plan conditions on the instruction alone (None would let the block write one)
                ctx = models.understanding.context(req.prompt, plan if req.use_plan else "")
                ctx_neg = models.understanding.context(negative)
            light_cond = torch.cat([light_text, ctx.to(text.device, text.dtype)], dim=1)
            light_uncond = torch.cat([text_neg, ctx_neg.to(text.device, text.dtype)], dim=1)
        return Conditioning(
            light_cond=light_cond.to(models.light.dtype),
            light_uncond=light_uncond.to(models.light.dtype) if req.guidance_light > 1.0 else None,
            heavy_cond=heavy_text.to(models.heavy.dtype),
            heavy_uncond=text_neg.to(models.heavy.dtype) if req.guidance_heavy > 1.0 else None,
        )

    def prompt_read_in_full(self, req: RenderRequest) -> bool:
        """Whether a prompt longer than the text encoder's window is still understood whole: the understanding block
        (or the pair's planner) reads all of it and the light generator reads the plan it writes, so only the heavy
        generator's text tokens (the first window of the prompt, as the pipeline cuts it) lose the rest. Plain
        phrasing spelt out in a small world tokenizer runs past 80 tokens easily; refusing it would refuse people."""
        from .planner import planner_of

        models = self._require()
        reads_plan = (models.defaults.get("light_text") == "plan" and models.understanding is not None
                      or planner_of(models) is not None)
        return reads_plan and req.use_plan and (req.plan is None or bool(req.plan.strip()))

    def prompt_cut_for_heavy(self, req: RenderRequest) -> int | None:
        """The prompt's length in the text encoder's tokens when the heavy generator reads only its first window
        (the take's metadata says so), else None."""
        models = self._require()
        count = len(models.tokenizer(req.prompt, add_special_tokens=True).input_ids) if req.prompt else 0
        return count if count > models.max_sequence_length else None

    def light_reads_plan(self, req: RenderRequest, plan: str | None) -> bool:
        """Whether the light generator's text tokens are the plan's (see `conditioning`): a family that says so, or a
        pair with a planner (engine/planner.py)."""
        from .planner import planner_of

        models = self._require()
        reads = (models.defaults.get("light_text") == "plan" and models.understanding is not None
                 or planner_of(models) is not None)
        return reads and req.use_plan and bool(plan and plan.strip())

    def resolve_plan(self, req: RenderRequest, cancel_flag=None) -> str | None:
        """The plan the light generator is conditioned on (None without an understanding block or a planner, or
        without use_plan); the request's own plan (the user's edit) is used as is."""
        from .planner import planner_of

        models = self._require()
        if (models.understanding is None and planner_of(models) is None) or not req.use_plan:
            return None
        return req.plan if req.plan is not None else self.plan(req.prompt, cancel_flag)
