"""UPFB's temporal semantic gate (docs/design.md §2 step 2), torch-free so that the UI can plot it without torch."""

from __future__ import annotations

import math


def gate(t: float, gamma_w: float) -> float:
    """w_t = 1/2 (1 + cos(pi (1 - tau)^gamma_w)), tau = clamp(t / 999, 0, 1): 1 at pure noise (t = 999), 0 at the end.

    gamma_w = inf is the draft: the light generator alone at every step (w = 1 throughout).
    """
    if gamma_w == math.inf:
        return 1.0
    tau = min(max(float(t) / 999.0, 0.0), 1.0)
    return 0.5 * (1.0 + math.cos(math.pi * (1.0 - tau) ** gamma_w))
