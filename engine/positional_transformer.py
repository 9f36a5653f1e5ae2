"""A WanTransformer3DModel whose video tokens also know where they are.

Wan's only position signal is RoPE inside self-attention, which is relative: at the first denoising steps the
latent is pure noise, so a token cannot tell the top-left corner from the centre, and a prompt's "at the top right"
has nothing to attach to. Large Wan checkpoints learn a weak sense of place from the edges of the token grid over
long training; the mini family's few-million-parameter generators, trained for an hour on a CPU, do not (measured:
shapes in the named colours at random places). This subclass adds a learned, factorised absolute position embedding
(time + height + width, like DiT's absolute embedding) to the patch embedding. Everything else — blocks, RoPE,
conditioning, weights layout, ``from_pretrained``/``save_pretrained`` — is Wan's; real Wan checkpoints keep loading
as plain ``WanTransformer3DModel`` (see ``load_transformer``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import WanTransformer3DModel
from diffusers.configuration_utils import register_to_config
from torch import nn


class PatchEmbeddingWithPositions(nn.Conv3d):
    """Wan's patchifying Conv3d plus learned per-time, per-row and per-column offsets (grid in token units).
    Keeps the Conv3d's parameter names, so the rest of the state dict is Wan's."""

    def __init__(self, in_channels: int, dim: int, patch_size: tuple[int, int, int], grid: tuple[int, int, int]):
        super().__init__(in_channels, dim, kernel_size=patch_size, stride=patch_size)
        self.position_t = nn.Parameter(torch.randn(dim, grid[0]) * 0.02)
        self.position_h = nn.Parameter(torch.randn(dim, grid[1]) * 0.02)
        self.position_w = nn.Parameter(torch.randn(dim, grid[2]) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        t, h, w = y.shape[2:]
        if t > self.position_t.shape[1] or h > self.position_h.shape[1] or w > self.position_w.shape[1]:
            raise ValueError(f"token grid {t}×{h}×{w} exceeds the model's position grid "
                             f"{self.position_t.shape[1]}×{self.position_h.shape[1]}×{self.position_w.shape[1]}")
        pos = (self.position_t[:, :t, None, None] + self.position_h[:, None, :h, None]
               + self.position_w[:, None, None, :w])
        return y + pos.to(y.dtype)


class PositionalWanTransformer3DModel(WanTransformer3DModel):
    """``WanTransformer3DModel`` + absolute position embedding; ``position_grid`` is the largest token grid
    (latent frames / patch_t, latent height / patch_h, latent width / patch_w) it accepts."""

    @register_to_config
    def __init__(self, patch_size: tuple[int, ...] = (1, 2, 2), num_attention_heads: int = 40,
                 attention_head_dim: int = 128, in_channels: int = 16, out_channels: int = 16, text_dim: int = 4096,
                 freq_dim: int = 256, ffn_dim: int = 13824, num_layers: int = 40, cross_attn_norm: bool = True,
                 qk_norm: str | None = "rms_norm_across_heads", eps: float = 1e-6, image_dim: int | None = None,
                 added_kv_proj_dim: int | None = None, rope_max_seq_len: int = 1024,
                 pos_embed_seq_len: int | None = None, position_grid: tuple[int, int, int] = (8, 16, 16)) -> None:
        super().__init__(patch_size=patch_size, num_attention_heads=num_attention_heads,
                         attention_head_dim=attention_head_dim, in_channels=in_channels, out_channels=out_channels,
                         text_dim=text_dim, freq_dim=freq_dim, ffn_dim=ffn_dim, num_layers=num_layers,
                         cross_attn_norm=cross_attn_norm, qk_norm=qk_norm, eps=eps, image_dim=image_dim,
                         added_kv_proj_dim=added_kv_proj_dim, rope_max_seq_len=rope_max_seq_len,
                         pos_embed_seq_len=pos_embed_seq_len)
        self.patch_embedding = PatchEmbeddingWithPositions(in_channels, num_attention_heads * attention_head_dim,
                                                           tuple(patch_size), tuple(position_grid))


TRANSFORMER_CLASSES = {cls.__name__: cls for cls in (WanTransformer3DModel, PositionalWanTransformer3DModel)}


def transformer_class(folder: str | Path) -> type[WanTransformer3DModel]:
    """The class a diffusers transformer folder was saved from (its config's ``_class_name``); Wan's by default."""
    cfg = Path(folder) / "config.json"
    name = json.loads(cfg.read_text()).get("_class_name") if cfg.exists() else None
    if name is not None and name not in TRANSFORMER_CLASSES:
        raise ValueError(f"{folder}: transformer class {name!r} is not one Lumos can run "
                         f"(expected one of {', '.join(TRANSFORMER_CLASSES)})")
    return TRANSFORMER_CLASSES.get(name, WanTransformer3DModel)


def load_transformer(folder: str | Path, **kwargs) -> WanTransformer3DModel:
    """``from_pretrained`` with the right class for the folder (plain Wan, or Wan with absolute positions)."""
    return transformer_class(folder).from_pretrained(folder, **kwargs)
