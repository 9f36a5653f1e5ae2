"""Moved to `devtools.tiny_models` (shared by tests and bench); this alias stays only until tests/app imports it
from there."""

from devtools.tiny_models import *  # noqa: F401,F403
