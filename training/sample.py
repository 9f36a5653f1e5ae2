"""A minimal reference sampler for a lumos-mini family folder (light only / heavy only), used to evaluate training.

It implements the family's conditioning contract on its own (text embeds as WanPipeline.encode_prompt, of the plan
for light when lumos.json says "light_text": "plan"; light gets the understanding block's context appended; CFG ``v_u + g·(v_c − v_u)``; UniPC flow steps; decode with the
VAE after un-normalising with latents_mean / latents_std), so training can be checked before and independently of
the engine. The app and the bench generate through `engine.api`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch


class MiniFamily:
    def __init__(self, folder: str | Path):
        from diffusers import AutoencoderKLWan, UniPCMultistepScheduler
        from transformers import AutoTokenizer, UMT5EncoderModel

        from engine.positional_transformer import load_transformer
        from engine.understanding import UnderstandingBlock

        folder = Path(folder)
        self.folder = folder
        self.cfg = json.loads((folder / "lumos.json").read_text())
        light = folder / "light"
        self.tok = AutoTokenizer.from_pretrained(light / "tokenizer", local_files_only=True)
        self.text_encoder = UMT5EncoderModel.from_pretrained(light / "text_encoder", local_files_only=True).eval()
        self.vae = AutoencoderKLWan.from_pretrained(light / "vae").eval()
        self.light = load_transformer(light / "transformer").eval()
        self.heavy = load_transformer(folder / "heavy" / "transformer").eval()
        self.scheduler_config = UniPCMultistepScheduler.load_config(light / "scheduler")
        self.understanding = UnderstandingBlock.from_pretrained(folder / "understanding")

    @torch.no_grad()
    def text_embeds(self, texts: list[str]) -> torch.Tensor:
        from .stage_gen import encode_texts

        return encode_texts(self.tok, self.text_encoder, texts, self.cfg["max_sequence_length"])

    def scheduler(self):
        from diffusers import UniPCMultistepScheduler

        return UniPCMultistepScheduler.from_config(self.scheduler_config)

    @torch.no_grad()
    def generate(self, instructions: list[str], mode: str = "light", seeds: list[int] | None = None,
                 steps: int | None = None, guidance: float | None = None, plans: list[str] | None = None,
                 ) -> np.ndarray:
        """uint8 clips [B, F, H, W, 3] for a batch of instructions, light only or heavy only."""
        b = len(instructions)
        steps = steps or self.cfg["steps"]
        g = guidance if guidance is not None else self.cfg["guidance_" + mode]
        seeds = seeds if seeds is not None else list(range(b))
        texts = instructions
        if mode == "light":
            plans = plans or [self.understanding.plan(i) for i in instructions]
            if self.cfg.get("light_text") == "plan":  # the family's light reads the plan's text tokens
                texts = [p if p.strip() else i for i, p in zip(instructions, plans)]
        te_c = self.text_embeds(texts)
        te_u = self.text_embeds([""] * b)
        if mode == "light":
            cc = torch.cat([self.understanding.context(i, p) for i, p in zip(instructions, plans)])
            cu = self.understanding.context("", "").expand(b, -1, -1)
            te_c, te_u = torch.cat([te_c, cc], 1), torch.cat([te_u, cu], 1)
            model = self.light
        else:
            model = self.heavy
        vc = self.vae.config  # the family's own factors (an older family may be 8×)
        f = (self.cfg["num_frames"] - 1) // int(vc.scale_factor_temporal) + 1
        spatial = int(vc.scale_factor_spatial)
        shape = (int(vc.z_dim), f, self.cfg["height"] // spatial, self.cfg["width"] // spatial)
        x = torch.stack([torch.randn(shape, generator=torch.Generator().manual_seed(int(s))) for s in seeds])
        sch = self.scheduler()
        sch.set_timesteps(steps)
        ctx = torch.cat([te_u, te_c])
        for t in sch.timesteps:
            v = model(hidden_states=torch.cat([x, x]), timestep=t.expand(2 * b), encoder_hidden_states=ctx,
                      return_dict=False)[0]
            vu, vc = v.chunk(2)
            x = sch.step(vu + g * (vc - vu), t, x, return_dict=False)[0]
        return self.decode(x)

    @torch.no_grad()
    def decode(self, x: torch.Tensor) -> np.ndarray:
        mean = torch.tensor(self.vae.config.latents_mean).view(1, -1, 1, 1, 1)
        std = torch.tensor(self.vae.config.latents_std).view(1, -1, 1, 1, 1)
        from .stage_vae import to_uint8

        return to_uint8(self.vae.decode(x * std + mean).sample)
