"""Vector stores. Milvus (Lite by default, server by URL) is the one backend."""

from hybridmem.vector.milvus import MilvusVectorStore

__all__ = ["MilvusVectorStore"]
