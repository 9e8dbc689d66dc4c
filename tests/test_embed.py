"""The local embedder: length-sorted batches give the vectors of input-order batches."""

from __future__ import annotations

import numpy as np
import pytest

from hybridmem.providers.embed.local import DIMS, LocalEmbedder


def _input_order(embedder: LocalEmbedder, texts: list[str], batch: int) -> np.ndarray:
    """The embedder as it was before sorting: batches of `batch` in input order, each
    padded by the tokenizer to its own longest text."""
    session, tokenizer = embedder._loaded.result()
    parts = []
    for start in range(0, len(texts), batch):
        encodings = tokenizer.encode_batch(texts[start : start + batch])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        hidden = session.run(None, {"input_ids": ids, "attention_mask": mask,
                                    "token_type_ids": np.zeros_like(ids)})[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        parts.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
    return np.vstack(parts)


def _texts() -> list[str]:
    """Lengths from one word to past the 256-token truncation, shuffled."""
    rng = np.random.default_rng(3)
    words = ["the", "dog", "named", "Biscuit", "lives", "in", "Lisbon", "with", "my",
             "sister", "who", "enjoys", "sailing"]
    texts = [" ".join(rng.choice(words, size=int(n))) for n in rng.integers(1, 60, 90)]
    texts += ["hi", "A very long note. " * 80, "Café naïve résumé 東京", "ok"]
    order = rng.permutation(len(texts))
    return [texts[i] for i in order]


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    return LocalEmbedder()


def test_sorted_batches_give_the_vectors_of_input_order_batches(embedder):
    texts = _texts()
    sorted_vectors = embedder.embed(texts)
    assert sorted_vectors.shape == (len(texts), DIMS)
    assert sorted_vectors.dtype == np.float32
    # Padding is masked out of the pooling: bit-identical, not merely close (measured so
    # on onnxruntime 1.32; input order at 64 was the shipped path before).
    assert np.array_equal(sorted_vectors, _input_order(embedder, texts, 64))


def test_rows_come_back_in_input_order(embedder):
    texts = _texts()
    whole = embedder.embed(texts)
    for i in (0, 17, len(texts) - 1):
        alone = embedder.embed([texts[i]])[0]
        assert np.allclose(whole[i], alone, atol=1e-5)
        others = [j for j in range(len(texts)) if texts[j] != texts[i]]
        assert float(whole[i] @ whole[others[0]]) < float(whole[i] @ alone)


def test_an_empty_list_embeds_to_no_rows(embedder):
    assert embedder.embed([]).shape == (0, DIMS)


def test_a_batch_size_that_does_not_divide_the_texts(embedder):
    texts = _texts()[:37]
    assert np.array_equal(LocalEmbedder(batch_size=5).embed(texts), embedder.embed(texts))
