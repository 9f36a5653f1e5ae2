"""Understanding on the GPU (`pytest -m gpu tests/gpu`; skipped without CUDA, never in CI): a plain pair's planner
visits the card only while it writes, and the authors' released family (reduced, random-init copy in the release's
layout) loads and renders on CUDA. Figures go to $LUMOS_GPU_REPORT as JSON lines when that is set."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from .report import report

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]



def _request(**kw):
    from engine.api import RenderRequest

    base = dict(prompt="a small red striped circle moves to the left", width=32, height=32, num_frames=5, steps=3,
                seed=1, mode="upfb", handoff=0.5)
    return RenderRequest(**{**base, **kw})


def test_a_pairs_planner_writes_on_the_card_then_leaves_it(tiny_family, tmp_path):
    from devtools.tiny_models import build_tiny_planner
    from engine.api import ModelSpec
    from engine.planner import planner_of
    from engine.runtime import Runtime

    planner_dir = build_tiny_planner(tmp_path / "planner")
    rt = Runtime(cache_bytes=0)
    rt.load(ModelSpec(light=str(tiny_family / "light"), heavy=str(tiny_family / "heavy"), planner=str(planner_dir),
                      understanding="none", device="cuda", dtype="float32"))
    take = rt.render(_request())
    planner = planner_of(rt.models)
    record = take.metadata["planner"]
    devices = {p.device.type for p in planner.model.parameters()}
    report(test="planner_cuda", source=record.get("source"), fell_back=record.get("fell_back"),
           planner_devices=sorted(devices), frames_std=float(np.asarray(take.frames, np.float32).std()))
    assert record["source"] == "planner" and not record["fell_back"], record
    assert devices == {"cpu"}  # back in host memory: the generators keep the card
    assert np.isfinite(np.asarray(take.frames, np.float32)).all()


def test_the_released_family_renders_on_cuda(tmp_path):
    from devtools.nexus_release_layout import build_release
    from engine.api import ModelSpec
    from engine.nexus.convert import convert_bundle
    from engine.runtime import Runtime

    root = build_release(tmp_path / "raw")
    convert_bundle(root / "bundle", say=lambda *_: None)
    spec = ModelSpec(light=str(root / "bundle"), heavy=str(root / "wan14b"), family="lumos-nexus", device="cuda")
    rt = Runtime(cache_bytes=0)
    rt.load(spec)
    take = rt.render(_request(prompt="a red ball rolls left", guidance_light=6.0, guidance_heavy=6.0))
    frames = np.asarray(take.frames, np.float32)
    report(test="nexus_cuda", device=take.metadata.get("device"), dtype=take.metadata.get("dtype"),
           conditioning=take.metadata.get("conditioning"), std=float(frames.std()))
    assert take.metadata["device"].startswith("cuda")
    assert frames.shape == (5, 32, 32, 3) and np.isfinite(frames).all()
    shutil.rmtree(root, ignore_errors=True)
