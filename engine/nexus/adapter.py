"""The release's DM adapter: one SigLIP2-space token → 256 tokens in the generator's text (T5) space.

Written here from the release's description (omni/modules/adapter.py, ``DM_Adapter``); its state-dict keys are the
release's: ``decoder_query`` [1, 256, 4096], ``fc.0`` / ``fc.2`` (Linear 1152→4096, GELU, Linear 4096→4096),
``adapter.*`` (torch's nn.Transformer d=4096, 8 heads, 4 + 4 layers, ffn 16384, batch-first, pre-norm, no dropout):
about 1.9 B parameters. ``adapter/model.pt`` holds them under ``model_state_dict`` (DDP's ``module.`` stripped).
"""

from __future__ import annotations

import torch
from torch import nn

from .vision_head import NUM_HEADS, _layers


class DMAdapter(nn.Module):
    def __init__(self, in_channels: int = 1152, out_channels: int = 4096, num_queries: int = 256,
                 encoder_layers: int = 4, decoder_layers: int = 4, ffn_dim: int | None = None):
        super().__init__()
        self.decoder_query = nn.Parameter(torch.zeros(1, num_queries, out_channels))
        self.fc = nn.Sequential(nn.Linear(in_channels, out_channels), nn.GELU(),
                                nn.Linear(out_channels, out_channels))
        self.adapter = nn.Transformer(
            d_model=out_channels, nhead=NUM_HEADS, num_encoder_layers=encoder_layers,
            num_decoder_layers=decoder_layers, dim_feedforward=ffn_dim or 4 * out_channels, dropout=0.0,
            batch_first=True, norm_first=True)

    @classmethod
    def from_state_dict(cls, state: dict) -> "DMAdapter":
        _, q, d = state["decoder_query"].shape
        adapter = cls(in_channels=state["fc.0.weight"].shape[1], out_channels=d, num_queries=q,
                      encoder_layers=_layers(state, "adapter.encoder.layers."),
                      decoder_layers=_layers(state, "adapter.decoder.layers."),
                      ffn_dim=state["adapter.encoder.layers.0.linear1.weight"].shape[0])
        adapter.load_state_dict(state, strict=True)
        return adapter.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, N, in] → [B, Q, out]."""
        x = self.fc(x)
        return self.adapter(x, tgt=self.decoder_query.repeat(x.shape[0], 1, 1))
