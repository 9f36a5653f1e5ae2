"""Wan's transformer with absolute positions: why it exists (plain Wan cannot tell places apart in a featureless
latent), and that it saves, loads and runs like Wan's own."""

import pytest
import torch
from diffusers import WanTransformer3DModel

from engine.errors import ModelError
from engine.models import inspect_source
from engine.positional_transformer import PositionalWanTransformer3DModel, load_transformer, transformer_class

COMMON = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, in_channels=16, out_channels=16,
              text_dim=32, freq_dim=32, ffn_dim=32, num_layers=2, rope_max_seq_len=32)


def _velocity(model, latent):
    torch.manual_seed(0)
    text = torch.randn(1, 7, 32)
    with torch.no_grad():
        return model(hidden_states=latent, timestep=torch.tensor([999.0]), encoder_hidden_states=text,
                     return_dict=False)[0]


def _spread_over_places(v: torch.Tensor) -> float:
    """How much the predicted velocity differs between 2×2 patches of one latent frame (0: all places alike)."""
    patches = v[0, :, 2].unfold(1, 2, 2).unfold(2, 2, 2)  # [C, rows, cols, 2, 2]
    flat = patches.permute(1, 2, 0, 3, 4).reshape(-1, patches.shape[0] * 4)
    return float((flat - flat.mean(0)).abs().max())


def test_plain_wan_cannot_tell_places_apart_but_ours_can():
    """With a featureless latent (what the first denoising step of a uniform canvas gives), RoPE alone leaves
    every token identical, so "at the top right" cannot land anywhere in particular; the absolute embedding can."""
    torch.manual_seed(1)
    plain = WanTransformer3DModel(**COMMON).eval()
    ours = PositionalWanTransformer3DModel(position_grid=(5, 4, 4), **COMMON).eval()
    flat = torch.zeros(1, 16, 5, 8, 8)
    assert _spread_over_places(_velocity(plain, flat)) < 1e-5
    assert _spread_over_places(_velocity(ours, flat)) > 1e-3


def test_round_trip_keeps_class_positions_and_output(tmp_path):
    torch.manual_seed(2)
    model = PositionalWanTransformer3DModel(position_grid=(3, 4, 4), **COMMON).eval()
    model.save_pretrained(tmp_path / "t", safe_serialization=True)
    again = load_transformer(tmp_path / "t")
    assert type(again) is PositionalWanTransformer3DModel and tuple(again.config.position_grid) == (3, 4, 4)
    x = torch.randn(1, 16, 9 // 4 + 1, 8, 8)
    assert torch.equal(_velocity(model, x), _velocity(again, x))


def test_plain_wan_folders_still_load_as_plain_wan(tmp_path):
    WanTransformer3DModel(**COMMON).save_pretrained(tmp_path / "t", safe_serialization=True)
    assert type(load_transformer(tmp_path / "t")) is WanTransformer3DModel
    assert transformer_class(tmp_path / "missing") is WanTransformer3DModel


def test_unknown_class_and_oversized_grid_fail_clearly(tmp_path):
    WanTransformer3DModel(**COMMON).save_pretrained(tmp_path / "t", safe_serialization=True)
    cfg = tmp_path / "t" / "config.json"
    cfg.write_text(cfg.read_text().replace('"WanTransformer3DModel"', '"FluxTransformer2DModel"'))
    with pytest.raises(ValueError, match="FluxTransformer2DModel.*not one Lumos can run"):
        transformer_class(tmp_path / "t")
    with pytest.raises(ModelError, match="FluxTransformer2DModel"):
        inspect_source(str(tmp_path / "t"))
    model = PositionalWanTransformer3DModel(position_grid=(2, 4, 4), **COMMON).eval()
    with pytest.raises(ValueError, match="exceeds the model's position grid"):
        _velocity(model, torch.zeros(1, 16, 5, 8, 8))


def test_engine_accepts_the_positional_class(tmp_path):
    PositionalWanTransformer3DModel(position_grid=(3, 4, 4), **COMMON).save_pretrained(tmp_path / "t")
    src = inspect_source(str(tmp_path / "t"))
    assert src.kind == "transformer" and src.transformer_config["_class_name"] == "PositionalWanTransformer3DModel"


def test_the_model_check_and_the_loader_accept_the_same_classes():
    """engine.models checks configs without importing torch, so it keeps the class names apart from the loader."""
    from engine.models import TRANSFORMER_CLASSES as checked
    from engine.positional_transformer import TRANSFORMER_CLASSES as loadable

    assert set(checked) == set(loadable)
