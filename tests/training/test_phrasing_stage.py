"""The free-phrasing fine-tune (training/stage_phrasing.py) runs in seconds on a tiny budget from the shipped family,
resumes, and writes a whole family with its vocabulary."""

import json
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from training.stage_phrasing import main

    root = tmp_path_factory.mktemp("phrasing")
    main(["--tiny", "--run", str(root / "run"), "--out", str(root / "family")])
    return root


def test_both_stages_finish_from_the_shipped_weights(tiny):
    run = tiny / "run"
    assert json.loads((run / "seeded_from.json").read_text())["family"].endswith("lumos-mini")
    for stage in ("lm_phrasing", "light_phrasing"):
        info = json.loads((run / stage / "done.json").read_text())
        assert info["wall_s"] > 0 and info["steps"] == 2
    rows = [json.loads(x) for x in next((run / "data").glob("phrasing_corpus_*.jsonl")).read_text().splitlines()]
    assert 0 < sum(bool(r.get("phrased")) for r in rows) < len(rows)


def test_family_has_new_weights_and_vocabulary(tiny):
    from training.stage_phrasing import family_vocabulary

    fam = tiny / "family"
    for sub in ("light/transformer", "heavy/transformer", "light/vae", "understanding/lm", "understanding/connector"):
        assert (fam / sub).is_dir()
    cfg = json.loads((fam / "lumos.json").read_text())
    assert cfg["vocabulary"] == family_vocabulary()
    metrics = json.loads((fam / "training_metrics.json").read_text())
    assert metrics["lm_phrasing"]["steps"] == 2 and metrics["light_phrasing"]["steps"] == 2


def test_the_fine_tuned_family_plans(tiny):
    from engine.understanding import UnderstandingBlock

    block = UnderstandingBlock.from_pretrained(tiny / "family" / "understanding")
    assert isinstance(block.plan("a red ball goes up"), str)


def test_finished_stages_are_skipped(tiny):
    from training.common import Budget, Run
    from training.stage_phrasing import train

    run = Run(root=tiny / "run", budget=Budget.tiny(), name="tiny")
    before = (tiny / "run" / "lm_phrasing" / "done.json").read_text()
    train(run)
    assert (tiny / "run" / "lm_phrasing" / "done.json").read_text() == before


def test_shipped_family_lists_its_vocabulary():
    from miniworld.phrasing import KNOWN_WORDS
    from training.common import FAMILY_DIR
    from training.grammar_file import reader_words

    cfg = json.loads((FAMILY_DIR / "lumos.json").read_text())
    assert set(cfg["vocabulary"]) == KNOWN_WORDS | reader_words()  # trained words, and those the reader maps
    assert {"polka", "budge", "hops"} <= set(cfg["vocabulary"]) and "polka dots" not in cfg["vocabulary"]


def test_noise_words_are_inserted_between_the_words_and_keep_them_in_order():
    import numpy as np

    from training.stage_phrasing import with_noise

    rng = np.random.default_rng(0)
    text = "a red circle moves left"
    for _ in range(50):
        noisy = with_noise(text, rng).split(" ")
        assert 1 <= len(noisy) - 5 <= 4 and noisy[0] == "a"  # one or two entries ("little bit"), never first
        it = iter(noisy)
        assert all(w in it for w in text.split())  # the original words, in order
