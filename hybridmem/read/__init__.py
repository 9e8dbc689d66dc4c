"""The read path: gather candidates from each signal (vector, BM25, graph), fuse them into
one ranked list, and render relations as sentences."""
