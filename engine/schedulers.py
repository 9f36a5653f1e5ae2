"""Fresh flow-matching schedulers, one per run (they keep state: never share an instance between runs)."""

from __future__ import annotations


def make_scheduler(kind: str = "unipc", flow_shift: float = 5.0, base_config: dict | None = None):
    """A new scheduler of `kind` ("unipc" as Wan ships, or "euler"), with `flow_shift` applied.

    base_config: the model folder's own scheduler config, when it has one (its class decides nothing here:
    `kind` does, so that A/B runs differ only in what was asked).
    """
    from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

    if kind == "unipc":
        cfg = dict(base_config or {})
        if cfg.get("_class_name") != "UniPCMultistepScheduler":
            cfg = {}
        cfg.update(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=float(flow_shift))
        cfg.setdefault("num_train_timesteps", 1000)
        return UniPCMultistepScheduler.from_config(cfg)
    if kind == "euler":
        return FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=float(flow_shift))
    raise ValueError(f"scheduler must be 'unipc' or 'euler', got {kind!r}")
