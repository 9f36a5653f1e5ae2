"""Which words of an instruction a family knows, from its files alone (no torch, no weights).

A mini family (one with its own small understanding LM) only understands the words it was trained on: its
lumos.json ``vocabulary`` (every word of its training language, sorted) when present, otherwise the whole-word pieces
of its understanding LM's tokenizer. A real family (no such block, or a tokenizer of a general language) understands
any words: nothing is unknown. Reads are cached per file and its modification time, so a window may ask as the user
types.
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

from .errors import ModelError
from .models import FAMILY_FILE, ModelSpec, default_spec_sources, family_dir_of, inspect_source
from .plan_grammar import GRAMMAR_FILE, PlanGrammar

# A world tokenizer is small; a general language's (T5, Llama: 32k+) means the family reads any words.
MAX_WORLD_VOCAB = 4096
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def instruction_words(text: str) -> list[tuple[str, int, int]]:
    """(lower-case word, start, end) for each word of ``text`` (letters; case and punctuation ignored)."""
    return [(m.group().lower(), m.start(), m.end()) for m in _WORD.finditer(unicodedata.normalize("NFC", text))]


def family_folder(spec_or_family) -> Path | None:
    """The family folder of a ModelSpec (its light source's family; None: the embedded one) or a folder path."""
    if isinstance(spec_or_family, ModelSpec):
        try:
            return family_dir_of(inspect_source(default_spec_sources(spec_or_family)[0]))
        except ModelError:
            return None
    folder = Path(spec_or_family)
    return folder if (folder / FAMILY_FILE).is_file() else None


def _stamp(path: Path) -> float | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


@lru_cache(maxsize=32)
def _vocabulary(folder: str, family_stamp, tokenizer_stamp) -> frozenset | None:
    folder = Path(folder)
    try:
        data = json.loads((folder / FAMILY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    words = data.get("vocabulary") if isinstance(data, dict) else None
    if isinstance(words, list) and words:
        return frozenset(str(w).lower() for w in words if isinstance(w, str))
    try:
        tokenizer = json.loads((folder / "understanding" / "lm" / "tokenizer.json").read_text(encoding="utf-8"))
        vocab = tokenizer["model"]["vocab"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no understanding block of its own: a real family
    pieces = [v[0] if isinstance(v, list) else v for v in (vocab.items() if isinstance(vocab, dict) else vocab)]
    if len(pieces) > MAX_WORLD_VOCAB:
        return None
    out = set()
    for piece in pieces:
        if isinstance(piece, str) and piece[:1] in ("\u2581", "\u0120"):
            word = piece[1:].lower()
            if word.isalpha() and (len(word) > 1 or word == "a"):  # single letters are the spelling fallback
                out.add(word)
    return frozenset(out) or None


def family_vocabulary(spec_or_family) -> frozenset | None:
    """Every word the family knows (lower case), or None when it understands any words."""
    folder = family_folder(spec_or_family)
    if folder is None:
        return None
    tok = folder / "understanding" / "lm" / "tokenizer.json"
    return _vocabulary(str(folder), _stamp(folder / FAMILY_FILE), _stamp(tok))


def _known(word: str, vocab: frozenset) -> bool:
    if word in vocab:
        return True
    for end, base in (("ies", "y"), ("es", ""), ("s", "")):  # plurals of known nouns
        if word.endswith(end) and len(word) > len(end) + 1 and word[: -len(end)] + base in vocab:
            return True
    return False


def unknown_words(spec_or_family, instruction: str) -> list[str]:
    """The words of ``instruction`` the family does not know, lower case, each once, in order ([] for a family that
    understands any words). spec_or_family: a ModelSpec or a family folder."""
    vocab = family_vocabulary(spec_or_family)
    if not vocab:
        return []
    out: list[str] = []
    for word, _, _ in instruction_words(instruction):
        if not _known(word, vocab) and word not in out:
            out.append(word)
    return out


@lru_cache(maxsize=32)
def _grammar(folder: str, stamp):
    try:
        return PlanGrammar.load(Path(folder))
    except (OSError, ValueError):
        return None


def instruction_limits(spec_or_family, instruction: str) -> list[str]:
    """What ``instruction`` asks that this family's plans cannot hold ("two red squares" where a plan has one shape
    per colour, more shapes than it draws), one sentence each; [] for a family without a plan grammar."""
    folder = family_folder(spec_or_family)
    if folder is None:
        return []
    understanding = folder / "understanding"
    grammar = _grammar(str(understanding), _stamp(understanding / GRAMMAR_FILE))
    return grammar.limits(instruction) if grammar is not None else []
