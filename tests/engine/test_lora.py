"""LoRAs per generator (engine/lora.py): made here with peft on the tiny transformers, saved in diffusers' key
format and in the original-Wan key format, loaded through diffusers' Wan LoRA loader."""

import dataclasses
import hashlib

import numpy as np
import pytest
import torch

pytest.importorskip("peft")

from engine.api import ModelSpec, RenderRequest  # noqa: E402
from engine.errors import ModelError  # noqa: E402
from engine.lora import parse_lora_arg  # noqa: E402

_ORIGINAL = {"attn1": "self_attn", "attn2": "cross_attn", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "o"}


def _make_lora(folder, seed: int, rank: int = 4) -> dict:
    """A peft LoRA on the attention projections of the transformer in `folder`, random non-zero B: its state dict in
    diffusers' key format without prefix (blocks.0.attn1.to_q.lora_A.weight ...)."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from engine.positional_transformer import load_transformer

    model = load_transformer(folder / "transformer", torch_dtype=torch.float32)
    model.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=["to_q", "to_k", "to_v", "to_out.0"],
                                 init_lora_weights=False))
    gen = torch.Generator().manual_seed(seed)
    state = get_peft_model_state_dict(model)
    return {k: torch.randn(v.shape, generator=gen) * 0.5 for k, v in state.items()}


def _save(state: dict, path, fmt: str = "diffusers"):
    from safetensors.torch import save_file

    if fmt == "diffusers":
        out = {f"transformer.{k}": v for k, v in state.items()}
    else:  # original Wan: diffusion_model.blocks.0.self_attn.q.lora_A.weight
        out = {}
        for key, v in state.items():
            name, part = key.rsplit(".lora_", 1)
            for ours, theirs in _ORIGINAL.items():
                name = name.replace(f".{ours}", f".{theirs}")
            out[f"diffusion_model.{name}.lora_{part}"] = v
    save_file({k: v.contiguous() for k, v in out.items()}, str(path))
    return path


@pytest.fixture(scope="module")
def loras(tiny_family, tmp_path_factory):
    d = tmp_path_factory.mktemp("loras")
    light = _make_lora(tiny_family / "light", seed=1)
    heavy = _make_lora(tiny_family / "heavy", seed=2)
    return {"light": _save(light, d / "light.safetensors"),
            "light_orig": _save(light, d / "light-orig.safetensors", "original"),
            "light_b": _save(_make_lora(tiny_family / "light", seed=3, rank=2), d / "light-b.safetensors"),
            "heavy": _save(heavy, d / "heavy.safetensors"),
            "heavy_orig": _save(heavy, d / "heavy-orig.safetensors", "original"),
            "dir": d}


def _request(mode="upfb"):
    return RenderRequest(prompt="a small red striped circle moves to the left", mode=mode, steps=3, num_frames=5,
                         width=32, height=32, seed=7, guidance_light=5.0, guidance_heavy=4.0)


def _render(spec, mode="upfb"):
    from engine.runtime import Runtime

    rt = Runtime(cache_bytes=0)
    rt.load(spec)
    return rt.render(_request(mode))


@pytest.fixture(scope="module")
def base(tiny_spec):
    return {mode: _render(tiny_spec, mode).frames for mode in ("upfb", "light", "heavy")}


def _differs(a, b) -> bool:
    return np.abs(a.astype(int) - b.astype(int)).max() > 0


@pytest.mark.parametrize("role,key", [("light", "light"), ("light", "light_orig"), ("heavy", "heavy"),
                                      ("heavy", "heavy_orig")])
def test_lora_changes_the_render_in_both_formats(tiny_spec, loras, base, role, key):
    spec = dataclasses.replace(tiny_spec, **{f"lora_{role}": ((str(loras[key]), 1.0),)})
    take = _render(spec, role)  # the generator alone, so that its LoRA shows
    assert _differs(take.frames, base[role])
    data = loras[key].read_bytes()
    assert take.metadata["loras"][role] == [{"name": loras[key].name, "sha256": hashlib.sha256(data).hexdigest(),
                                            "scale": 1.0}]


def test_both_formats_give_the_same_render(tiny_spec, loras):
    a = _render(dataclasses.replace(tiny_spec, lora_light=((str(loras["light"]), 0.7),))).frames
    b = _render(dataclasses.replace(tiny_spec, lora_light=((str(loras["light_orig"]), 0.7),))).frames
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_strength_zero_equals_no_lora(tiny_spec, loras, base):
    take = _render(dataclasses.replace(tiny_spec, lora_light=((str(loras["light"]), 0.0),),
                                       lora_heavy=((str(loras["heavy"]), 0.0),)))
    assert np.array_equal(take.frames, base["upfb"])


def test_two_loras_at_once(tiny_spec, loras, base):
    one = _render(dataclasses.replace(tiny_spec, lora_light=((str(loras["light"]), 1.0),))).frames
    two = _render(dataclasses.replace(tiny_spec, lora_light=((str(loras["light"]), 1.0),
                                                             (str(loras["light_b"]), 0.5)),
                                      lora_heavy=((str(loras["heavy_orig"]), 1.0),)))
    assert _differs(two.frames, one) and _differs(two.frames, base["upfb"])
    assert [r["name"] for r in two.metadata["loras"]["light"]] == ["light.safetensors", "light-b.safetensors"]
    assert [r["scale"] for r in two.metadata["loras"]["light"]] == [1.0, 0.5]
    assert two.metadata["loras"]["heavy"][0]["name"] == "heavy-orig.safetensors"


@pytest.mark.parametrize("key", ["heavy", "heavy_orig"])
def test_a_lora_for_another_generator_is_refused_naming_keys(tiny_spec, loras, key):
    from engine.loading import load_models

    with pytest.raises(ModelError, match=r"does not fit the light generator: .*blocks\.\d+\.attn1\.to_q\.lora_"):
        load_models(dataclasses.replace(tiny_spec, lora_light=((str(loras[key]), 1.0),)))


def test_a_wrong_rank_pair_and_foreign_keys_are_refused(tiny_spec, loras):
    from safetensors.torch import load_file, save_file

    from engine.loading import load_models

    state = load_file(str(loras["light"]))
    key = "transformer.blocks.0.attn1.to_q.lora_A.weight"
    state[key] = torch.randn(3, state[key].shape[1])  # rank 3 against B's 4
    state["transformer.blocks.0.unknown_layer.lora_A.weight"] = torch.randn(4, 8)
    bad = loras["dir"] / "bad.safetensors"
    save_file(state, str(bad))
    with pytest.raises(ModelError) as info:
        load_models(dataclasses.replace(tiny_spec, lora_light=((str(bad), 1.0),)))
    assert "blocks.0.unknown_layer.lora_A.weight (no such layer)" in str(info.value)
    assert "rank" in str(info.value)


def test_a_bin_lora_and_a_missing_file_are_refused(tiny_spec, loras):
    from engine.loading import load_models

    binary = loras["dir"] / "lora.bin"
    torch.save({"a": torch.zeros(1)}, binary)
    with pytest.raises(ModelError, match="only .safetensors"):
        load_models(dataclasses.replace(tiny_spec, lora_light=((str(binary), 1.0),)))
    with pytest.raises(ModelError, match="not found"):
        load_models(dataclasses.replace(tiny_spec, lora_heavy=((str(loras["dir"] / "gone.safetensors"), 1.0),)))


def test_parse_lora_arg():
    assert parse_lora_arg("a/b.safetensors") == ("a/b.safetensors", None)
    assert parse_lora_arg("a/b.safetensors:0.5") == ("a/b.safetensors", 0.5)
    assert parse_lora_arg("C:\\x\\b.safetensors:-1") == ("C:\\x\\b.safetensors", -1.0)
    assert parse_lora_arg("C:\\x\\b.safetensors") == ("C:\\x\\b.safetensors", None)
    for bad in ("x.safetensors:nan", "x.safetensors:1000", " :0.5"):
        with pytest.raises(ValueError):
            parse_lora_arg(bad)


def test_cli_flags_parse():
    from engine.cli import build_parser

    args = build_parser().parse_args(["render", "--prompt", "x", "--lora-light", "a.safetensors:0.5",
                                      "--lora-light", "b.safetensors", "--lora-heavy", "c.safetensors:-1"])
    assert args.lora_light == [("a.safetensors", 0.5), ("b.safetensors", None)]
    assert args.lora_heavy == [("c.safetensors", -1.0)]
    args = build_parser().parse_args(["reproduce", "t.mp4", "--lora-heavy", "c.safetensors"])
    assert args.lora_heavy == [("c.safetensors", None)] and args.lora_light == []


def test_reproduce_finds_recorded_loras_by_name_and_sha256(tmp_path, loras):
    import argparse
    import shutil

    from engine.cli import _recorded_loras
    from engine.lora import sha256_of

    take = tmp_path / "take.mp4"
    take.write_bytes(b"")
    record = {"name": "light.safetensors", "sha256": sha256_of(loras["light"]), "scale": 0.5}
    meta = {"loras": {"light": [record], "heavy": []}}
    args = argparse.Namespace(file=str(take), lora_light=[], lora_heavy=[])
    with pytest.raises(ModelError, match=r"not next to the MP4 and not given: pass --lora-light PATH"):
        _recorded_loras(meta, args)
    # given on the command line (by file name), its strength overriding the recorded one
    args.lora_light = [(str(loras["light"]), 0.25)]
    assert _recorded_loras(meta, args) == (((str(loras["light"]), 0.25),), ())
    # next to the MP4, the recorded strength
    args.lora_light = []
    shutil.copy(loras["light"], tmp_path / "light.safetensors")
    assert _recorded_loras(meta, args) == (((str(tmp_path / "light.safetensors"), 0.5),), ())
    # the same name, other bytes
    shutil.copy(loras["light_b"], tmp_path / "light.safetensors")
    with pytest.raises(ModelError, match="is not the light LoRA the take used"):
        _recorded_loras(meta, args)
    # an untrusted name never leaves the MP4's folder
    bad = {"loras": {"heavy": [dict(record, name="../light.safetensors")]}}
    with pytest.raises(ModelError, match="not next to the MP4"):
        _recorded_loras(bad, args)


def test_cli_render_records_the_lora_and_reproduce_needs_it(tmp_path, tiny_family, loras):
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from engine.export import read_metadata

    root = Path(__file__).resolve().parents[2]
    lora = shutil.copy(loras["light"], tmp_path / "style.safetensors")
    out = tmp_path / "take.mp4"

    def cli(*args):
        proc = subprocess.run([sys.executable, str(root / "main.py"), *args], capture_output=True, text=True,
                              timeout=300, cwd=root)
        return proc.returncode, proc.stderr

    models = ["--light", str(tiny_family / "light"), "--heavy", str(tiny_family / "heavy")]
    code, err = cli("render", "--prompt", "a green star grows", *models, "--size", "32x32", "--frames", "5",
                    "--steps", "2", "--lora-light", f"{lora}:0.8", "--out", str(out), "--quiet")
    assert code == 0, err
    recorded = read_metadata(out)["loras"]
    assert recorded == {"light": [{"name": "style.safetensors", "sha256": hashlib.sha256(
        Path(lora).read_bytes()).hexdigest(), "scale": 0.8}], "heavy": []}
    Path(lora).unlink()
    code, err = cli("reproduce", str(out), *models, "--quiet")
    assert code == 2
    assert err.strip().count("\n") == 0 and "style.safetensors" in err and "--lora-light" in err
