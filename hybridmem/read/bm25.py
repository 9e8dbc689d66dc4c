"""BM25 over the natural-language renderings of a scope's relations (rank-bm25)."""

from __future__ import annotations

from rank_bm25 import BM25Okapi

from hybridmem.text import content_tokens, tokenize


class RelationBM25:
    """A BM25 model over every active relation of one scope.

    Built over the scope's whole relation corpus (not over a handful of retrieved
    triples), so IDF says how rare a word is among everything the user told us.
    """

    def __init__(self, documents: list[tuple[str, str]]) -> None:
        self._ids = [doc_id for doc_id, _ in documents]
        corpus = [tokenize(text) or ["_"] for _, text in documents]
        self._model = BM25Okapi(corpus, k1=1.2, b=0.75) if corpus else None

    def scores(self, query: str) -> dict[str, float]:
        """Relation id -> BM25 score, for relations sharing a content word with the query."""
        if self._model is None:
            return {}
        tokens = list(dict.fromkeys(content_tokens(query)))
        if not tokens:
            return {}
        raw = self._model.get_scores(tokens)
        return {self._ids[i]: float(s) for i, s in enumerate(raw) if s > 0}
