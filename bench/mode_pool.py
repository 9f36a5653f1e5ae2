"""Modes spread over processes: small models use one core well, so two processes use two."""

from __future__ import annotations

from typing import Callable, Sequence


def map_modes(worker: Callable, args: tuple, mode_list: Sequence, jobs: int) -> list:
    """``worker(*args, share)`` in ``jobs`` spawned processes, share i being every jobs-th mode from the i-th (a
    worker returns one result per mode of its share, in order); the results in ``mode_list``'s order."""
    jobs = max(1, min(jobs, len(mode_list)))
    shares = [list(mode_list[i::jobs]) for i in range(jobs)]
    if jobs == 1:
        parts = [worker(*args, shares[0])]
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn")) as pool:
            parts = list(pool.map(worker, *[[a] * jobs for a in args], shares))
    out = [None] * len(mode_list)
    for i, part in enumerate(parts):
        for k, result in enumerate(part):
            out[i + k * jobs] = result
    return out
