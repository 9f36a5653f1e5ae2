"""Cheap step previews: the x0 estimate projected to RGB by a linear latent -> RGB map, at latent resolution.

A Wan-style VAE encodes the first frame alone and every later latent frame relative to what came before, so a
later frame's colour is not a function of its own latent alone. The map has two parts: frame 0 -> RGB, and
(frame j, frame 0) -> RGB for j > 0 (lumos-mini, fitted and scored on its own drafts: one shared 16x3 map reaches a
green/blue correlation with the decode of 0.43/0.39; with the first frame as an input 0.92/0.63).

For a VAE other than Wan2.1's (published factors) the map is fitted by least squares against the VAE's own decode of
latents from the distribution the generators produce: a few unconditional clips of the light generator (`samples`).
Encoded smooth colour fields are only the fallback: their latents are far from generated ones. lumos-mini, mean
|preview - decode| on 16 drafts at the last step (0..255): 26.0 for the former single map on colour fields, 20.2 for
this map on colour fields, 12.2 on samples. Fits are cached per model fingerprint, in memory and on disk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

log = logging.getLogger(__name__)

# Wan2.1 VAE, normalised latents -> RGB in [-1, 1] (published with ComfyUI's latent formats, class Wan21).
WAN21_LATENTS_MEAN_HEAD = (-0.7571, -0.7089, -0.9113, 0.1075)
WAN21_RGB_FACTORS = (
    (-0.1299, -0.1692, 0.2932), (0.0671, 0.0406, 0.0442), (0.3568, 0.2548, 0.1747), (0.0372, 0.2344, 0.1420),
    (0.0313, 0.0189, -0.0328), (0.0296, -0.0956, -0.0665), (-0.3477, -0.4059, -0.2925), (0.0166, 0.1902, 0.1975),
    (-0.0412, 0.0267, -0.1364), (-0.1293, 0.0740, 0.1636), (0.0680, 0.3019, 0.1128), (0.0032, 0.0581, 0.0639),
    (-0.1251, 0.0927, 0.1699), (0.0060, -0.0633, 0.0005), (0.3477, 0.2275, 0.2950), (0.1984, 0.0913, 0.1861),
)
WAN21_RGB_BIAS = (-0.1835, -0.0868, -0.3360)

FIT_VERSION = 2  # part of the cache key: bump when the fit or its inputs change
# Ridge, relative to the mean feature energy. Early steps' x0 estimates lie beyond the calibration clips (larger
# amplitudes), where an unregularised fit extrapolates badly: lumos-mini step 5/20 error 20.8 at 1e-4, 16.4 at 3e-3,
# last step unchanged (12.2-12.5) from 1e-4 to 1e-2.
RIDGE = 3e-3
_MEMORY: dict[str, "LatentPreviewer"] = {}


class LatentPreviewer:
    """Maps normalised latents [1, C, F, h, w] to uint8 RGB frames [F, h, w, 3] with a few small matmuls.

    factors [C, 3], bias [3]: the later latent frames (and frame 0 unless `first` is given).
    first: (factors [C, 3], bias [3]) for latent frame 0. anchor [C, 3]: the later frames' weight on frame 0's
    latent (None: zero, as for Wan2.1's published factors).
    """

    def __init__(self, factors: torch.Tensor, bias: torch.Tensor, source: str,
                 first: tuple[torch.Tensor, torch.Tensor] | None = None, anchor: torch.Tensor | None = None):
        self.factors = factors.float()
        self.bias = bias.float()
        self.first = (self.factors, self.bias) if first is None else (first[0].float(), first[1].float())
        self.anchor = torch.zeros_like(self.factors) if anchor is None else anchor.float()
        self.source = source

    def __call__(self, latents: torch.Tensor) -> np.ndarray:
        x = latents[0].float()  # [C, F, h, w]
        c, f, h, w = x.shape
        dev = x.device
        flat = x.permute(1, 2, 3, 0).reshape(f, h * w, c)
        rgb = torch.empty(f, h * w, 3, device=dev)
        torch.addmm(self.first[1].to(dev), flat[0], self.first[0].to(dev), out=rgb[0])
        if f > 1:
            # (anchor term + bias) once, then one batched matmul for every later frame
            base = torch.addmm(self.bias.to(dev), flat[0], self.anchor.to(dev))
            torch.baddbmm(base.expand(f - 1, -1, -1), flat[1:], self.factors.to(dev).expand(f - 1, -1, -1),
                          out=rgb[1:])
        rgb = ((rgb.view(f, h, w, 3) + 1.0) * 127.5).clamp_(0, 255).round_().to(torch.uint8)
        return np.ascontiguousarray(rgb.cpu().numpy())

    # -- construction ----------------------------------------------------------------------------------
    @classmethod
    def for_vae(cls, vae, samples: Callable[[], torch.Tensor] | None = None, modules: tuple = (),
                cache_dir: str | Path | None = "default") -> "LatentPreviewer":
        """Published factors for the Wan2.1 VAE; otherwise a least-squares fit against this VAE's decode.

        samples: returns normalised latents [N, C, F, h, w] like those the generators produce (the runtime samples
            its light generator); None fits on encoded colour fields instead. modules: whatever `samples` depends
            on (generators, text encoder), for the cache key. cache_dir: "default" (the user cache folder), a
            folder, or None for no disk cache.
        """
        cfg = vae.config
        mean = list(cfg.latents_mean or [])
        if cfg.z_dim == 16 and len(mean) == 16 and np.allclose(mean[:4], WAN21_LATENTS_MEAN_HEAD, atol=1e-3):
            return cls(torch.tensor(WAN21_RGB_FACTORS), torch.tensor(WAN21_RGB_BIAS), "wan2.1 published factors")
        key = fingerprint(vae, *(modules if samples is not None else ()),
                          extra=f"v{FIT_VERSION}-{'samples' if samples is not None else 'encoded'}")
        if key in _MEMORY:
            return _MEMORY[key]
        folder = default_cache_dir() if cache_dir == "default" else (Path(cache_dir) if cache_dir else None)
        path = folder / f"preview-{key}.json" if folder is not None else None
        previewer = cls._read(path, int(cfg.z_dim)) if path is not None else None
        if previewer is None:
            latents = None
            if samples is not None:
                try:
                    latents = samples()
                except Exception as exc:  # a preview must never stop models from loading
                    log.warning("preview calibration samples failed (%s); fitting on encoded colour fields", exc)
            previewer = cls.fit(vae, latents)
            if path is not None:
                previewer._write(path)
        _MEMORY[key] = previewer
        return previewer

    @classmethod
    @torch.no_grad()
    def fit(cls, vae, latents: torch.Tensor | None = None, seed: int = 0) -> "LatentPreviewer":
        """Least squares from normalised latents [N, C, F, h, w] to their VAE decode, area-averaged to latent
        resolution (a later latent frame's target is the mean of the pixel frames it decodes to).

        latents None: encode still clips of smooth random colour fields (1 + 2 * temporal-factor frames) instead.
        """
        device = next(vae.parameters()).device
        scale, tf = int(vae.config.scale_factor_spatial), int(vae.config.scale_factor_temporal)
        mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
        std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
        source = "least-squares fit on generated clips"
        if latents is None:
            source = "least-squares fit"
            gen = torch.Generator().manual_seed(seed)
            coarse = torch.rand(12, 3, 4, 4, generator=gen) * 2 - 1
            images = torch.nn.functional.interpolate(coarse, size=(64, 64), mode="bicubic",
                                                     align_corners=False).clamp(-1, 1).unsqueeze(2)
            clips = images.expand(-1, -1, 1 + 2 * tf, -1, -1).contiguous()
            z = vae.encode(clips.to(device, vae.dtype)).latent_dist.mode().float().cpu()
            latents = (z - mean) / std
        z = latents.float().cpu()
        # decode in chunks: the clips' own pixels, exactly as the final decode shows them
        video = torch.cat([vae.decode((c * std + mean).to(device, vae.dtype), return_dict=False)[0].float().cpu()
                           for c in z.split(8)]).clamp(-1, 1)  # [N, 3, T, H, W]
        n, _, frames, h, w = z.shape
        pooled = torch.nn.functional.avg_pool3d(video, (1, scale, scale))  # [N, 3, T, h, w]
        groups = [pooled[:, :, :1].mean(2)] + [pooled[:, :, 1 + tf * (j - 1): 1 + tf * j].mean(2)
                                               for j in range(1, frames)]
        target = torch.stack(groups, 2)  # [N, 3, F, h, w]

        def rows(t):  # [N, D, h, w] -> [N*h*w, D]
            return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1])

        ones = torch.ones(n * h * w, 1)
        w0 = _ridge(torch.cat([rows(z[:, :, 0]), ones], 1), rows(target[:, :, 0]))
        if frames == 1:
            return cls(w0[:-1], w0[-1], source)
        later = torch.cat([torch.cat([rows(z[:, :, j]), rows(z[:, :, 0]), ones], 1) for j in range(1, frames)])
        wl = _ridge(later, torch.cat([rows(target[:, :, j]) for j in range(1, frames)]))
        c = z.shape[1]
        return cls(wl[:c], wl[-1], source, first=(w0[:-1], w0[-1]), anchor=wl[c:2 * c])

    # -- disk cache ------------------------------------------------------------------------------------
    def _write(self, path: Path) -> None:
        from .atomic_files import atomic_write_json

        data = {"source": self.source, "factors": self.factors.tolist(), "bias": self.bias.tolist(),
                "first": [t.tolist() for t in self.first], "anchor": self.anchor.tolist()}
        try:
            atomic_write_json(path, data, indent=None)
        except OSError as exc:
            log.warning("could not cache the preview map in %s: %s", path, exc)

    @classmethod
    def _read(cls, path: Path, channels: int) -> "LatentPreviewer | None":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            t = torch.tensor
            p = cls(t(data["factors"]), t(data["bias"]), data["source"] + " (cached)",
                    first=(t(data["first"][0]), t(data["first"][1])), anchor=t(data["anchor"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            log.warning("ignoring an unreadable preview cache %s: %s", path, exc)
            return None
        if any(m.shape != (channels, 3) for m in (p.factors, p.first[0], p.anchor)) or any(
                b.shape != (3,) for b in (p.bias, p.first[1])):
            return None
        return p


def _ridge(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    a = x.double()
    gram = a.T @ a
    gram += RIDGE * gram.diagonal().mean() * torch.eye(a.shape[1], dtype=torch.float64)
    return torch.linalg.solve(gram, a.T @ y.double()).float()


def fingerprint(*modules, extra: str = "") -> str:
    """A cheap identity for models: class, config and a strided sample of every weight (not a full hash: a few ms
    even for large models, and a retrained model changes its sampled values)."""
    h = hashlib.sha256(extra.encode())
    for m in modules:
        h.update(type(m).__name__.encode())
        cfg = getattr(m, "config", None)
        if cfg is not None:
            cfg = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
            h.update(json.dumps(cfg, sort_keys=True, default=str).encode())
        for name, t in m.state_dict().items() if hasattr(m, "state_dict") else ():
            flat = t.detach().reshape(-1)
            sample = flat[:: max(1, flat.numel() // 64)][:64].float().cpu().numpy()
            h.update(f"{name}{tuple(t.shape)}".encode() + sample.tobytes())
    return h.hexdigest()[:24]


def default_cache_dir() -> Path | None:
    """<LUMOS_STUDIO_HOME>/cache/previews, else the platform's user cache folder; None when neither is known."""
    home = os.environ.get("LUMOS_STUDIO_HOME")
    if home:
        return Path(home) / "cache" / "previews"
    try:
        import platformdirs
    except ImportError:
        return None
    return Path(platformdirs.user_cache_dir("LumosStudio", False)) / "previews"
