"""bench/vae_ceiling: a VAE's detail room, from a saved folder or from a stage_vae checkpoint of either layout."""

import numpy as np

from bench.vae_ceiling import load_vae, measure


def test_a_checkpoint_loads_with_its_runs_layout_and_is_measured(tmp_path):
    from bench.vrbench import bench_items
    from miniworld.render import render
    from training.stage_vae import main

    run = tmp_path / "run"
    main(["--tiny", "--run", str(run), "--spatial", "4", "--vae-texture-steps", "0", "--vae-settle-steps", "0"])
    vae, name = load_vae(run / "vae" / "ckpt.pt")
    assert vae.config.scale_factor_spatial == 4 and "step" in name
    items = [it for it in bench_items(None) if it[0].category == "explicit"][:2]
    truth = np.stack([render(ex.scene) for ex, _ in items])
    got = measure(vae, items, truth)
    assert got["spatial"] == 4
    assert 0.0 <= got["score"] < 0.9  # a VAE of a few steps keeps little detail: far below the truth's 1.0
    assert abs(got["score"] - (got["shapes"] + got["background"]) / 2) < 1e-9  # the score's two halves
    saved, _ = load_vae(run / "export" / "vae")
    assert measure(saved, items, truth)["score"] < 0.9
