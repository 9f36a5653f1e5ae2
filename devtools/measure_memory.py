"""Measure the working memory behind engine/memory_plan.py's activation constants, on CPU, with the real configs and
random weights: the peak of live tensor storage bytes while a call runs, counted by a TorchDispatchMode (what the
tensors themselves need, independent of the allocator; RSS on CPU adds oneDNN's buffers).

    python -m devtools.measure_memory vae 128 128 5       # Wan VAE decode at 128x128x5 -> KB per output pixel
    python -m devtools.measure_memory transformer          # per-token bytes of one Wan block, fitted over widths

Measured (2-core CPU, torch 2.13, diffusers 0.42): the VAE decode holds 17.9 KB per output pixel at 64² and 128²
(12-13 s and 45 s); a bf16 block holds ≈ 16·D bytes per token in attention and ≈ 4.1·ffn_dim in the FFN (the real
1.3B width: 33 KB per token).
"""

from __future__ import annotations

import sys
import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class LiveBytes(TorchDispatchMode):
    """Peak bytes of the storages that ops create while the mode is active (weights made before it are not counted)."""

    def __init__(self):
        super().__init__()
        self.live: dict[int, int] = {}
        self.current = self.peak = 0

    def _free(self, key: int) -> None:
        self.current -= self.live.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                storage = t.untyped_storage()
                key = storage.data_ptr()
                if key in self.live or storage.nbytes() == 0:
                    continue
                self.live[key] = storage.nbytes()
                self.current += storage.nbytes()
                self.peak = max(self.peak, self.current)
                weakref.finalize(t, self._free, key)
        return out


def _clean(config: dict) -> dict:
    return {k: v for k, v in config.items() if not k.startswith("_")}


def vae(height: int = 64, width: int = 64, frames: int = 5) -> float:
    """KB per output pixel that AutoencoderKLWan.decode holds at its peak (real config)."""
    from diffusers import AutoencoderKLWan

    from .wan_configs import WAN_VAE

    torch.manual_seed(0)
    model = AutoencoderKLWan.from_config(_clean(WAN_VAE)).eval()
    z = torch.randn(1, 16, (frames - 1) // 4 + 1, height // 8, width // 8)
    with torch.no_grad(), LiveBytes() as meter:
        model.decode(z)
    per_pixel = meter.peak / (height * width) / 1024
    print(f"VAE decode {width}x{height}x{frames}: peak live {meter.peak / 2**20:.1f} MiB, {per_pixel:.1f} KB per pixel")
    return per_pixel


def block_bytes_per_token(heads: int, ffn: int, sides=(16, 48)) -> float:
    """Bytes per token of a one-block Wan transformer (bf16, 128-wide heads): the slope between two token counts,
    so the text context and embeddings cancel."""
    from diffusers import WanTransformer3DModel

    from .wan_configs import WAN21_1_3B_TRANSFORMER

    cfg = {**_clean(WAN21_1_3B_TRANSFORMER), "num_layers": 1, "num_attention_heads": heads, "ffn_dim": ffn}
    torch.manual_seed(0)
    model = WanTransformer3DModel.from_config(cfg).to(torch.bfloat16).eval()
    context = torch.randn(1, 512, cfg["text_dim"], dtype=torch.bfloat16)
    peaks, tokens = [], []
    for side in sides:
        x = torch.randn(1, 16, 3, side, side, dtype=torch.bfloat16)
        with torch.no_grad(), LiveBytes() as meter:
            model(hidden_states=x, timestep=torch.tensor([500.0]), encoder_hidden_states=context, return_dict=False)
        peaks.append(meter.peak)
        tokens.append(3 * side * side // 4)
    return (peaks[1] - peaks[0]) / (tokens[1] - tokens[0])


def transformer() -> None:
    for heads, ffn in ((2, 1024), (2, 4096), (4, 1024), (4, 8192), (12, 8960)):
        dim = heads * 128
        slope = block_bytes_per_token(heads, ffn)
        print(f"D={dim:5d} ffn={ffn:5d}: {slope:7.0f} B/token = {slope / dim:5.2f}·D = {slope / ffn:4.2f}·ffn")


if __name__ == "__main__":
    args = sys.argv[1:] or ["vae"]
    if args[0] == "transformer":
        transformer()
    else:
        vae(*(int(a) for a in args[1:4]))
