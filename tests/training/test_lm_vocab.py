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


def test_an_extended_tokenizer_takes_later_words_and_synonyms_keeping_its_ids(toks, tmp_path, monkeypatch):
    """The shipped LM's tokenizer was extended before the word pools grew: extending it again appends the new
    words' pieces and rebuilds the synonym rules, and every id it had keeps its meaning."""
    from transformers import AutoTokenizer

    from training import lm_vocab

    _, first = toks
    d = tmp_path / "lm"
    d.mkdir()
    first.save_pretrained(d)
    for name in ("tokenizer_config.json",):  # the mark that says it was extended
        shutil.copy(first.name_or_path + "/" + name, d / name)
    monkeypatch.setattr(lm_vocab, "KNOWN_WORDS", lm_vocab.KNOWN_WORDS | {"zooms"})
    monkeypatch.setattr(lm_vocab, "SYNONYMS", {**lm_vocab.SYNONYMS, "orb": "circle"})
    again = lm_vocab.extend(d)
    assert again.tokenize("a orb zooms") == ["▁a", "▁circle", "▁zooms"]
    assert all(again.convert_tokens_to_ids(p) == i for p, i in first.get_vocab().items())
    assert len(again) == len(first) + 1
    assert AutoTokenizer.from_pretrained(d, local_files_only=True).tokenize("a orb") == ["▁a", "▁circle"]
