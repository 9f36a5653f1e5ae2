"""UPFB against an independent, literal transcription of DESIGN §2 steps 2-5, and the gate's properties."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.handoff import OFFICIAL_GAMMA_W, OFFICIAL_HANDOFF, gamma_w_to_handoff, gate_schedule, handoff_to_gamma_w
from engine.upfb import fuse_velocities, gate


def literal_upfb(v_l, v_h, t, gamma_w, gamma_hf, sigma_min, sigma_max):
    """Steps 2-5 written out as published: two blurs, explicit LF/HF, fusion, global RMS rebalance."""
    tau = min(max(t / 999, 0.0), 1.0)
    w = 0.5 * (1 + math.cos(math.pi * (1 - tau) ** gamma_w))
    h, wd = v_l.shape[-2:]
    k = max(3, 2 * math.floor(math.sqrt(h * wd) / 1024) + 1)
    sigma = sigma_min + (sigma_max - sigma_min) * w
    r = torch.arange(k, dtype=torch.float64) - k // 2
    g1 = torch.exp(-(r**2) / (2 * sigma**2))
    kernel = torch.outer(g1, g1)
    kernel = kernel / kernel.sum()

    def blur(v):
        flat = v.double().reshape(-1, 1, h, wd)
        flat = torch.nn.functional.pad(flat, (k // 2,) * 4, mode="reflect")
        return torch.nn.functional.conv2d(flat, kernel.view(1, 1, k, k)).reshape(v.shape)

    lf_l, lf_h = blur(v_l), blur(v_h)
    hf_l, hf_h = v_l.double() - lf_l, v_h.double() - lf_h
    lf = w * lf_l + (1 - w) * lf_h
    hf = (1 - w) * hf_h + w * gamma_hf * hf_l
    v = lf + hf
    v = v * torch.sqrt((v_l.double() ** 2).mean()) / torch.sqrt((v**2).mean())
    return v, w


@pytest.mark.parametrize("t", [999.0, 950.0, 800.0, 500.0, 120.0, 3.0])
@pytest.mark.parametrize("gamma_w", [0.3, 1.0, 2.5])
def test_fusion_matches_literal_transcription(t, gamma_w):
    gen = torch.Generator().manual_seed(int(t) + int(gamma_w * 10))
    v_l = torch.randn(1, 16, 3, 12, 10, generator=gen)
    v_h = torch.randn(1, 16, 3, 12, 10, generator=gen) * 1.7
    expected, w = literal_upfb(v_l, v_h, t, gamma_w, 0.7, 0.35, 0.7)
    assert w == pytest.approx(gate(t, gamma_w))
    ours = fuse_velocities(v_l, v_h, gate(t, gamma_w), gamma_hf=0.7, sigma_min=0.35, sigma_max=0.7)
    assert (ours.double() - expected).abs().max().item() <= 1e-5


def test_fusion_with_other_parameters_matches():
    gen = torch.Generator().manual_seed(1)
    v_l, v_h = torch.randn(2, 1, 16, 2, 9, 14, generator=gen)
    expected, w = literal_upfb(v_l, v_h, 640.0, 0.8, 0.3, 0.2, 1.5)
    ours = fuse_velocities(v_l, v_h, w, gamma_hf=0.3, sigma_min=0.2, sigma_max=1.5)
    assert (ours.double() - expected).abs().max().item() <= 1e-5


def test_rebalance_keeps_light_energy():
    gen = torch.Generator().manual_seed(2)
    v_l, v_h = torch.randn(2, 1, 16, 2, 8, 8, generator=gen)
    out = fuse_velocities(v_l, 3 * v_h, 0.4)
    assert out.pow(2).mean().sqrt().item() == pytest.approx(v_l.pow(2).mean().sqrt().item(), rel=1e-5)


def test_gate_endpoints_and_monotone():
    for g in (0.05, 0.3, 1.0, 4.0):
        assert gate(999, g) == pytest.approx(1.0)
        assert gate(0, g) == pytest.approx(0.0)
        ws = [gate(t, g) for t in range(0, 1000, 7)]
        assert all(a <= b + 1e-12 for a, b in zip(ws, ws[1:]))


def test_official_default_is_reachable_and_leads_18_of_50():
    assert handoff_to_gamma_w(OFFICIAL_HANDOFF) == pytest.approx(OFFICIAL_GAMMA_W)
    assert 0.6 < OFFICIAL_HANDOFF < 0.7
    sched = gate_schedule(50, OFFICIAL_HANDOFF, flow_shift=5.0)
    assert sched.light_leading_steps == 18
    assert "18 of 50" in sched.describe()


def test_handoff_zero_is_the_draft():
    assert handoff_to_gamma_w(0.0) == math.inf
    assert all(w == 1.0 for w in gate_schedule(20, 0.0, flow_shift=5.0).w)


@settings(max_examples=60, deadline=None)
@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.sampled_from([1.0, 3.0, 5.0]))
def test_heavy_share_never_decreases_as_handoff_grows(a, b, shift):
    lo, hi = sorted((a, b))
    assert handoff_to_gamma_w(lo, shift) >= handoff_to_gamma_w(hi, shift)
    timesteps = [999.0, 990.0, 930.0, 800.0, 600.0, 420.0, 250.0, 100.0, 20.0]
    w_lo = gate_schedule(len(timesteps), lo, flow_shift=shift, timesteps=timesteps).w
    w_hi = gate_schedule(len(timesteps), hi, flow_shift=shift, timesteps=timesteps).w
    assert all((1 - x) <= (1 - y) + 1e-12 for x, y in zip(w_lo, w_hi))


@settings(max_examples=40, deadline=None)
@given(st.floats(0.001, 0.999))
def test_handoff_mapping_round_trips(s):
    assert gamma_w_to_handoff(handoff_to_gamma_w(s)) == pytest.approx(s, abs=1e-9)


def test_default_handoff_prefers_a_family_measurement_at_its_own_shift():
    from engine.handoff import OFFICIAL_GAMMA_W, default_handoff, gamma_w_to_handoff

    authors_at_2 = gamma_w_to_handoff(OFFICIAL_GAMMA_W, 2.0)
    assert default_handoff({"flow_shift": 2.0}) == (pytest.approx(authors_at_2), False)
    assert default_handoff({"flow_shift": 2.0, "handoff": 0.4}) == (0.4, True)
    # a take at another shift: the family's measurement does not apply there
    assert default_handoff({"flow_shift": 2.0, "handoff": 0.4}, 5.0) == (
        pytest.approx(gamma_w_to_handoff(OFFICIAL_GAMMA_W, 5.0)), False)
