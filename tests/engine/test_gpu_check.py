"""bench/gpu_check.py on CPU: it refuses without CUDA (one line, exit 2), and its FLOP arithmetic is right."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "gpu_check.py"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_refuses_without_cuda_in_one_line_exit_2(monkeypatch, capsys):
    import torch

    gc = _module()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exc:
        gc.main([])
    assert exc.value.code == 2
    err = capsys.readouterr()
    assert err.out == ""
    assert len(err.err.strip().splitlines()) == 1 and "no CUDA device" in err.err


def test_refuses_as_a_command_with_no_visible_gpu():
    proc = subprocess.run([sys.executable, str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "" and len(proc.stderr.strip().splitlines()) == 1


def test_latent_tokens_480p_81_frames():
    gc = _module()
    assert gc.latent_tokens(832, 480, 81) == ((21, 60, 104), 21 * 30 * 52)


def test_flop_arithmetic_on_a_toy_config():
    from diffusers import WanTransformer3DModel

    gc = _module()
    cfg = {"patch_size": [1, 2, 2], "num_attention_heads": 2, "attention_head_dim": 8, "in_channels": 16,
           "out_channels": 16, "text_dim": 24, "freq_dim": 16, "ffn_dim": 40, "num_layers": 3,
           "cross_attn_norm": True, "qk_norm": "rms_norm_across_heads", "rope_max_seq_len": 32}
    params = gc.count_params(cfg)
    assert params == sum(p.numel() for p in WanTransformer3DModel(**cfg).parameters())
    tokens, text = 10, 7
    flops = gc.forward_flops(cfg, params, tokens, text_tokens=text)
    dim, layers = 16, 3
    assert flops["linear"] == 2 * params * tokens
    assert flops["self_attention"] == 4 * tokens ** 2 * dim * layers == 19200
    assert flops["cross_attention"] == 4 * tokens * text * dim * layers == 13440
    assert flops["total"] == 2 * params * tokens + 19200 + 13440


def test_flop_floor_of_the_real_14b_and_the_card_table():
    from devtools.wan_configs import WAN21_14B_TRANSFORMER

    gc = _module()
    params = gc.count_params(WAN21_14B_TRANSFORMER)
    assert 14.0e9 < params < 14.5e9
    _, tokens = gc.latent_tokens(832, 480, 81)
    flops = gc.forward_flops(WAN21_14B_TRANSFORMER, params, tokens)
    assert flops["self_attention"] == 4 * 32760 ** 2 * 5120 * 40
    assert 1.5e15 < flops["total"] < 2.0e15  # ≈ 1.8 PFLOP: a ≈ 1.8 s floor on an H100
    assert gc.bf16_peak("NVIDIA H100 80GB HBM3") == gc.bf16_peak("NVIDIA H200") == 989e12
    assert gc.bf16_peak("Some Future Card") is None


def test_the_whole_script_runs_at_tiny_widths_on_cpu():
    """Every stage and every memory plan of the script runs (a smoke run: toy widths, nothing timed for real)."""
    proc = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--tiny", "--width", "64", "--height",
                           "64", "--frames", "5"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = proc.stdout
    assert "FAILED" not in table
    for row in ("encode", "light (", "heavy (", "UPFB step", "VAE decode (1, 3, 5, 64, 64)",
                "plan resident", "plan balanced", "plan low", "total"):
        assert row in table, f"row {row!r} missing from\n{table}"


def test_real_widths_without_cuda_are_refused_with_a_hint(capsys):
    gc = _module()
    with pytest.raises(SystemExit) as exc:
        gc.main(["--device", "cpu"])
    assert exc.value.code == 2 and "--tiny" in capsys.readouterr().err
