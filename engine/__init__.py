"""Lumos Studio's generation engine: no Qt, usable headless. The public surface is `engine.api`."""

__version__ = "0.1.0"
