"""Search: candidate retrieval, BM25 over relations, and the merger that fuses signals."""
