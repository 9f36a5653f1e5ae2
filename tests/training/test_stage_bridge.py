"""The latent bridge (training/stage_bridge.py): a generator carried into a new latent space draws, at step 0, what
the old one drew, seen through the fitted map."""

import torch

from training.stage_bridge import bridge_transformer, fit_bridge, proj_to_conv, tokens
from training.stage_gen import make_transformer

OLD_PATCH, NEW_PATCH = (1, 2, 2), (1, 4, 4)
SIZE = dict(num_attention_heads=2, attention_head_dim=128, ffn_dim=32, num_layers=1)  # 256 wide: a 4×4 token's values


def _untokens(t: torch.Tensor, shape, patch) -> torch.Tensor:
    """Inverse of tokens(…, "conv")."""
    n, c, f, h, w = shape
    pt, ph, pw = patch
    z = t.reshape(n, f // pt, h // ph, w // pw, c, pt, ph, pw).permute(0, 4, 1, 5, 2, 6, 3, 7)
    return z.reshape(shape)


def _orthonormal_rows(rows: int, cols: int, seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(cols, rows, generator=torch.Generator().manual_seed(seed)))
    return q.T.contiguous()


def test_token_orders_hold_the_same_values():
    z = torch.randn(2, 3, 2, 8, 8)
    conv, proj = tokens(z, NEW_PATCH, "conv"), tokens(z, NEW_PATCH, "proj")
    assert torch.equal(proj, conv[:, proj_to_conv(3, NEW_PATCH)])
    assert torch.equal(_untokens(conv, z.shape, NEW_PATCH), z)
    assert not torch.equal(conv, proj)  # the orders differ, so the index map matters


def test_fit_recovers_a_known_map():
    new = torch.randn(40, 16, 5, 16, 16)
    a = _orthonormal_rows(64, 256, 0)
    old = _untokens(tokens(new, NEW_PATCH) @ a.T, (40, 16, 5, 8, 8), OLD_PATCH)
    fit = fit_bridge(old, new, OLD_PATCH, NEW_PATCH)
    assert fit["explained_old"] > 0.99
    assert torch.allclose(fit["a"], a, atol=2e-2)
    assert abs(fit["noise_gain"] - 1.0) < 1e-3  # unit noise stays unit noise on average
    assert torch.allclose(fit["a"] @ fit["b"], torch.eye(64), atol=5e-2)  # b undoes a on the old side
    unrelated = fit_bridge(torch.randn_like(old), new, OLD_PATCH, NEW_PATCH)
    assert unrelated["explained_old"] < 0.2


def test_the_ridge_keeps_noise_at_unit_variance_where_plain_least_squares_would_not():
    """Old latents that depend on a direction the new ones hardly vary in (two channels a thousandth apart): plain
    least squares reads it with a gain of ~1000, which would blow the generator's input noise up."""
    g = torch.Generator().manual_seed(2)
    base, hidden = torch.randn(2, 40, 8, 5, 16, 16, generator=g)
    new = torch.cat([base, base + 1e-3 * hidden], 1)
    a = _orthonormal_rows(64, 256, 3)
    old = _untokens(tokens(torch.cat([base, hidden], 1), NEW_PATCH) @ a.T, (40, 16, 5, 8, 8), OLD_PATCH)
    fit = fit_bridge(old, new, OLD_PATCH, NEW_PATCH)
    assert abs(fit["noise_gain"] - 1.0) < 1e-3
    assert torch.linalg.matrix_norm(fit["a"], ord=2) < 10
    assert fit["explained_old"] > 0.3  # what the clearly varying channels carry is still read


def test_bridged_generator_predicts_the_old_velocity_through_the_map():
    old_model = make_transformer(SIZE, seed=3, patch=OLD_PATCH).eval()
    with torch.no_grad():  # a trained-looking output layer (Wan's is zero-initialised in nothing, but be sure)
        old_model.proj_out.weight.normal_(0, 0.2)
        old_model.proj_out.bias.normal_(0, 0.2)
    a = _orthonormal_rows(64, 256, 1)
    new_model = bridge_transformer(old_model, a, a.T, NEW_PATCH,
                                   lambda patch: make_transformer(SIZE, seed=9, patch=patch)).eval()
    x_new = torch.randn(1, 16, 5, 16, 16)
    x_old = _untokens(tokens(x_new, NEW_PATCH) @ a.T, (1, 16, 5, 8, 8), OLD_PATCH)
    ctx = torch.randn(1, 6, old_model.config.text_dim)
    t = torch.tensor([500.0])
    with torch.no_grad():
        v_old = old_model(hidden_states=x_old, timestep=t, encoder_hidden_states=ctx, return_dict=False)[0]
        v_new = new_model(hidden_states=x_new, timestep=t, encoder_hidden_states=ctx, return_dict=False)[0]
    assert v_new.shape == x_new.shape
    seen = tokens(v_new, NEW_PATCH) @ a.T
    assert torch.allclose(seen, tokens(v_old, OLD_PATCH), atol=1e-4)
    assert v_old.abs().mean() > 0.05  # not a trivially zero output


def test_a_generator_narrower_than_its_tokens_is_refused():
    """Its velocity would span fewer directions than a token has: noise the sampler never removes (the pilot's light,
    96 wide on 4×4 cells of 16 channels, drew noisy backgrounds)."""
    import pytest

    from training.stage_gen import LIGHT, token_width_problem

    light_width = LIGHT["num_attention_heads"] * LIGHT["attention_head_dim"]
    assert token_width_problem(light_width, 16, (1, 2, 2)) is None  # the shipped layout: 64 values a token
    assert "256 latent values" in token_width_problem(light_width, 16, (1, 4, 4))
    with pytest.raises(ValueError, match="at least 256"):
        make_transformer(LIGHT, patch=NEW_PATCH)


def test_the_stage_carries_the_shipped_family_into_a_new_vae_and_refuses_one_too_fine(tmp_path):
    """End to end on tiny budgets: a new VAE of the shipped layout takes the generators (light beside heavy, then a
    family installed); a 4× VAE is refused before anything is fitted (the light is 96 wide, a token 256 values)."""
    import json

    import pytest

    from engine.models import DEFAULT_FAMILY
    from training import stage_bridge, stage_vae

    if not (DEFAULT_FAMILY / "light" / "transformer").exists():
        pytest.skip("no embedded family")
    steps = ["--vae-texture-steps", "0", "--vae-settle-steps", "0"]
    same, finer = tmp_path / "same", tmp_path / "finer"
    stage_vae.main(["--tiny", "--run", str(same), *steps])
    stage_bridge.main(["--tiny", "--run", str(same), "--out", str(tmp_path / "family")])
    family = tmp_path / "family"
    metrics = json.loads((family / "training_metrics.json").read_text())
    assert metrics["bridge"]["light"]["new_patch"] == [1, 2, 2] and metrics["heavy_bridge"]["steps"] >= 1
    assert json.loads((family / "light" / "vae" / "config.json").read_text())["scale_factor_spatial"] == 8
    assert (family / "MODEL_CARD.md").read_text().count("carried into this one") == 1
    stage_vae.main(["--tiny", "--run", str(finer), "--spatial", "4", *steps])
    with pytest.raises(SystemExit, match="cannot bridge the light generator.*256 latent values"):
        stage_bridge.main(["--tiny", "--run", str(finer)])
    assert not (finer / "latents" / "done.json").exists()  # refused before the latents are encoded
