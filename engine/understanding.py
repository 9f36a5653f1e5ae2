"""The understanding block: instruction → readable plan, and the light generator's semantic context.

Mirrors the paper's stage 1: a language model reads the instruction (and the plan), its last hidden states go
through a **connector** — learned queries cross-attending to those states, projected to the generator's text
width — and the result is concatenated after the T5 text tokens of the light generator only ("mixed context").
Our connector may first run bidirectional self-attention over the LM states: a causal LM's state at "top left"
cannot see the colour named after it, and a probe found the LM's states bind a shape's words barely above chance.

Folder layout (``understanding/`` of a family)::

    lm/          a transformers causal or encoder-decoder LM + its tokenizer (save_pretrained, safetensors);
                 its vocabulary has a ``<plan>`` token that separates instruction and plan (causal LMs use it)
    connector/   config.json + model.safetensors of `Connector`

The LM is either a causal LM that sees ``instruction <plan> plan </s>`` and decodes after ``<plan>``, or an
encoder-decoder (seq2seq) LM whose encoder reads ``instruction </s>`` whole, in both directions, and whose decoder
writes the plan; the connector then reads the encoder's states followed by the decoder's. `plan()` decodes
greedily, so it is deterministic, under the family's plan grammar when it ships one (engine/plan_grammar.py: the
plan then always parses); `context()` encodes the given (possibly user-edited) plan, or the decoded one when none is
given.
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


def lm_input_ids(tokenizer, instruction: str, plan: str | None, readings: int = 1) -> list[int]:
    """Token ids of ``instruction <plan> plan </s>`` (plan None: the prompt for decoding, ending at <plan>).

    ``readings`` 2 gives ``instruction </s> instruction <plan> …``: in its second reading a causal LM sees every
    token of the instruction from every token of it, as an encoder would (a shape's words can already carry that
    the closing "every shape that is not yellow …" excludes it), and still copies the layout with exact positions.
    """
    words = _words(tokenizer, instruction)
    ids = (words + [tokenizer.eos_token_id]) * (readings - 1) + words if words else []
    ids = ids + [tokenizer.convert_tokens_to_ids(PLAN_TOKEN)]
    return ids + _words(tokenizer, plan) + [tokenizer.eos_token_id] if plan is not None else ids


def instruction_readings(lm) -> int:
    """How many times ``lm`` reads the instruction before writing the plan (its config's
    ``instruction_readings``; LMs saved before that setting read it once)."""
    return int(getattr(lm.config, "instruction_readings", 1))


def load_lm(folder: str | Path, dtype=torch.float32):
    """The understanding LM saved in ``folder`` (offline, safetensors), causal or encoder-decoder by its config."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    seq2seq = getattr(AutoConfig.from_pretrained(folder, local_files_only=True), "is_encoder_decoder", False)
    kind = AutoModelForSeq2SeqLM if seq2seq else AutoModelForCausalLM
    return kind.from_pretrained(folder, local_files_only=True, use_safetensors=True, dtype=dtype)


def is_seq2seq(lm) -> bool:
    """True for an encoder-decoder LM (its encoder reads the instruction whole before the decoder writes)."""
    return bool(getattr(lm.config, "is_encoder_decoder", False))


def _words(tokenizer, text: str) -> list[int]:
    return tokenizer(text.strip(), add_special_tokens=False).input_ids if text.strip() else []


def seq2seq_ids(tokenizer, instruction: str, plan: str | None, decoder_start: int) -> tuple[list[int], list[int]]:
    """Encoder ids ``instruction </s>`` and decoder inputs ``<start> plan </s>`` (plan None: ``<start>`` only)."""
    dec = [decoder_start] + (_words(tokenizer, plan) + [tokenizer.eos_token_id] if plan is not None else [])
    return _words(tokenizer, instruction) + [tokenizer.eos_token_id], dec


def right_pad(rows: list, pad: float = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack id lists (or [T, D] tensors) padded on the right, with a mask (1 = real position)."""
    rows = [r if isinstance(r, torch.Tensor) else torch.tensor(r, dtype=torch.long) for r in rows]
    n = max(len(r) for r in rows)
    out = rows[0].new_full((len(rows), n, *rows[0].shape[1:]), pad)
    mask = torch.zeros((len(rows), n), dtype=torch.long, device=rows[0].device)
    for k, r in enumerate(rows):
        out[k, : len(r)], mask[k, : len(r)] = r, 1
    return out, mask


@torch.no_grad()
def decode_plan(lm, tokenizer, instruction: str, max_new_tokens: int = MAX_PLAN_TOKENS, grammar=None) -> str:
    """Greedy plan for one instruction, for either kind of LM.

    grammar: a `engine.plan_grammar.PlanGrammar` (the family's, when it ships one): the LM may then only write text
    that stays a valid plan naming every shape the instruction names, and a plan cut off by max_new_tokens is
    finished the simplest way, so the result always parses. None: the LM writes freely."""
    if is_seq2seq(lm):
        enc, _ = seq2seq_ids(tokenizer, instruction, None, lm.config.decoder_start_token_id)
        ids = torch.tensor([enc], device=lm.device)
        start = 0  # generate returns the decoder's sequence alone, led by the start token (a special token)
        prompt_len = 1
    else:
        ids = torch.tensor([lm_input_ids(tokenizer, instruction, None, instruction_readings(lm))], device=lm.device)
        start = prompt_len = ids.shape[1]
    processors = None
    if grammar is not None:
        from transformers import LogitsProcessorList

        from .plan_grammar import PlanLogitsProcessor

        constrain = PlanLogitsProcessor(grammar.walker(instruction), tokenizer, prompt_len)
        processors = LogitsProcessorList([constrain])
    out = lm.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens, do_sample=False,
                      eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                      logits_processor=processors)
    if grammar is None:
        return tokenizer.decode(out[0, start:], skip_special_tokens=True).strip()
    generated = [t for t in out[0, prompt_len:].tolist() if t != tokenizer.eos_token_id]
    text = " " + constrain.text(generated) if generated else ""
    return constrain.walker.restate(constrain.walker.complete(text).strip())


@torch.no_grad()
def lm_hidden_states(lm, tokenizer, pairs: list[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Last-layer states over (instruction, plan) pairs, right-padded, with their mask [B, T] (1 = real token).

    Right padding leaves the states of real tokens unchanged, so a row's states do not depend on its batch.
    A seq2seq LM gives its encoder's states over the instruction followed by its decoder's over the plan.
    """
    if not is_seq2seq(lm):
        ids, mask = right_pad([lm_input_ids(tokenizer, i, p, instruction_readings(lm)) for i, p in pairs])
        ids, mask = ids.to(lm.device), mask.to(lm.device)
        return lm(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[-1], mask
    parts = [seq2seq_ids(tokenizer, i, p, lm.config.decoder_start_token_id) for i, p in pairs]
    enc, enc_mask = (t.to(lm.device) for t in right_pad([e for e, _ in parts]))
    dec, dec_mask = (t.to(lm.device) for t in right_pad([d for _, d in parts]))
    out = lm(input_ids=enc, attention_mask=enc_mask, decoder_input_ids=dec, decoder_attention_mask=dec_mask,
             output_hidden_states=True)
    h_enc, h_dec = out.encoder_last_hidden_state, out.decoder_hidden_states[-1]
    return right_pad([torch.cat([h_enc[k, : len(e)], h_dec[k, : len(d)]]) for k, (e, d) in enumerate(parts)])


class UnderstandingBlock:
    """Run-time understanding block (see module docstring). Thread-safe: one call at a time."""

    def __init__(self, lm, tokenizer, connector: Connector, device="cpu", dtype=torch.float32, grammar=None):
        self.grammar = grammar  # the family's plan grammar (engine.plan_grammar), None: plans are not constrained
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
        """Load ``folder/lm`` and ``folder/connector`` (offline, safetensors only), and ``folder/plan_grammar.json``
        when the family ships its plan grammar."""
        from transformers import AutoTokenizer

        from .plan_grammar import PlanGrammar

        folder = Path(folder)
        for sub in ("lm", "connector"):
            if not (folder / sub).is_dir():
                raise FileNotFoundError(f"understanding block folder {folder} has no {sub}/")
        tok = AutoTokenizer.from_pretrained(folder / "lm", local_files_only=True)
        lm = load_lm(folder / "lm", dtype=dtype)
        return cls(lm, tok, Connector.from_pretrained(folder / "connector"), device=device, dtype=dtype,
                   grammar=PlanGrammar.load(folder))

    def count_tokens(self, text: str) -> int:
        """How many LM tokens `text` is (one call at a time: fast tokenizers are not safe across threads)."""
        with self._lock:
            return len(_words(self.tokenizer, text))

    def max_instruction_tokens(self, plan: str | None) -> int | None:
        """The longest instruction (in LM tokens) whose LM input fits the LM's positions, given the plan it is read
        with (None: a plan the LM writes itself, counted at its longest); None when the LM has no such limit."""
        limit = getattr(self.lm.config, "max_position_embeddings", None)
        if is_seq2seq(self.lm) or not limit:
            return None
        readings = instruction_readings(self.lm)
        # instruction (</s> instruction)*  <plan>  plan  </s>
        plan_len = MAX_PLAN_TOKENS + 1 if plan is None else self.count_tokens(plan) + 1
        return max(0, (int(limit) - readings - plan_len) // readings)

    @torch.no_grad()
    def plan(self, instruction: str) -> str:
        """Greedy, deterministic plan (the explicit description) for an instruction; "" for an empty one."""
        instruction = instruction.strip()
        if not instruction:
            return ""
        with self._lock:
            if instruction in self._plans:
                return self._plans[instruction]
            text = decode_plan(self.lm, self.tokenizer, instruction, grammar=self.grammar)
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
        with self._lock:
            hidden, _ = lm_hidden_states(self.lm, self.tokenizer, [(instruction, plan)])
            return self.connector(hidden.to(self.dtype))
