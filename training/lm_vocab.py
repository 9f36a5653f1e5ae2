"""The understanding LM's own tokenizer for free phrasing: clear synonyms read as the world's words, and every
other word the family is trained on as one piece.

The world's tokenizer (stage_text) has a piece per word of the template language and spells any other word in
letters. A 4-layer LM fine-tuned for ~1 hour learnt letter-spelt words slowly (a third of fresh training phrasings
right after 1400 steps), so the LM's copy of the tokenizer (``understanding/lm/``) gets
* a normalizer that rewrites clear synonyms to the world's word (ball → circle, checkered → checked, upper → top),
  so they need no learning at all, and
* one Unigram piece per remaining training word (drifts, slides, rises, please …), appended after the existing
  pieces, so old ids keep their meaning and the LM only grows new embedding rows.
Held-out words (miniworld.phrasing_pools' held-out entries) stay spelt in letters. The text encoder keeps the
world's tokenizer (light/tokenizer), so the heavy generator and every text embedding are unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

from miniworld.phrasing import KNOWN_WORDS

# Training synonyms whose meaning is one world word (plurals included), rewritten before tokenizing.
SYNONYMS = {"ball": "circle", "balls": "circles", "box": "square", "boxes": "squares", "block": "square",
            "blocks": "squares", "large": "big", "little": "small", "stripy": "striped", "checkered": "checked",
            "spotted": "dotted", "solid": "plain", "grey": "gray", "centre": "center", "middle": "center",
            "upper": "top", "lower": "bottom", "sandy": "sand", "huge": "big", "tiny": "small"}
NEW_PIECE_SCORE = -10.0  # below the world's common words, far above letters (-20 each)
MARK = "lumos_phrasing_vocab"  # set in tokenizer_config.json once extended


def extend(folder: Path):
    """Extend the tokenizer saved in ``folder`` and return it loaded. Idempotent; a tokenizer extended before gets
    the synonyms and pieces added since (pieces are only appended, so its ids keep their meaning)."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    folder = Path(folder)
    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    cfg_path = folder / "tokenizer_config.json"
    marked = json.loads(cfg_path.read_text()).get(MARK)
    spec = json.loads(tok.backend_tokenizer.to_str())
    base = spec["normalizer"]["normalizers"][0] if marked else spec["normalizer"]
    rules = [{"type": "Replace", "pattern": {"Regex": rf"\b{w}\b"}, "content": c} for w, c in SYNONYMS.items()]
    normalizer = {"type": "Sequence", "normalizers": [base, *rules]}
    have = {p for p, _ in spec["model"]["vocab"]}
    missing = ["\u2581" + w for w in sorted(KNOWN_WORDS - set(SYNONYMS)) if "\u2581" + w not in have]
    if marked and not missing and normalizer == spec["normalizer"]:
        return tok
    spec["normalizer"] = normalizer
    spec["model"]["vocab"] += [[piece, NEW_PIECE_SCORE] for piece in missing]
    new = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)), pad_token="<pad>",
                                  eos_token="</s>", unk_token="<unk>", mask_token="<mask>",
                                  additional_special_tokens=["<plan>"])
    assert [new.convert_tokens_to_ids(t) for t in ("<pad>", "</s>", "<plan>")] == \
        [tok.convert_tokens_to_ids(t) for t in ("<pad>", "</s>", "<plan>")]
    new.save_pretrained(folder)
    cfg = json.loads(cfg_path.read_text())
    cfg[MARK] = True
    cfg_path.write_text(json.dumps(cfg, indent=2))
    return AutoTokenizer.from_pretrained(folder, local_files_only=True)
