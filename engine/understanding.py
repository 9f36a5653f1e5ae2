"""The understanding block: instruction → readable plan, and the light generator's semantic context.

Mirrors the paper's stage 1: a language model reads the instruction (and the plan), its last hidden states go
through a **connector** — learned queries cross-attending to those states, projected to the generator's text
width — and the result is concatenated after the T5 text tokens of the light generator only ("mixed context").
Our connector may first run bidirectional self-attention over the LM states: a causal LM's state at "top left"
cannot see the colour named after it, and a probe found the LM's states bind a shape's words barely above chance.

Folder layout (``understanding/`` of a family)::

    lm/          a transformers causal LM + its tokenizer (save_pretrained, safetensors); its vocabulary has a
                 ``<plan>`` token that separates instruction and plan
    connector/   config.json + model.safetensors of `Connector`

The LM sees ``instruction <plan> plan </s>``; `plan()` decodes greedily after ``<plan>``, so it is
deterministic; `context()` encodes the given (possibly user-edited) plan, or the decoded one when none is given.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

PLAN_TOKEN = "<plan>"
MAX_PLAN_TOKENS = 128
PLAN_CACHE_ENTRIES = 256


class Connector(nn.Module):
    """Learned queries cross-attending to LM hidden states, projected to the generator's text width.

    Args:
        lm_dim: width of the LM's hidden states.
        text_dim: width of the generator's text tokens (the text encoder's d_model).
        num_queries: number of context tokens produced.
        hidden_dim, num_heads, num_layers: size of the cross-attention stack.
        self_layers: bidirectional self-attention layers over the LM states before the queries read them
            (0: the queries read the projected states directly, as connectors saved before this option).
    Input ``hidden`` [B, T, lm_dim] with optional ``mask`` [B, T] (1 = real token); output [B, num_queries, text_dim].
    """

    def __init__(self, lm_dim: int, text_dim: int, num_queries: int = 16, hidden_dim: int = 128, num_heads: int = 4,
                 num_layers: int = 2, self_layers: int = 0):
        super().__init__()
        self.config = dict(lm_dim=lm_dim, text_dim=text_dim, num_queries=num_queries, hidden_dim=hidden_dim,
                           num_heads=num_heads, num_layers=num_layers, self_layers=self_layers)
        self.queries = nn.Parameter(torch.randn(num_queries, hidden_dim) * 0.02)
        self.in_proj = nn.Sequential(nn.LayerNorm(lm_dim), nn.Linear(lm_dim, hidden_dim))
        layer = nn.TransformerEncoderLayer(hidden_dim, num_heads, 2 * hidden_dim, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = (nn.TransformerEncoder(layer, self_layers, enable_nested_tensor=False) if self_layers
                        else None)
        self.attn_norm = nn.ModuleList([nn.LayerNorm(hidden_dim) for _ in range(num_layers)])
        self.attn = nn.ModuleList([nn.MultiheadAttention(hidden_dim, num_heads, batch_first=True)
                                   for _ in range(num_layers)])
        self.mlp_norm = nn.ModuleList([nn.LayerNorm(hidden_dim) for _ in range(num_layers)])
        self.mlp = nn.ModuleList([nn.Sequential(nn.Linear(hidden_dim, 2 * hidden_dim), nn.GELU(),
                                                nn.Linear(2 * hidden_dim, hidden_dim)) for _ in range(num_layers)])
        self.out = nn.Sequential(nn.LayerNorm(hidden_dim), nn.Linear(hidden_dim, text_dim))

    @property
    def num_queries(self) -> int:
        return self.config["num_queries"]

    @property
    def text_dim(self) -> int:
        return self.config["text_dim"]

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        kv = self.in_proj(hidden)
        q = self.queries.unsqueeze(0).expand(hidden.shape[0], -1, -1)
        pad = None if mask is None else ~mask.bool()
        if self.encoder is not None:
            kv = self.encoder(kv, src_key_padding_mask=pad)
        for norm, attn, mnorm, mlp in zip(self.attn_norm, self.attn, self.mlp_norm, self.mlp):
            q = q + attn(norm(q), kv, kv, key_padding_mask=pad, need_weights=False)[0]
            q = q + mlp(mnorm(q))
        return self.out(q)

    def save_pretrained(self, folder: str | Path) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(self.config, indent=2))
        save_file({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()},
                  str(folder / "model.safetensors"))

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "Connector":
        from safetensors.torch import load_file

        folder = Path(folder)
        cfg = json.loads((folder / "config.json").read_text())
        model = cls(**cfg)
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
        return model.eval()


def lm_input_ids(tokenizer, instruction: str, plan: str | None) -> list[int]:
    """Token ids of ``instruction <plan> plan </s>`` (plan None: the prompt for decoding, ending at <plan>)."""
    ids = tokenizer(instruction.strip(), add_special_tokens=False).input_ids if instruction.strip() else []
    ids = ids + [tokenizer.convert_tokens_to_ids(PLAN_TOKEN)]
    if plan is not None:
        ids = ids + (tokenizer(plan.strip(), add_special_tokens=False).input_ids if plan.strip() else [])
        ids = ids + [tokenizer.eos_token_id]
    return ids


class UnderstandingBlock:
    """Run-time understanding block (see module docstring). Thread-safe: one call at a time."""

    def __init__(self, lm, tokenizer, connector: Connector, device="cpu", dtype=torch.float32):
        self.lm = lm.to(device=device, dtype=dtype).eval()
        self.tokenizer = tokenizer
        self.connector = connector.to(device=device, dtype=dtype).eval()
        self.device = torch.device(device)
        self.dtype = dtype
        self.num_queries = connector.num_queries
        self.text_dim = connector.text_dim
        self._lock = threading.Lock()
        self._plans: dict[str, str] = {}

    @classmethod
    def from_pretrained(cls, folder: str | Path, device="cpu", dtype=torch.float32) -> "UnderstandingBlock":
        """Load ``folder/lm`` and ``folder/connector`` (offline, safetensors only)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = Path(folder)
        for sub in ("lm", "connector"):
            if not (folder / sub).is_dir():
                raise FileNotFoundError(f"understanding block folder {folder} has no {sub}/")
        tok = AutoTokenizer.from_pretrained(folder / "lm", local_files_only=True)
        lm = AutoModelForCausalLM.from_pretrained(folder / "lm", local_files_only=True, use_safetensors=True,
                                                  dtype=dtype)
        return cls(lm, tok, Connector.from_pretrained(folder / "connector"), device=device, dtype=dtype)

    @torch.no_grad()
    def plan(self, instruction: str) -> str:
        """Greedy, deterministic plan (the explicit description) for an instruction; "" for an empty one."""
        instruction = instruction.strip()
        if not instruction:
            return ""
        with self._lock:
            if instruction in self._plans:
                return self._plans[instruction]
            ids = torch.tensor([lm_input_ids(self.tokenizer, instruction, None)], device=self.device)
            out = self.lm.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=MAX_PLAN_TOKENS,
                                   do_sample=False, eos_token_id=self.tokenizer.eos_token_id,
                                   pad_token_id=self.tokenizer.pad_token_id)
            text = self.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
            if len(self._plans) >= PLAN_CACHE_ENTRIES:
                self._plans.pop(next(iter(self._plans)))
            self._plans[instruction] = text
            return text

    @torch.no_grad()
    def context(self, instruction: str, plan: str | None = None) -> torch.Tensor:
        """Semantic context [1, num_queries, text_dim] on self.device, from ``instruction <plan> plan``.

        plan None: decode it with `plan()` (an empty instruction gets an empty plan, the unconditional context).
        """
        if plan is None:
            plan = self.plan(instruction)
        ids = torch.tensor([lm_input_ids(self.tokenizer, instruction, plan)], device=self.device)
        with self._lock:
            hidden = self.lm(input_ids=ids, output_hidden_states=True).hidden_states[-1]
            return self.connector(hidden.to(self.dtype))
