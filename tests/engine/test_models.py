"""Loading real diffusers layouts: folders, bare transformers, the HF cache offline, and every kind of bad input."""

import json
import shutil

import pytest

from engine.api import ModelSpec, validate_spec
from engine.errors import ModelError
from engine.loading import load_models
from engine.models import check_pair, inspect_source


def _fake_hf_cache(tmp_path, family, repo="Wan-AI/Tiny-T2V-Diffusers"):
    org, name = repo.split("/")
    base = tmp_path / "hf" / "hub" / f"models--{org}--{name}"
    rev = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(family / "light", base / "snapshots" / rev)
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(rev)
    return tmp_path / "hf", repo


def test_repo_id_resolves_from_local_cache_offline(tmp_path, tiny_family, monkeypatch):
    hf_home, repo = _fake_hf_cache(tmp_path, tiny_family)
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    models = load_models(ModelSpec(light=repo, heavy=str(tiny_family / "heavy")))
    assert models.light_id == repo
    assert models.light.config.num_attention_heads == 2 and models.heavy.config.num_attention_heads == 4


def test_repo_id_missing_from_cache_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    with pytest.raises(ModelError, match="not in the local Hugging Face cache"):
        inspect_source("Wan-AI/Wan2.1-T2V-14B-Diffusers")


def test_bare_transformer_folder_and_its_parent_both_work(tiny_family):
    a = inspect_source(str(tiny_family / "heavy"))
    b = inspect_source(str(tiny_family / "heavy" / "transformer"))
    assert a.kind == b.kind == "transformer" and a.transformer_dir == b.transformer_dir


def _copy_family(tmp_path, tiny_family):
    dst = tmp_path / "fam"
    shutil.copytree(tiny_family, dst)
    return dst


def _edit(path, **changes):
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_mismatched_latent_channels_are_refused_by_name(tmp_path, tiny_family):
    fam = _copy_family(tmp_path, tiny_family)
    _edit(fam / "heavy" / "transformer" / "config.json", in_channels=36, text_dim=64)
    report = validate_spec(ModelSpec(light=str(fam / "light"), heavy=str(fam / "heavy")))
    assert not report.ok
    assert "in_channels differs (light 16, heavy 36)" in report.message()
    assert "text_dim" in report.message()
    with pytest.raises(ModelError, match="do not share a latent space"):
        load_models(ModelSpec(light=str(fam / "light"), heavy=str(fam / "heavy")))


def test_different_vaes_are_refused(tmp_path, tiny_family):
    fam = _copy_family(tmp_path, tiny_family)
    shutil.copytree(fam / "light", fam / "other")
    _edit(fam / "other" / "vae" / "config.json", latents_mean=[0.0] * 16)
    light, heavy = inspect_source(str(fam / "light")), inspect_source(str(fam / "other"))
    report = check_pair(light, heavy)
    assert not report.ok and "VAE latents_mean differs" in report.message()


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / "light" / "vae" / "diffusion_pytorch_model.safetensors").unlink(), "has no weights"),
    (lambda f: (f / "light" / "transformer" / "config.json").write_text("{not json"), "cannot read"),
    (lambda f: (f / "light" / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(b"garbage"),
     "could not load the light generator"),
    (lambda f: shutil.rmtree(f / "light" / "tokenizer"), "no tokenizer/"),
    (lambda f: (f / "light" / "transformer" / "diffusion_pytorch_model.safetensors").rename(
        f / "light" / "transformer" / "diffusion_pytorch_model.bin"), "safetensors only"),
])
def test_corrupt_or_incomplete_folders_give_clear_errors(tmp_path, tiny_family, damage, message):
    fam = _copy_family(tmp_path, tiny_family)
    damage(fam)
    with pytest.raises(ModelError, match=message):
        load_models(ModelSpec(light=str(fam / "light"), heavy=str(fam / "heavy")))


def test_not_a_model_folder(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(ModelError, match="not a diffusers Wan model"):
        inspect_source(str(tmp_path / "photos"))
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ModelError, match="is a file"):
        inspect_source(str(tmp_path / "file.txt"))


def test_real_wan_configs_pair_up_on_meta_device():
    """The published 1.3B and 14B configs share a latent space and build without weights."""
    import torch
    from accelerate import init_empty_weights
    from diffusers import WanTransformer3DModel

    common = dict(patch_size=(1, 2, 2), attention_head_dim=128, in_channels=16, out_channels=16, text_dim=4096,
                  freq_dim=256, cross_attn_norm=True, qk_norm="rms_norm_across_heads", rope_max_seq_len=1024)
    with init_empty_weights():
        light = WanTransformer3DModel(num_attention_heads=12, ffn_dim=8960, num_layers=30, **common)
        heavy = WanTransformer3DModel(num_attention_heads=40, ffn_dim=13824, num_layers=40, **common)
    assert next(light.parameters()).device == torch.device("meta")
    n_light = sum(p.numel() for p in light.parameters())
    n_heavy = sum(p.numel() for p in heavy.parameters())
    assert 1.2e9 < n_light < 1.5e9 and 1.3e10 < n_heavy < 1.5e10
    from engine.models import SHARED_TRANSFORMER_KEYS

    for key in SHARED_TRANSFORMER_KEYS:
        assert light.config[key] == heavy.config[key]
