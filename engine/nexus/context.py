"""The generators' contexts, assembled as the release's VideoMixedConditionModel.forward does (mode "full").

Light (the fine-tuned 1.3B), in T5 space, before its text embedding::

    [<ipl_st>, adapter tokens, <ipl_ed>, <prp_st>, T5 tokens, <prp_ed>]   then zeros up to text_len 2560

The adapter tokens come from VILA's last hidden states through the vision head ([1, 4, 1152]); for video (more than
one latent frame) each of the 4 head tokens goes through the adapter on its own ([4, 1, 1152] → [4, 256, 4096]) and
the results are laid end to end (1024 tokens); for one latent frame only the first head token is used (256 tokens).
T5 tokens are the prompt's real tokens (Wan's T5 wrapper trims the padding). The release's WanModel pads its context
with zeros to ``text_len`` (2560 for the light model, 512 for the heavy one) and attends to all of it, so the zeros
are part of the context; diffusers' transformer does not pad, so we do.
Heavy (the 14B): the T5 tokens only, zero-padded to 512.
Unconditional branch: the release replaces the negative prompt's T5 tokens by the stored ``text_emb`` and VILA's
states by the stored ``vlm_last_hidden_states`` (unconditioned_context/context.pkl), for both generators.
"""

from __future__ import annotations

import torch

LIGHT_TEXT_LEN = 2560
HEAVY_TEXT_LEN = 512
SPECIAL_TOKENS = ("<ipl_st>", "<ipl_ed>", "<prp_st>", "<prp_ed>")


def adapter_tokens(head, adapter, hidden: torch.Tensor, latent_frames: int) -> torch.Tensor:
    """VILA states [B, T, H] → adapter tokens [B, 4·256, D] (video) or [B, 256, D] (one latent frame)."""
    vision = head(hidden)  # [B, Q, 1152]
    if latent_frames == 1:
        return adapter(vision[:, 0:1, :])
    b, q, c = vision.shape
    out = adapter(vision.reshape(b * q, 1, c))  # [B·Q, 256, D]
    return out.reshape(b, q * out.shape[1], out.shape[2])


def light_context(special: dict, tokens: torch.Tensor, t5: torch.Tensor, text_len: int = LIGHT_TEXT_LEN):
    """One sample's light context [text_len, D] from adapter tokens [N, D] and real T5 tokens [L, D]."""
    parts = [special["<ipl_st>"], tokens, special["<ipl_ed>"], special["<prp_st>"], t5, special["<prp_ed>"]]
    dtype = torch.promote_types(tokens.dtype, t5.dtype)
    ctx = torch.cat([p.reshape(-1, tokens.shape[-1]).to(tokens.device, dtype) for p in parts], dim=0)
    return pad_to(ctx[:text_len], text_len)


def pad_to(ctx: torch.Tensor, length: int) -> torch.Tensor:
    """[L, D] → [length, D] with zero rows after the real ones (what Wan's forward does to its context)."""
    if ctx.shape[0] >= length:
        return ctx[:length]
    return torch.cat([ctx, ctx.new_zeros(length - ctx.shape[0], ctx.shape[1])], dim=0)
