"""The memory planner against the real Wan2.1 configs (meta device, no weights), each plan applied to the tiny
models on CPU (same frames as resident), and out of memory during a render (injected on CPU)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from devtools.wan_configs import UMT5_XXL_ENCODER, WAN21_1_3B_TRANSFORMER, WAN21_14B_TRANSFORMER, WAN_VAE
from engine.memory_plan import PLANS, choose_plan, estimate, fits, next_plan, resolve_plan, vae_decode_bytes

ROOT = Path(__file__).resolve().parents[2]
GiB = 1 << 30
CUDA_CONTEXT = 600 << 20  # what a card's CUDA context takes before torch.cuda.mem_get_info reports free memory


@pytest.fixture(scope="module")
def wan():
    """The Wan2.1 1.3B + 14B pair with umt5-xxl and the Wan VAE, bf16, at 832x480x81."""
    return estimate(WAN21_1_3B_TRANSFORMER, WAN21_14B_TRANSFORMER, UMT5_XXL_ENCODER, WAN_VAE,
                    width=832, height=480, num_frames=81, dtype=torch.bfloat16)


def test_real_wan21_weights_from_configs_on_the_meta_device(wan):
    assert 1.35e9 < wan.light.params < 1.5e9 and 2.7e9 < wan.light.bytes < 3.0e9  # 1.3B: 1.42 G -> 2.84 GB
    assert 13.8e9 < wan.heavy.params < 14.8e9 and 27.5e9 < wan.heavy.bytes < 29.5e9  # 14B: 14.29 G -> 28.6 GB
    assert 5.5e9 < wan.text_encoder.params < 5.9e9  # umt5-xxl encoder, the tied vocabulary counted once
    assert 10.9e9 < wan.text_encoder.bytes < 11.8e9
    assert 0.12e9 < wan.vae.params < 0.135e9 and wan.vae.bytes == wan.vae.params * 4  # float32
    # one 14B block is 1/40 of the model; group offload keeps two blocks and the embeddings on the device
    assert 0.6e9 < wan.heavy.block_bytes < 0.8e9
    assert wan.heavy.offloaded_bytes < 2.5e9


def test_real_wan21_activations(wan):
    assert wan.tokens == 21 * 30 * 52 == 32760
    a = wan.activations
    assert 2.2e9 < a["heavy"] < 3.2e9 and 1e9 < a["light"] < 1.6e9  # ≈ 82 and 39 KB per token
    assert a["text_encoder"] < 0.5e9
    # the VAE decode is the largest single activation; tiling caps its working set
    assert a["vae_decode"] > a["heavy"] and a["vae_decode_tiled"] < a["vae_decode"] / 3
    # the decoder works one latent frame at a time: only the decoded video itself grows with F
    grow = vae_decode_bytes(WAN_VAE, 832, 480, 161) - vae_decode_bytes(WAN_VAE, 832, 480, 81)
    assert grow == 3 * 80 * 832 * 480 * 3 * 4


def test_a_wider_decoder_needs_its_own_width_of_working_memory():
    """decoder_base_dim (Wan2.2's VAE; lumos-mini's wide decoder) sets the decode's working set, not base_dim."""
    wide = {**WAN_VAE, "decoder_base_dim": 2 * WAN_VAE["base_dim"]}
    output = vae_decode_bytes({**WAN_VAE, "base_dim": 0}, 832, 480, 81)  # the decoded video alone
    assert vae_decode_bytes(wide, 832, 480, 81) - output == 2 * (vae_decode_bytes(WAN_VAE, 832, 480, 81) - output)


def test_each_plan_needs_less_than_the_one_before(wan):
    peaks = [wan.peak(p) for p in PLANS]
    assert peaks == sorted(peaks, reverse=True)
    assert wan.peak("resident") > wan.weights_bytes


@pytest.mark.parametrize("card_gb, plan", [(16, "low"), (24, "balanced"), (48, "balanced"), (80, "resident")])
def test_plan_per_card_for_the_wan21_pair_at_480p_81_frames(wan, card_gb, plan):
    free = card_gb * GiB - CUDA_CONTEXT
    chosen = choose_plan(wan, free)
    assert chosen.name == plan and chosen.fits, chosen.describe()
    assert chosen.peak_bytes == wan.peak(plan) and fits(chosen.peak_bytes, free)
    assert chosen.describe().startswith(f"memory plan: {plan} (est. peak ")
    assert chosen.describe().endswith(f" of {free / 1e9:.1f} GB free)")


def test_nothing_fits_gives_the_lowest_plan_and_says_what_it_needs(wan):
    chosen = choose_plan(wan, 8 * GiB)
    assert chosen.name == "low" and not chosen.fits
    assert "needs about" in chosen.message and "fewer frames or a smaller size" in chosen.describe()


def test_off_cuda_auto_is_resident_and_says_so(wan):
    plan = resolve_plan("auto", wan, "cpu")
    assert plan.name == "resident" and plan.free_bytes is None
    assert plan.describe().startswith("memory plan: resident (CPU: ")
    assert resolve_plan("low", wan, "cpu").name == "low"  # asked for by name: applied as asked


def test_next_plan():
    assert [next_plan(p) for p in PLANS] == ["balanced", "low", None]


# -- plans applied to the tiny models on CPU ------------------------------------------------------------------------
def _request(**kw):
    from engine.api import RenderRequest

    base = dict(prompt="a small red striped circle moves to the left", negative_prompt="blurry", steps=4,
                num_frames=5, width=32, height=32, seed=3, guidance_light=5.0, guidance_heavy=4.0)
    return RenderRequest(**{**base, **kw})


@pytest.fixture(scope="module")
def runtimes(tiny_spec):
    from dataclasses import replace

    from engine.runtime import Runtime

    out = {}
    for name in PLANS:
        rt = Runtime(cache_bytes=16 << 20, preview=False)
        summary = rt.load(replace(tiny_spec, device="cpu", memory=name))
        assert summary["memory_plan"]["name"] == name
        out[name] = rt
    return out


@pytest.mark.parametrize("plan", ["balanced", "low"])
def test_each_plan_renders_the_same_frames_as_resident(runtimes, plan):
    from diffusers.hooks.group_offloading import _is_group_offload_enabled

    req = _request()
    reference = runtimes["resident"].render(req).frames
    rt = runtimes[plan]
    frames = rt.render(req).frames
    assert frames.shape == reference.shape
    assert np.abs(frames.astype(int) - reference.astype(int)).max() <= 1
    models = rt.models
    assert _is_group_offload_enabled(models.heavy)
    assert _is_group_offload_enabled(models.light) == (plan == "low")
    assert models.vae.use_tiling == (plan == "low")
    assert models.text_encoder_offloaded and next(models.text_encoder.parameters()).device.type == "cpu"


def test_low_plan_tiled_decode_at_a_size_above_the_tile(runtimes):
    req = _request(width=272, height=272, num_frames=1, steps=1, guidance_light=1.0, guidance_heavy=1.0)
    reference = runtimes["resident"].render(req).frames
    frames = runtimes["low"].render(req).frames  # 272 > 256: decoded in blended tiles
    assert frames.shape == reference.shape
    assert np.abs(frames.astype(float) - reference.astype(float)).mean() < 2.0


def test_summary_and_estimate_through_the_api(runtimes, tiny_spec):
    from engine.api import estimate_memory

    summary = runtimes["resident"].models.summary()
    assert summary["memory_plan"]["name"] == "resident" and summary["memory_plan"]["free_bytes"] is None
    estimate_, plan = estimate_memory(tiny_spec, 64, 64, 9, device="cpu")
    assert plan.name == "resident" and estimate_.tokens == 3 * 4 * 4
    assert plan.peak_bytes == estimate_.peak("resident") > estimate_.weights_bytes


# -- out of memory ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("error", [torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
                                   RuntimeError("[enforce fail] DefaultCPUAllocator: out of memory")])
def test_out_of_memory_frees_keeps_the_request_and_names_the_next_plan(runtimes, monkeypatch, error):
    from engine.api import OutOfMemory

    rt = runtimes["resident"]
    rt.takes_cache.clear()  # the same request is rendered by the other parametrisation

    def boom(*args, **kwargs):
        raise error

    monkeypatch.setattr(rt.models.light, "forward", boom)  # a transformer's forward, as CUDA raises it
    req = _request(seed=11)
    with pytest.raises(OutOfMemory) as info:
        rt.render(req)
    err = info.value
    assert err.suggested_plan == "balanced" and err.current_plan == "resident" and err.request == req
    assert "--memory balanced" in str(err) and "settings are kept" in str(err)
    assert err.__context__ is None and err.__cause__ is None  # no chained traceback keeps the render's tensors
    monkeypatch.undo()
    assert rt.render(req).frames.shape == (5, 32, 32, 3)  # the runtime renders again


def test_out_of_memory_on_the_lowest_plan_asks_for_a_smaller_request(runtimes, monkeypatch):
    from engine.api import OutOfMemory

    rt = runtimes["low"]
    monkeypatch.setattr(rt, "_sample", lambda *a, **k: (_ for _ in ()).throw(torch.cuda.OutOfMemoryError("oom")))
    with pytest.raises(OutOfMemory) as info:
        rt.render(_request(seed=12))
    assert info.value.suggested_plan is None and "fewer frames or a smaller size" in str(info.value)


def test_out_of_memory_reaches_the_caller_as_a_failed_event_with_the_plan(runtimes, monkeypatch):
    from engine.api import Engine, Failed

    rt = runtimes["balanced"]
    monkeypatch.setattr(rt, "_sample", lambda *a, **k: (_ for _ in ()).throw(torch.cuda.OutOfMemoryError("oom")))
    engine = Engine(runtime=rt, preview=False)
    try:
        job = engine.submit(_request(seed=13))
        while True:
            event = engine.events.get(timeout=60)
            if isinstance(event, Failed) and event.job_id == job.id:
                break
        assert event.error_type == "OutOfMemory" and event.suggested_memory == "low"
        assert "--memory low" in event.message
    finally:
        engine.shutdown()


def test_cli_prints_the_plan(tmp_path, tiny_family):
    out = tmp_path / "t.mp4"
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "render", "--prompt", "a red circle",
                           "--light", str(tiny_family / "light"), "--heavy", str(tiny_family / "heavy"),
                           "--size", "32x32", "--frames", "5", "--steps", "2", "--device", "cpu",
                           "--memory", "balanced", "--quiet", "--out", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "memory plan: balanced (CPU: the models stay in system memory, est. peak " in proc.stderr
    assert out.is_file()


def test_out_of_memory_while_loading_suggests_the_low_plan(monkeypatch, tiny_spec):
    import engine.loading
    from engine.api import OutOfMemory
    from engine.runtime import Runtime

    def boom(spec, progress=None):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(engine.loading, "load_models", boom)
    rt = Runtime(cache_bytes=1 << 20, preview=False)
    with pytest.raises(OutOfMemory) as info:
        rt.load(tiny_spec)
    assert info.value.suggested_plan == "low" and "--memory low" in str(info.value) and not rt.loaded
