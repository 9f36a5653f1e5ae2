"""One command that checks a GPU: the real-size Wan2.1 pair, random weights (none downloaded), bf16, 480p × 81 frames.

    .venv/bin/python bench/gpu_check.py [--width 832 --height 480 --frames 81]

Builds the 1.3B and 14B transformers, umt5-xxl and the VAE from devtools/wan_configs.py directly on the CUDA device
(generators and text encoder in bf16, the VAE in float32 as the app loads it), then times and measures:
- one forward pass of each generator (a CFG step is two of these) and one UPFB step (both generators with CFG and
  the fusion, engine.sampler.guided_velocity + engine.upfb.fuse_velocities, exactly what the sampler runs),
- the VAE decode of the 480p × 81 latent,
- the measured peak device memory under each memory plan (engine.memory_plan.apply_plan: resident, then balanced,
  then low, each applied on top of the last as loading would) next to the planner's estimate,
- a 14B forward against its FLOP floor: 2·params·tokens (the linears) + 4·tokens²·dim·layers (self-attention) +
  4·tokens·text_tokens·dim·layers (cross-attention), over the card's dense bf16 peak (H100/H200: 989 TFLOP/s;
  another card is flagged and the ratio left out).
Prints one table. Without a CUDA device it refuses: one line, exit status 2. Designed to finish in < 8 minutes on
one H100.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TEXT_TOKENS = 512  # WanPipeline's padded prompt length
BF16_PEAK = {"H100": 989e12, "H200": 989e12, "H800": 989e12, "A100": 312e12, "A800": 312e12, "L40S": 362e12,
             "RTX 4090": 165e12}


def refuse_without_cuda() -> None:
    import torch

    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device found; run this on a machine with an NVIDIA GPU", file=sys.stderr)
        raise SystemExit(2)


def model_dim(config: dict) -> int:
    return int(config["num_attention_heads"]) * int(config["attention_head_dim"])


def latent_tokens(width: int, height: int, frames: int, patch=(1, 2, 2)) -> tuple[tuple[int, int, int], int]:
    """Wan's latent (F, h, w) for a request (8× spatial, 4× temporal VAE) and the generator's tokens per pass."""
    f, h, w = (frames - 1) // 4 + 1, height // 8, width // 8
    return (f, h, w), -(-f // patch[0]) * (h // patch[1]) * (w // patch[2])


def forward_flops(config: dict, params: int, tokens: int, text_tokens: int = TEXT_TOKENS) -> dict:
    """FLOPs of one generator forward pass: {"linear", "self_attention", "cross_attention", "total"}."""
    dim, layers = model_dim(config), int(config["num_layers"])
    out = {"linear": 2 * params * tokens, "self_attention": 4 * tokens * tokens * dim * layers,
           "cross_attention": 4 * tokens * text_tokens * dim * layers}
    out["total"] = sum(out.values())
    return out


def count_params(config: dict) -> int:
    """Parameters of a WanTransformer3DModel built from `config` on the meta device (nothing allocated)."""
    import torch
    from diffusers import WanTransformer3DModel

    with torch.device("meta"):
        model = WanTransformer3DModel(**_clean(config))
    return sum(p.numel() for p in model.parameters())


def bf16_peak(device_name: str) -> float | None:
    for key, peak in BF16_PEAK.items():
        if key.lower() in device_name.lower():
            return peak
    return None


def _clean(config: dict) -> dict:
    return {k: v for k, v in config.items() if not k.startswith("_") and k != "model_type"}


def _build(cls, config: dict, dtype, device):
    import torch

    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = cls(**config)
    finally:
        torch.set_default_dtype(old)
    return model.to(dtype).eval().requires_grad_(False)


def _timed(fn, device):
    import torch

    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda _d: None)
    sync(device)
    t = time.perf_counter()
    out = fn()
    sync(device)
    return out, time.perf_counter() - t


TINY = {  # widths for a CPU smoke run of this script (tests/engine/test_gpu_check.py), not for timing
    "light": {"num_attention_heads": 2, "attention_head_dim": 8, "ffn_dim": 32, "num_layers": 2, "text_dim": 32,
              "freq_dim": 16, "rope_max_seq_len": 64},
    "heavy": {"num_attention_heads": 4, "attention_head_dim": 8, "ffn_dim": 64, "num_layers": 2, "text_dim": 32,
              "freq_dim": 16, "rope_max_seq_len": 64},
    "text_encoder": {"d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 2, "num_heads": 4, "vocab_size": 128},
    "vae": {"base_dim": 4, "dim_mult": [1, 1, 1, 1], "num_res_blocks": 1},
}


def configs(tiny: bool) -> dict:
    """The four configs: the real Wan2.1 ones, or (tiny) the same architecture at toy widths."""
    from devtools.wan_configs import UMT5_XXL_ENCODER, WAN21_1_3B_TRANSFORMER, WAN21_14B_TRANSFORMER, WAN_VAE

    real = {"light": WAN21_1_3B_TRANSFORMER, "heavy": WAN21_14B_TRANSFORMER, "text_encoder": UMT5_XXL_ENCODER,
            "vae": WAN_VAE}
    return {k: {**v, **TINY[k]} if tiny else dict(v) for k, v in real.items()}


class Table:
    """The rows printed at the end (and as they come, on stderr); a failed stage is a row, never a lost table."""

    def __init__(self):
        self.rows: list[tuple[str, str]] = []

    def row(self, what: str, value: str) -> None:
        self.rows.append((what, value))
        print(f"  {what}: {value}", file=sys.stderr, flush=True)

    def failed(self, what: str, exc: BaseException) -> None:
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        self.row(what, f"FAILED: {type(exc).__name__}: {first}")

    def render(self, title: str) -> str:
        width = max(len(a) for a, _ in self.rows)
        lines = [title, f"{'what'.ljust(width)} | result", f"{'-' * width}-+-{'-' * 40}"]
        lines += [f"{a.ljust(width)} | {b}" for a, b in self.rows]
        return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=832)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--frames", type=int, default=81)
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu (with --tiny: a smoke run)")
    parser.add_argument("--tiny", action="store_true", help="toy widths: checks this script, measures nothing real")
    parser.add_argument("--skip-plans", action="store_true", help="leave out the per-plan peak memory rows")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda"):
        refuse_without_cuda()
    elif not args.tiny:
        print("gpu_check: real widths need a CUDA device; use --tiny for a CPU smoke run", file=sys.stderr)
        raise SystemExit(2)

    import torch
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    from engine import memory_plan as mp
    from engine.sampler import guided_velocity
    from engine.upfb import fuse_velocities

    cfg = configs(args.tiny)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    bf16 = torch.bfloat16
    name = torch.cuda.get_device_name(device) if cuda else "CPU"
    started = time.perf_counter()
    table = Table()
    row = table.row

    (f, h, w), tokens = latent_tokens(args.width, args.height, args.frames)
    light = _build(WanTransformer3DModel, _clean(cfg["light"]), bf16, device)
    heavy = _build(WanTransformer3DModel, _clean(cfg["heavy"]), bf16, device)
    te_cfg = UMT5Config(**_clean(cfg["text_encoder"]), pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    text_encoder = _build(UMT5EncoderModel, {"config": te_cfg}, bf16, device)
    vae = _build(AutoencoderKLWan, _clean(cfg["vae"]), torch.float32, device)
    row("built (random init, on the device)", f"{time.perf_counter() - started:.1f} s")
    estimate = mp.estimate(cfg["light"], cfg["heavy"], cfg["text_encoder"], cfg["vae"],
                           width=args.width, height=args.height, num_frames=args.frames, dtype=bf16)

    gen = torch.Generator(device).manual_seed(0)
    latents = torch.randn(1, 16, f, h, w, device=device, generator=gen)
    ids = torch.randint(0, int(cfg["text_encoder"]["vocab_size"]), (2, TEXT_TOKENS), device=device, generator=gen)
    t = torch.tensor([500.0], device=device)
    mean = torch.tensor(cfg["vae"]["latents_mean"], device=device).view(1, 16, 1, 1, 1)
    std = torch.tensor(cfg["vae"]["latents_std"], device=device).view(1, 16, 1, 1, 1)
    state = {}

    @torch.no_grad()
    def encode():
        return text_encoder(input_ids=ids.to(text_encoder.device)).last_hidden_state.to(device, bf16)

    @torch.no_grad()
    def forward(model):
        emb = state["emb"]
        return model(hidden_states=latents.to(bf16), timestep=t, encoder_hidden_states=emb[:1], return_dict=False)[0]

    @torch.no_grad()
    def upfb_step():
        emb = state["emb"]
        v_l = guided_velocity(light, latents, t, emb[:1], emb[1:], 5.0)
        v_h = guided_velocity(heavy, latents, t, emb[:1], emb[1:], 4.0)
        return fuse_velocities(v_l.float(), v_h.float(), 0.5)

    @torch.no_grad()
    def decode():
        return vae.decode(latents.to(vae.dtype) * std + mean, return_dict=False)[0]

    def finite(x, what):
        if not torch.isfinite(x).all():
            raise FloatingPointError(f"{what} is not finite")
        return x

    try:
        state["emb"], dt = _timed(encode, device)
        row(f"text encoder ({_params(text_encoder) / 1e9:.2f} B) encode, 2 × {TEXT_TOKENS} tokens", f"{dt:.2f} s")
    except Exception as exc:  # noqa: BLE001 - without embeddings nothing else can run: the table says why
        table.failed("text encoder encode", exc)
        print(table.render(f"gpu_check on {name}: stopped"))
        return 1
    params = {"light": _params(light), "heavy": _params(heavy)}
    times = {}
    for key, model in (("light", light), ("heavy", heavy)):
        what = f"{key} ({params[key] / 1e9:.2f} B) forward, {tokens} tokens"
        try:
            forward(model)  # warm-up: kernels, cuBLAS workspaces
            out, times[key] = _timed(lambda m=model: finite(forward(m), what), device)
            row(what, f"{times[key]:.2f} s (a CFG step: {2 * times[key]:.2f} s)")
        except Exception as exc:  # noqa: BLE001 - one failed stage is a row of the table
            table.failed(what, exc)
    try:
        _, dt = _timed(lambda: finite(upfb_step(), "UPFB step"), device)
        row("UPFB step (both generators with CFG + fusion)", f"{dt:.2f} s")
    except Exception as exc:  # noqa: BLE001
        table.failed("UPFB step", exc)
    try:
        video, dt = _timed(lambda: finite(decode(), "VAE decode"), device)
        row(f"VAE decode {tuple(video.shape)}", f"{dt:.2f} s")
        del video
    except Exception as exc:  # noqa: BLE001
        table.failed("VAE decode", exc)

    if "heavy" in times:
        flops = forward_flops(cfg["heavy"], params["heavy"], tokens)
        peak = bf16_peak(name)
        achieved = flops["total"] / times["heavy"] / 1e12
        if peak:
            floor = flops["total"] / peak
            row("heavy forward vs its FLOP floor", f"{times['heavy'] / floor:.2f}× ({flops['total'] / 1e15:.3f} "
                f"PFLOP, floor {floor:.3f} s at {peak / 1e12:.0f} TFLOP/s; {achieved:.0f} TFLOP/s achieved)")
        else:
            row("heavy forward vs its FLOP floor", f"FLAG: unknown bf16 peak for {name!r}; {achieved:.1f} TFLOP/s "
                "achieved")

    if not args.skip_plans:
        _plan_rows(table, mp, estimate, device, light, heavy, vae, text_encoder, encode, upfb_step, decode, state)
    row("total", f"{time.perf_counter() - started:.0f} s")
    print(table.render(f"gpu_check on {name}, {args.width}×{args.height} × {args.frames} frames, bf16, "
                       f"random weights{' (tiny widths: a smoke run)' if args.tiny else ''}"))
    return 1 if any(v.startswith("FAILED") for _, v in table.rows) else 0


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _plan_rows(table, mp, estimate, device, light, heavy, vae, text_encoder, encode, upfb_step, decode, state):
    """Peak device memory of encode + one UPFB step + decode under each plan, applied in turn as loading would."""
    import torch

    cuda = device.type == "cuda"
    for plan in mp.PLANS:
        what = f"peak memory, plan {plan} (encode + UPFB step + decode)"
        try:
            if plan == "balanced":
                heavy.to("cpu")  # as loading does: the plan is applied to models in host memory
                mp.apply_plan("balanced", light=light, heavy=heavy, vae=vae, text_encoder=text_encoder,
                              device=device)
            elif plan == "low":  # on top of balanced: the heavy generator is already group-offloaded
                light.to("cpu")
                mp.group_offload(light, device)
                vae.enable_tiling()
            if cuda:
                torch.cuda.synchronize(device)
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            t0 = time.perf_counter()
            state["emb"] = encode() if plan == "resident" else _on_device_encode(text_encoder, encode, device)
            upfb_step()
            video = decode()
            del video
            if cuda:
                torch.cuda.synchronize(device)
                measured = f"{torch.cuda.max_memory_allocated(device) / 1e9:.1f} GB measured"
            else:
                measured = "not measured off CUDA"
            table.row(what, f"{measured}, {estimate.peak(plan) / 1e9:.1f} GB estimated "
                            f"({time.perf_counter() - t0:.1f} s)")
        except Exception as exc:  # noqa: BLE001 - one failed plan is a row of the table, not a lost table
            table.failed(what, exc)
            mp.free_device_memory()


def _on_device_encode(text_encoder, encode, device):
    """The balanced/low plans' prompt encoding: the text encoder visits the device, then goes back to host memory."""
    text_encoder.to(device)
    try:
        return encode()
    finally:
        text_encoder.to("cpu")


if __name__ == "__main__":
    raise SystemExit(main())
