"""Sizing the release's system with engine/memory_plan.py's estimate, plus the understanding block.

About 31 B parameters: the 14B generator, UMT5-XXL's encoder (5.7 B), VILA's LLM (≈ 8 B), the DM adapter (1.9 B),
the 1.3B generator, the vision head and the VAE. The generators, T5 and VAE are sized by `memory_plan.estimate`
from their converted configs (the light generator's context is 2560 tokens long); the understanding block (LLM +
head + adapter) is on the device in every phase under the resident plan, and, like the text encoder, only while a
new prompt is encoded under balanced and low (the block's results are cached per prompt).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..memory_plan import ComponentSize, MemoryEstimate, _dtype_size, estimate
from .context import LIGHT_TEXT_LEN


@dataclass(frozen=True)
class NexusEstimate(MemoryEstimate):
    understanding: ComponentSize = ComponentSize(0, 0)
    understanding_activation: int = 0

    def phases(self, plan: str) -> dict:
        out = dict(super().phases(plan))
        block = self.understanding.bytes
        if plan == "resident":
            out = {k: v + block for k, v in out.items()}
            out["encode"] += self.understanding_activation
        else:
            out["encode"] += block + self.understanding_activation
        return out

    @property
    def weights_bytes(self) -> int:
        return super().weights_bytes + self.understanding.bytes

    def to_dict(self) -> dict:
        out = super().to_dict()
        out["params"]["understanding"] = self.understanding.params
        out["weights_bytes"]["understanding"] = self.understanding.bytes
        return out


def llm_params(config: dict) -> int:
    """A Llama-class decoder stack's parameters from its config (no LM head: the block never uses it)."""
    d, ff, layers = int(config["hidden_size"]), int(config["intermediate_size"]), int(config["num_hidden_layers"])
    heads = int(config["num_attention_heads"])
    kv = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or d // heads)
    attn = d * heads * head_dim * 2 + d * kv * head_dim * 2
    return int(config["vocab_size"]) * d + layers * (attn + 3 * d * ff + 2 * d) + d


def nexus_estimate(light_cfg, heavy_cfg, t5_cfg, vae_cfg, llm_cfg, connector_params: int, *, width, height,
                   num_frames, dtype, lm_dtype) -> NexusEstimate:
    base = estimate(light_cfg, heavy_cfg, t5_cfg, vae_cfg, width=width, height=height, num_frames=num_frames,
                    dtype=dtype, text_tokens=LIGHT_TEXT_LEN)
    lm = llm_params(llm_cfg)
    size = lm * _dtype_size(lm_dtype) + connector_params * _dtype_size(dtype)
    d, ff = int(llm_cfg["hidden_size"]), int(llm_cfg["intermediate_size"])
    tokens = 256  # the template plus a long prompt; one pass, hidden states of every layer kept
    act = tokens * (int(llm_cfg["num_hidden_layers"]) + 4) * d * 2 + tokens * 3 * ff * 2
    fields = {f: getattr(base, f) for f in MemoryEstimate.__dataclass_fields__}
    return NexusEstimate(**fields, understanding=ComponentSize(lm + connector_params, size),
                         understanding_activation=act)
