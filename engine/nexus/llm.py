"""VILA's language model, loaded with transformers, and the one prompt the release gives it.

The release's VILA checkpoint (``ar_model/checkpoint``) keeps its LLM as a plain transformers folder, ``llm/``
(config.json, weights, tokenizer; VILA's loader builds it with AutoModelForCausalLM from there). Text-to-video
passes no image, so VILA's forward is the LLM's forward on the token ids: we load the LLM alone (its decoder
stack, AutoModel: the LM head is never used) and take the last layer's hidden states over every token, as the
release's ``general_emb`` does (``hidden_states[-1]``, after the final norm).

Prompt (omni/modules/vila_ar_model.py ``general_emb`` with task "vid_gen", conversation template ``llama_3``):
the user turn is ``"Generate a video about:\\n" + prompt``, the assistant turn is ``"[GEN_VID]"``. The release
tokenizes the whole text with the tokenizer's own special tokens (so a BOS is added before the template's literal
``<|begin_of_text|>``) and masks every position whose id equals the pad id (the EOS id when there is no pad): with
Llama-3's tokenizer that masks the template's own end-of-turn tokens. We do exactly the same.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import ModelError

SYSTEM = ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful language and vision "
          "assistant. You are able to understand the visual content that the user provides, and assist the user "
          "with a variety of tasks using natural language.")
USER = "<|start_header_id|>user<|end_header_id|>\n\n"
ASSISTANT = "<|start_header_id|>assistant<|end_header_id|>\n\n"
SEP, SEP2 = "<|eot_id|>", "<|end_of_text|>"
PREFIX = "Generate a video about:\n"
ANSWER = "[GEN_VID]"


def prompt_text(prompt: str) -> str:
    """The llama_3 conversation the release builds for a text-to-video prompt."""
    return SYSTEM + SEP + USER + PREFIX + prompt + SEP + ASSISTANT + ANSWER + SEP2


def prompt_inputs(tokenizer, prompt: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids [1, T], attention_mask [1, T]) exactly as the release's general_emb makes them."""
    ids = torch.tensor([tokenizer(prompt_text(prompt)).input_ids], dtype=torch.long)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return ids, ids.ne(pad).long()


def load_llm(folder: Path, dtype):
    """(model, tokenizer) from VILA's llm/ folder, offline; safetensors preferred (transformers reads a .bin only
    with weights_only)."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"cannot read VILA's language model config in {folder}: {exc}") from None
    if getattr(config, "model_type", None) not in ("llama", "mistral", "qwen2"):
        raise ModelError(f"{folder} holds a {getattr(config, 'model_type', '?')} model; the release's VILA LLM is "
                         f"Llama-class")
    from transformers.utils import logging as hf_logging

    safetensors = any(folder.glob("*.safetensors"))
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the decoder stack alone: its report would list the unused LM head
    try:
        model = AutoModel.from_pretrained(folder, local_files_only=True, dtype=dtype, use_safetensors=safetensors)
    finally:
        hf_logging.set_verbosity(level)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return model.requires_grad_(False).eval(), tokenizer


@torch.no_grad()
def last_hidden_states(model, tokenizer, prompt: str) -> torch.Tensor:
    """[1, T, hidden] on the model's device: the release's ``vlm_last_hidden_states`` for `prompt`."""
    ids, mask = prompt_inputs(tokenizer, prompt)
    device = next(model.parameters()).device
    out = model(input_ids=ids.to(device), attention_mask=mask.to(device), output_hidden_states=True)
    return out.hidden_states[-1]
