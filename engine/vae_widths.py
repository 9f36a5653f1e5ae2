"""The base widths of a Wan VAE, read from its config: the decoder may be wider than the encoder."""

from __future__ import annotations

from collections.abc import Mapping


def decoder_base_dim(config: Mapping) -> int:
    """The decoder's base width: its own ``decoder_base_dim`` where the config has one (Wan2.2's VAE; lumos-mini's
    decoder stage), else the shared ``base_dim`` (96 when unset, diffusers' default)."""
    return int(config.get("decoder_base_dim") or config.get("base_dim", 96))
