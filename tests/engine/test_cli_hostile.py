"""The CLI probed as a hostile and a careless user would: every bad value ends with exit code 2 and one line that
says what is wrong, before any model loads or any file is written; nothing of value is lost. Each case here was a
real defect (a usage block, a misleading name, an internal error, a render of the wrong thing, a hang)."""

import json
import shutil
import time

import numpy as np
import pytest

from engine.export import export_mp4
from engine.request import RenderRequest, RequestError, check_request


def _main(capsys, *args):
    """The CLI in-process (these paths all end before an Engine exists): (exit code, stderr)."""
    from engine.cli import main

    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's own exit
        code = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Unexpected error" not in err, err
    return code, err


def _error_lines(err):
    return [line for line in err.splitlines() if line.strip()]


def _models(family):
    return ["--light", str(family / "light"), "--heavy", str(family / "heavy")]


def _render(capsys, tmp_path, family, *args):
    started = time.perf_counter()
    code, err = _main(capsys, "render", "--prompt", "a red circle", "--out", str(tmp_path / "t.mp4"),
                      *_models(family), *args)
    assert time.perf_counter() - started < 10  # refused up front: nothing was loaded or rendered
    assert not (tmp_path / "t.mp4").exists()
    return code, err


@pytest.mark.parametrize("args, message", [
    # argparse printed its whole usage block and "main.py render: error: ..."
    (["--steps", "nan"], "error: argument --steps: invalid int value: 'nan' (see `main.py render --help`)"),
    (["--seed", "abc"], "error: argument --seed: invalid int value: 'abc'"),
    (["--mode", "bogus"], "error: argument --mode: invalid choice: 'bogus'"),
    (["--scheduler", "bogus"], "error: argument --scheduler: invalid choice: 'bogus'"),
    (["--size", "64x"], "error: argument --size: size must look like 832x480, got '64x'"),
    (["--cfg", ""], "error: argument --cfg: invalid float value: ''"),
    # a value starting with '-' was "expected one argument": now its own rule is named
    (["--cfg", "-inf"], "error: guidance_light must be finite, got -inf"),
    (["--cfg", "-1"], "error: guidance_light must be in [0.0, 50.0], got -1.0"),
    (["--handoff", "-0.1"], "error: handoff must be in [0.0, 1.0], got -0.1"),
    (["--gamma-w", "-inf"], "error: gamma_w must be finite, got -inf"),
    (["--size", "-16x-16"], "error: width must be between 16 and 2048, got -16"),
    (["--sigma-max", "-inf"], "error: upfb.sigma_max must be finite, got -inf"),
    # --shift was checked after the default hand-off had been placed at it: "handoff must be in [0, 1], got 1.12"
    (["--shift", "-1"], "error: --shift (the flow shift) must be a number from 0.01 to 100, got -1.0"),
    (["--shift", "nan"], "error: --shift (the flow shift) must be a number from 0.01 to 100, got nan"),
    (["--shift", "inf"], "error: --shift (the flow shift) must be a number from 0.01 to 100, got inf"),
    # silently ignored
    (["--plan", "a circle moves left", "--no-plan"], "error: --plan and --no-plan contradict each other"),
    (["--switch-step", "999"], "error: --switch-step applies to --mode switch only (this is --mode upfb)"),
    # found only after both generators had loaded (exit 1), or an internal error from torch
    (["--device", "meta"], "error: --device must be auto, cpu, cuda, cuda:N or mps, got 'meta'"),
    (["--dtype", "float64"], "error: --dtype must be auto, float32, bfloat16 or float16, got 'float64'"),
    (["--understanding", "/nonexistent-block"], "error: --understanding /nonexistent-block does not exist"),
    # "" quietly meant the embedded family (then a pair mismatch) or the default take.mp4 in the current folder
    (["--light", ""], "error: --light is empty"),
    (["--heavy", " "], "error: --heavy is empty"),
    (["--out", ""], "error: --out is empty"),
    # "Unexpected error (OSError): [Errno 36] File name too long"
    (["--out", "a" * 300 + ".mp4"], "error: --out's file name is 304 bytes long; at most 255 here"),
    # an invisible prompt, a NUL and bytes that are not UTF-8 reached the tokenizer or ffmpeg's command line
    (["--prompt", "\u200b\u200b\u2060"], "error: prompt must be a non-empty instruction"),
    (["--prompt", "a red\udcff circle"], "error: the prompt is not valid text: character 6 is not Unicode"),
    (["--negative", "blurry\x00"], "error: the negative prompt contains a NUL character"),
    (["--plan", "a\udcffb"], "error: the plan is not valid text"),
])
def test_bad_values_are_one_line_and_exit_2_before_loading(tmp_path, capsys, tiny_family, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    code, err = _render(capsys, tmp_path, tiny_family, *args)
    assert code == 2
    lines = _error_lines(err)
    assert len(lines) == 1 and lines[0].startswith(message), err
    assert list(tmp_path.iterdir()) == []


def test_understanding_that_is_a_file_is_refused_up_front(tmp_path, capsys, tiny_family):
    block = tmp_path / "block"
    block.write_text("x")
    code, err = _render(capsys, tmp_path, tiny_family, "--understanding", str(block))
    assert code == 2 and _error_lines(err) == [f"error: --understanding {block} is not a folder; give the block's "
                                               f"folder (lm/ and connector/) or 'none'"]


@pytest.mark.parametrize("role, file, changes, message", [
    # these built billions of layers (a hang, or 5 GB and a failed allocation) before anything failed
    ("light/transformer", "config.json", {"num_layers": 10**9}, "num_layers is 1000000000; a usable model has"),
    ("light/transformer", "config.json", {"attention_head_dim": 10**7}, "attention_head_dim is 10000000"),
    ("heavy/transformer", "config.json", {"ffn_dim": 10**10}, "ffn_dim is 10000000000"),
    ("light/transformer", "config.json", {"num_attention_heads": 1024, "attention_head_dim": 4096},
     "describes a model of about"),
    ("light/text_encoder", "config.json", {"num_layers": 10**7}, "num_layers is 10000000"),
    ("light/vae", "config.json", {"base_dim": 10**6}, "base_dim is 1000000"),
    ("light/vae", "config.json", {"base_dim": 4096, "dim_mult": [64, 64], "num_res_blocks": 64},
     "describes a model of about"),
    # the decoder may be wider than the encoder; a huge one must be refused like a huge encoder
    ("light/vae", "config.json", {"decoder_base_dim": 4096, "dim_mult": [64, 64], "num_res_blocks": 64},
     "describes a model of about"),
    ("light/transformer", "config.json", {"rope_max_seq_len": 10**12}, "rope_max_seq_len is 1000000000000"),
    # wrong types failed while loading (exit 1, a TypeError's words) or rendered with no layers at all
    ("light/transformer", "config.json", {"num_layers": "2"}, "num_layers is 2; a usable model has whole numbers"),
    ("light/transformer", "config.json", {"num_layers": -1}, "num_layers is -1"),
    ("light/transformer", "config.json", {"patch_size": "x"}, "patch_size is x"),
    ("light/vae", "config.json", {"dim_mult": [1, "x"]}, "dim_mult is [1, 'x']"),
    # a VAE whose scale factors are not the ones its layers make rendered clips of the wrong length, silently; latent
    # statistics of the wrong length failed mid-render with a reshape error
    ("light/vae", "config.json", {"scale_factor_temporal": 2}, "scale_factor_temporal is 2, but its layers scale by 4"),
    ("light/vae", "config.json", {"temperal_downsample": [False, False, True]},
     "scale_factor_temporal is 4, but its layers scale by 2"),
    ("light/vae", "config.json", {"scale_factor_spatial": 16}, "scale_factor_spatial is 16, but its layers scale by 8"),
    ("light/vae", "config.json", {"temperal_downsample": [True]}, "temperal_downsample has 1 entries"),
    ("light/vae", "config.json", {"temperal_downsample": "yes"}, "must be lists"),
    ("light/vae", "config.json", {"z_dim": 8}, "latents_mean must be 8 finite numbers, one per latent channel"),
    ("light/vae", "config.json", {"latents_std": [1.0] * 15 + [float("nan")]}, "latents_std must be 16 finite numbers"),
    ("light/vae", "config.json", {"latents_std": [1.0] * 15 + [0.0]}, "latents_std must be positive"),
    # lumos.json with wrong kinds: "Unexpected error (ValueError)", or "width must be a whole number" for a width
    # nobody typed
    (".", "lumos.json", {"flow_shift": "x"}, "lumos.json: flow_shift must be a number from 0.01 to 100.0, got 'x'"),
    (".", "lumos.json", {"width": "abc"}, "lumos.json: width must be a whole number from 16 to 2048, got 'abc'"),
    (".", "lumos.json", {"max_sequence_length": 10**12}, "lumos.json: max_sequence_length must be a whole number"),
    (".", "lumos.json", {"handoff": float("nan")}, "lumos.json: handoff must be a number from 0.0 to 1.0, got nan"),
])
def test_damaged_model_configs_are_refused_before_loading(tmp_path, capsys, tiny_family, role, file, changes,
                                                          message):
    family = tmp_path / "family"
    shutil.copytree(tiny_family, family)
    path = family / role / file
    config = json.loads(path.read_text()) if path.exists() else {}
    config.update(changes)
    path.write_text(json.dumps(config))
    out = tmp_path / "t.mp4"
    started = time.perf_counter()
    code, err = _main(capsys, "render", "--prompt", "a red circle", "--out", str(out), *_models(family))
    assert time.perf_counter() - started < 10
    lines = _error_lines(err)
    assert code == 2 and len(lines) == 1 and message in lines[0], err
    assert not out.exists()


def test_texts_that_no_model_can_read_are_request_errors():
    base = RenderRequest(prompt="a red circle", steps=2, num_frames=5, width=32, height=32)
    for changes in ({"prompt": " \u200b\u00a0\u2060\x01 "}, {"prompt": "a\x00b"}, {"negative_prompt": "x\x00"},
                    {"plan": "\x00"}, {"prompt": "a\ud800"}):
        with pytest.raises(RequestError):
            check_request(base.replace(**changes))
    assert check_request(base.replace(prompt="ein roter Kreis 🔴 — 赤い円", negative_prompt="\t")).prompt


def _crafted(tmp_path, name, request_changes):
    request = {"prompt": "a red circle", "steps": 2, "num_frames": 5, "width": 32, "height": 32, "mode": "light",
               **request_changes}
    return export_mp4(np.zeros((5, 16, 16, 3), np.uint8), tmp_path / name, metadata={"request": request})


@pytest.mark.parametrize("changes, message", [
    ({"prompt": "a\x00b"}, "the prompt contains a NUL character"),
    ({"prompt": "\u200b"}, "prompt must be a non-empty instruction"),
])
def test_reproduce_refuses_unreadable_texts_from_a_file(tmp_path, capsys, changes, message):
    crafted = _crafted(tmp_path, "crafted.mp4", changes)
    code, err = _main(capsys, "reproduce", str(crafted), "--out", str(tmp_path / "o.mp4"))
    assert code == 2 and len(_error_lines(err)) == 1 and message in err
    assert not (tmp_path / "o.mp4").exists()


def _video_with_comment(path, comment: bytes):
    """A tiny MP4 whose comment tag is `comment` as given (ffmpeg's own -metadata, not our exporter)."""
    import subprocess

    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-v", "error", "-f", "lavfi", "-i",
                    "color=c=red:s=16x16:d=0.2", "-pix_fmt", "yuv420p", "-metadata", b"comment=" + comment, str(path)],
                   check=True, timeout=60)
    return path


@pytest.mark.parametrize("make, message", [
    # ffmpeg's three-line complaint came through, and a folder or /dev/null was "no such file"
    (lambda p: (p.write_text("not a video"), p)[1], "t.mp4 is not a readable video (Error opening input files: "),
    (lambda p: (p.write_bytes(b""), p)[1], "t.mp4 is not a readable video ("),
    (lambda p: (p.mkdir(), p)[1], "t.mp4 is not a file; give an MP4 exported by Lumos Studio"),
    # "Unexpected error (ValueError / RecursionError / UnicodeDecodeError)", exit 1
    (lambda p: _video_with_comment(p, b'lumos-take:{"request": {"prompt": "x", "steps": ' + b"9" * 5000 + b"}}"),
     "t.mp4's Lumos Studio metadata is damaged: Exceeds the limit (4300 digits)"),
    (lambda p: _video_with_comment(p, b'lumos-take:{"request": {"prompt": "x", "plan": ' + b"[" * 30000
                                   + b"]" * 30000 + b"}}"),
     "t.mp4's Lumos Studio metadata is damaged: its values are nested too deeply"),
    (lambda p: _video_with_comment(p, b'lumos-take:{"request": {"prompt": "\xff\xfe"}}'),
     "t.mp4's Lumos Studio metadata is damaged: it is not UTF-8 text"),
    # damaged JSON was "carries no Lumos Studio take metadata"
    (lambda p: _video_with_comment(p, b"lumos-take:{not json"), "t.mp4's Lumos Studio metadata is damaged: Expecting"),
    (lambda p: _video_with_comment(p, b"lumos-take:[1, 2]"), "t.mp4's Lumos Studio metadata is damaged: it is not a JSON"),
    # a duplicated key left the prompt a number: "prompt must be a non-empty instruction"
    (lambda p: _video_with_comment(p, b'lumos-take:{"request": {"prompt": "x", "prompt": 5}}'),
     "prompt must be text, got 5"),
    # a huge number was printed whole
    (lambda p: _video_with_comment(p, b'lumos-take:{"request": {"prompt": "x", "width": 1e300}}'),
     "width must be between 16 and 2048, got 100000000000000005250476025520442024870446858110815915491..."),
])
def test_reproduce_refuses_damaged_files_with_one_line(tmp_path, capsys, make, message):
    crafted = make(tmp_path / "t.mp4")
    out = tmp_path / "o.mp4"
    code, err = _main(capsys, "reproduce", str(crafted), "--out", str(out))
    lines = _error_lines(err)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert len(lines[0]) < 200 and not out.exists()


def test_scale_is_checked_with_the_size_before_rendering(tmp_path, capsys, tiny_family):
    """--scale 16 at 1024x512 passed both checks and upscaled the whole take in memory after the render (81 frames
    of 832x480 at 16x: 25 GB); now the encoded size is bounded up front, and frames are upscaled one at a time."""
    code, err = _render(capsys, tmp_path, tiny_family, "--size", "1024x512", "--scale", "16")
    assert code == 2 and _error_lines(err) == [
        "error: a 1024x512 take at scale 16 would be 16384x8192; exports are at most 8192 pixels wide and high: "
        "use a smaller scale"]
    from engine.export import read_metadata

    out = export_mp4(np.zeros((3, 16, 16, 3), np.uint8), tmp_path / "big.mp4", scale=16, metadata={"request": {}})
    assert out.is_file() and read_metadata(out) == {"request": {}}


def test_ctrl_c_while_the_cli_imports_is_a_cancel_not_a_traceback(monkeypatch, capsys):
    import builtins

    import main as entry

    real_import = builtins.__import__

    def interrupted(name, *args, **kwargs):
        if name == "engine.cli":
            raise KeyboardInterrupt
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted)
    assert entry.main(["render", "--prompt", "x"]) == 130
    assert capsys.readouterr().err.strip() == "cancelled"


def test_a_model_folder_that_is_a_loop_of_links_says_so(tmp_path, capsys, tiny_family):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")  # was "model folder not found"
    code, err = _main(capsys, "render", "--prompt", "x", "--light", str(tmp_path / "a"), "--heavy",
                      str(tiny_family / "heavy"), "--out", str(tmp_path / "t.mp4"))
    assert code == 2 and _error_lines(err) == [f"error: {tmp_path / 'a'} is a link to nothing (a broken link, or a "
                                               f"loop of links); choose the model's folder"]
