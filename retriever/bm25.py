"""BM25 over skill texts (bm25s), with a tokenizer that splits code-style names.

Skill names and API names are often ``kebab-case``, ``snake_case`` or ``camelCase``; the tokenizer
splits them into words, lowercases, drops English stopwords and strips common suffixes, so
``show_playlist`` matches "showing playlists".
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

STOPWORDS = frozenset(
    "a an and are as at be been but by can could did do does for from had has have how i if in into is it its "
    "me my of on or our please should so than that the their them then there these they this to up was we "
    "what when where which while who why will with would you your".split()
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORD = re.compile(r"[a-z0-9]+")


def _stem(word: str) -> str:
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: -len(suffix)] + repl
    return word


def tokenize(text: str) -> list[str]:
    """Words of ``text``: code identifiers split, lowercased, stopwords removed, lightly stemmed."""
    text = _CAMEL.sub(" ", text)
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


class BM25Index:
    """BM25 (Lucene variant) over a list of ids and texts; rebuilt lazily after changes."""

    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self._texts: dict[str, list[str]] = {}
        self._ids: list[str] = []
        self._model = None

    def __len__(self) -> int:
        return len(self._texts)

    def add(self, ids: Sequence[str], texts: Sequence[str]) -> None:
        """Add (or replace) documents."""
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids but {len(texts)} texts")
        for doc_id, text in zip(ids, texts):
            self._texts[str(doc_id)] = tokenize(text)
        self._model = None

    def remove(self, ids: Sequence[str]) -> int:
        """Remove documents; returns how many existed."""
        removed = sum(self._texts.pop(str(i), None) is not None for i in ids)
        if removed:
            self._model = None
        return removed

    def _build(self) -> None:
        import bm25s

        self._ids = list(self._texts)
        model = bm25s.BM25(k1=self.k1, b=self.b)
        # an empty document list breaks bm25s; a placeholder token keeps every doc indexable
        model.index([toks or ["\x00"] for toks in self._texts.values()], show_progress=False)
        self._model = model

    def search(self, queries: Sequence[str], k: int = 10,
               allowed: set[str] | None = None) -> list[list[tuple[str, float]]]:
        """Top-k ``(id, score)`` per query, best first; documents with score 0 are left out."""
        if not self._texts:
            return [[] for _ in queries]
        if self._model is None:
            self._build()
        mask = None
        if allowed is not None:
            mask = np.fromiter((i in allowed for i in self._ids), np.float32, len(self._ids))
        k = min(k, len(self._ids))
        tokens = [tokenize(q) or ["\x01"] for q in queries]
        docs, scores = self._model.retrieve(tokens, k=k, show_progress=False, weight_mask=mask, n_threads=1)
        out = []
        for row_docs, row_scores in zip(docs.tolist(), scores.tolist()):
            out.append([(self._ids[d], float(s)) for d, s in zip(row_docs, row_scores) if s > 0])
        return out
