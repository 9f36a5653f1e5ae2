"""UPFB against an independent, literal transcription of docs/design.md §2 steps 2-5 (devtools.upfb_reference),
and the gate's properties."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.upfb_reference import literal_upfb
from engine.handoff import OFFICIAL_GAMMA_W, OFFICIAL_HANDOFF, gamma_w_to_handoff, gate_schedule, handoff_to_gamma_w
from engine.request import UPFBParams
from engine.upfb import fuse_velocities, gate


@pytest.mark.parametrize("t", [999.0, 950.0, 800.0, 500.0, 120.0, 3.0])
@pytest.mark.parametrize("gamma_w", [0.3, 1.0, 2.5])
def test_fusion_matches_literal_transcription(t, gamma_w):
    gen = torch.Generator().manual_seed(int(t) + int(gamma_w * 10))
    v_l = torch.randn(1, 16, 3, 12, 10, generator=gen)
    v_h = torch.randn(1, 16, 3, 12, 10, generator=gen) * 1.7
    expected, w = literal_upfb(v_l, v_h, t, gamma_w)
    assert w == pytest.approx(gate(t, gamma_w))
    ours = fuse_velocities(v_l, v_h, gate(t, gamma_w))
    assert (ours.double() - expected).abs().max().item() <= 1e-5


def test_fusion_with_other_parameters_matches():
    gen = torch.Generator().manual_seed(1)
    v_l, v_h = torch.randn(2, 1, 16, 2, 9, 14, generator=gen)
    expected, w = literal_upfb(v_l, v_h, 640.0, 0.8, UPFBParams(gamma_hf=0.3, sigma_min=0.2, sigma_max=1.5))
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
