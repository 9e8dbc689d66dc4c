"""BM25 over the natural-language renderings of a scope's relations (rank-bm25)."""

from __future__ import annotations

import math

from rank_bm25 import BM25Okapi

from hybridmem.text import content_stems, stems


class RelationBM25:
    """A BM25 model over every active relation of one scope.

    Built over the scope's whole relation corpus (not over a handful of retrieved
    triples), so IDF says how rare a word is among everything the user told us.
    """

    def __init__(self, documents: list[tuple[str, str]]) -> None:
        self._ids = [doc_id for doc_id, _ in documents]
        corpus = [stems(text) or ["_"] for _, text in documents]
        self._model = _PositiveIDF(corpus, k1=1.2, b=0.75) if corpus else None

    def scores(self, query: str) -> dict[str, float]:
        """Relation id -> BM25 score, for relations sharing a content word with the query."""
        if self._model is None:
            return {}
        tokens = list(dict.fromkeys(content_stems(query)))
        if not tokens:
            return {}
        raw = self._model.get_scores(tokens)
        return {self._ids[i]: float(s) for i, s in enumerate(raw) if s > 0}


class _PositiveIDF(BM25Okapi):
    """Okapi BM25 with Lucene's IDF, `log(1 + (N - n + 0.5) / (n + 0.5))`. rank-bm25's
    default IDF is 0 or negative for a word in half the documents or more, floored to a
    tiny epsilon: in a user's small relation corpus (4 sentences, "Bob" in 2) every
    word then scored ~0 and relations of one sentence could not be told apart."""

    def _calc_idf(self, nd: dict[str, int]) -> None:
        for word, freq in nd.items():
            self.idf[word] = math.log(1 + (self.corpus_size - freq + 0.5) / (freq + 0.5))
