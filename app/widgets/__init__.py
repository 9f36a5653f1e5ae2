"""The window's parts. Each widget binds to plain values and emits signals; none talks to the engine."""
