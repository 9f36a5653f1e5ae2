"""bench.vrbench: scoring, target checks, table and plot work on a fake generator (no models, no torch)."""

import numpy as np

from bench.vrbench import Mode, modes, run
from engine.miniworld import render


class GroundTruthGenerator:
    """Returns the procedural ground truth for light-led modes and a frozen first frame for heavy."""

    def __init__(self):
        from engine.miniworld import bench_set

        self.scenes = {ex.instruction: ex.scene for ex, _ in bench_set()}

    def request(self, prompt, seed, m):
        return (prompt, m)

    def generate(self, req):
        prompt, m = req
        clip = render(self.scenes[prompt])
        if m.mode == "heavy":
            clip = np.repeat(clip[:1], len(clip), axis=0)
        return clip

    def generate_many(self, reqs):
        return [self.generate(r) for r in reqs]


def test_bench_run_on_fake_generator(tmp_path):
    ml = [Mode("light", "light"), Mode("heavy", "heavy"), Mode("upfb s=0.5", "upfb", handoff=0.5)]
    report = run(GroundTruthGenerator(), 1, ml, tmp_path, log=lambda *_: None)
    rows = {r["mode"]: r for r in report["results"]}
    assert rows["light"]["instruction_all"] == 1.0 and rows["light"]["detail"] > 0.99
    assert rows["heavy"]["instruction_reasoning"] < 0.9
    assert report["instructions"] == 6
    assert (tmp_path / "vrbench.png").stat().st_size > 1000
    assert "| light |" in (tmp_path / "vrbench.md").read_text()
    assert report["targets"]["light_reasoning_ge_0.8"]


def test_mode_list_covers_every_baseline():
    names = [m.name for m in modes(20)]
    assert "light" in names and "heavy" in names
    assert sum(m.mode == "switch" for m in modes(20)) >= 3
    assert any(m.mode == "upfb" and m.light_lead > 0 for m in modes(20))
    assert any(m.mode == "upfb" and m.light_lead == 0 for m in modes(20))
