"""The release's vision head: VILA's last hidden states → a few tokens in SigLIP2's 1152-wide space.

Written here from the release's description (third_party/llava/model/vila_with_vision_head.py, ``VisionHead``);
its state-dict keys are the release's: ``decoder_query`` [1, Q, D], ``fc.0`` / ``fc.2`` (Linear LM→D, GELU,
Linear D→D), ``visionHeadAdapter.*`` (torch's nn.Transformer, batch-first, pre-norm, 8 heads, ffn 4·D, no dropout).
The release builds it with D = 1152, Q = 4 (VideoMixedConditionModel's ``learnable_query_length``) and 4 + 4 layers.
"""

from __future__ import annotations

import torch
from torch import nn

NUM_HEADS = 8  # nn.Transformer's default, which the release keeps


def _layers(state: dict, prefix: str) -> int:
    found = {int(k[len(prefix):].split(".")[0]) for k in state if k.startswith(prefix)}
    return max(found) + 1 if found else 0


class VisionHead(nn.Module):
    def __init__(self, llm_hidden_size: int = 4096, hidden_size: int = 1152, num_queries: int = 4,
                 encoder_layers: int = 4, decoder_layers: int = 4, ffn_dim: int | None = None):
        super().__init__()
        self.decoder_query = nn.Parameter(torch.zeros(1, num_queries, hidden_size))
        self.visionHeadAdapter = nn.Transformer(
            d_model=hidden_size, nhead=NUM_HEADS, num_encoder_layers=encoder_layers,
            num_decoder_layers=decoder_layers, dim_feedforward=ffn_dim or 4 * hidden_size, dropout=0.0,
            batch_first=True, norm_first=True)
        self.fc = nn.Sequential(nn.Linear(llm_hidden_size, hidden_size), nn.GELU(),
                                nn.Linear(hidden_size, hidden_size))

    @classmethod
    def from_state_dict(cls, state: dict) -> "VisionHead":
        """A head shaped by `state` (the release's keys), with `state` loaded strictly."""
        _, q, d = state["decoder_query"].shape
        head = cls(llm_hidden_size=state["fc.0.weight"].shape[1], hidden_size=d, num_queries=q,
                   encoder_layers=_layers(state, "visionHeadAdapter.encoder.layers."),
                   decoder_layers=_layers(state, "visionHeadAdapter.decoder.layers."),
                   ffn_dim=state["visionHeadAdapter.encoder.layers.0.linear1.weight"].shape[0])
        head.load_state_dict(state, strict=True)
        return head.eval()

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """[B, T, LM width] → [B, Q, D]; every position is read (the release passes no mask)."""
        x = self.fc(hidden)
        return self.visionHeadAdapter(src=x, tgt=self.decoder_query.repeat(x.shape[0], 1, 1))
