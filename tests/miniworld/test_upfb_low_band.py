"""The held-low-band probe (bench/upfb_low_band.py): at hold = 1 it is the published fusion, at hold = 0 the low
band is the light generator's alone."""
import torch

from bench.upfb_low_band import held_low_band_fusion
from engine.upfb import blur_sigma, fuse_velocities, gaussian_blur_hw, rms

KNOBS = dict(gamma_hf=0.7, sigma_min=0.35, sigma_max=0.7)


def velocities():
    torch.manual_seed(0)
    return torch.randn(2, 16, 3, 8, 8), torch.randn(2, 16, 3, 8, 8)


def test_hold_one_at_the_published_width_is_the_published_fusion():
    v_light, v_heavy = velocities()
    for w in (0.1, 0.5, 0.9):
        probe = held_low_band_fusion(1.0, blur_sigma(w, 0.35, 0.7), kernel=3)(v_light, v_heavy, w, **KNOBS)
        assert torch.allclose(probe, fuse_velocities(v_light, v_heavy, w, **KNOBS), atol=1e-5)


def test_hold_zero_keeps_the_light_generators_low_band():
    v_light, v_heavy = velocities()
    w, sigma = 0.3, 1.0
    fused = held_low_band_fusion(0.0, sigma)(v_light, v_heavy, w, **KNOBS)
    mixed = (1 - w) * (v_heavy - gaussian_blur_hw(v_heavy, sigma, 5)) + w * 0.7 * (
        v_light - gaussian_blur_hw(v_light, sigma, 5)) + gaussian_blur_hw(v_light, sigma, 5)
    assert torch.allclose(fused, mixed * rms(v_light) / rms(mixed), atol=1e-5)
    # and it differs from the published blend, which hands the heavy (1 − w) of every band
    assert not torch.allclose(fused, fuse_velocities(v_light, v_heavy, w, **KNOBS), atol=1e-2)
