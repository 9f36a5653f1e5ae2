"""bench/mode_pool.map_modes: every mode's result comes back in the modes' order, whatever the process count."""

import os

from bench.mode_pool import map_modes


def _label(prefix: str, share: list[int]) -> list[tuple[str, int, int]]:
    return [(prefix, m, os.getpid()) for m in share]


def test_results_follow_the_modes_order_in_one_process_and_in_two():
    modes = [5, 3, 8, 1, 9]
    alone = map_modes(_label, ("x",), modes, 1)
    assert [r[:2] for r in alone] == [("x", m) for m in modes]
    assert {r[2] for r in alone} == {os.getpid()}
    two = map_modes(_label, ("y",), modes, 2)
    assert [r[:2] for r in two] == [("y", m) for m in modes]
    # The pool may hand both shares to one worker when the first finishes fast, so only "not here" is certain.
    assert os.getpid() not in {r[2] for r in two}


def test_more_jobs_than_modes_runs_one_process_a_mode():
    assert [r[1] for r in map_modes(_label, ("z",), [4, 2], 5)] == [4, 2]
