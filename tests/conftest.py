"""Shared fixtures: tiny models in the real diffusers layout, built once per test session."""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def tiny_family(tmp_path_factory) -> Path:
    from tests.tiny_models import build_tiny_family

    return build_tiny_family(tmp_path_factory.mktemp("tiny-family"))


@pytest.fixture(scope="session")
def tiny_spec(tiny_family):
    from engine.api import ModelSpec

    return ModelSpec(light=str(tiny_family / "light"), heavy=str(tiny_family / "heavy"))
