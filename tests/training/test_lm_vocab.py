"""The LM's phrasing tokenizer (training/lm_vocab.py): synonyms read as world words, training words as one piece,
held-out words still spelt, and the template language tokenized exactly as before (old ids keep their meaning)."""

import shutil

import pytest

from miniworld import CATEGORIES, sample_example
from training.common import FAMILY_DIR


@pytest.fixture(scope="module")
def toks(tmp_path_factory):
    from transformers import AutoTokenizer

    from training.lm_vocab import extend

    d = tmp_path_factory.mktemp("tok") / "lm"
    d.mkdir()
    base = FAMILY_DIR / "light" / "tokenizer"  # the world's tokenizer, as stage_text wrote it (the text encoder's)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(base / name, d / name)
    old = AutoTokenizer.from_pretrained(base, local_files_only=True)
    extend(d)
    return old, extend(d)  # twice: idempotent


def test_template_language_keeps_its_ids(toks):
    import numpy as np

    old, new = toks
    rng = np.random.default_rng(0)
    for c in CATEGORIES:
        ex = sample_example(rng, c)
        for text in (ex.instruction, ex.plan):
            assert old(text).input_ids == new(text).input_ids


def test_synonyms_and_training_words_are_pieces_heldout_words_are_not(toks):
    _, new = toks
    assert new.tokenize("A Ball in the upper left drifts") == ["▁a", "▁circle", "▁in", "▁the", "▁top", "▁left",
                                                             "▁drifts"]
    assert "▁leftwards" not in new.get_vocab() and "▁while" not in new.get_vocab()
    assert len(new) > len(toks[0])
