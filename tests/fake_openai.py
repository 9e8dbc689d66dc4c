"""A small OpenAI-compatible HTTP server on 127.0.0.1 with scripted answers.

The real `openai` client talks to it over HTTP (respx cannot intercept the client's
httpx2 transport). Chat answers come from a queue of `Reply`s or a callable; embeddings
are deterministic hashed vectors answered as base64 float32 (the client's default).
Every request is recorded.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from hybridmem.providers.embed.hashing import HashEmbedder


@dataclass
class Reply:
    """One scripted HTTP answer."""

    status: int = 200
    body: Any = None  # dict -> JSON; str/bytes -> sent as is
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def tool_reply(arguments: Any, name: str = "record_memories",
               finish_reason: str = "stop") -> Reply:
    """A chat completion whose answer is one tool call with these arguments
    (`finish_reason="length"`: an answer cut at max_tokens)."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return Reply(body=_completion({
        "role": "assistant", "content": None,
        "tool_calls": [{"id": "call_1", "type": "function",
                        "function": {"name": name, "arguments": args}}],
    }, finish_reason))


def content_reply(content: str) -> Reply:
    """A chat completion whose answer is plain message content."""
    return Reply(body=_completion({"role": "assistant", "content": content}))


def _completion(message: dict, finish_reason: str = "stop") -> dict:
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
        "model": "test-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


class FakeOpenAI:
    """Start with `with FakeOpenAI() as server:`; `server.base_url` is the /v1 URL."""

    def __init__(self, embedding_dims: int = 64) -> None:
        self.chat_script: list[Reply] = []
        self.chat_handler: Callable[[dict], Reply] | None = None
        self.embedding_script: list[Reply] = []
        self.embedding_dims = embedding_dims
        self.requests: list[tuple[str, dict]] = []
        self.headers: list[dict[str, str]] = []  # each request's HTTP headers, names lower-cased
        self._embedder = HashEmbedder(embedding_dims)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                server.headers.append({k.lower(): v for k, v in self.headers.items()})
                reply = server._answer(self.path, body)
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.body
                raw = payload if isinstance(payload, bytes) else (
                    payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                )
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def _answer(self, path: str, body: dict) -> Reply:
        with self._lock:
            self.requests.append((path, body))
            if path.endswith("/embeddings"):
                if self.embedding_script:
                    return self.embedding_script.pop(0)
                return self._embeddings(body)
            if self.chat_script:
                return self.chat_script.pop(0)
        if self.chat_handler is not None:
            return self.chat_handler(body)
        return Reply(status=500, body={"error": {"message": "no scripted chat reply left"}})

    def _embeddings(self, body: dict) -> Reply:
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dims = body.get("dimensions") or self.embedding_dims
        vectors = HashEmbedder(dims).embed(texts)
        fmt = body.get("encoding_format")
        data = [
            {"object": "embedding", "index": i,
             "embedding": base64.b64encode(np.asarray(v, "<f4").tobytes()).decode()
             if fmt == "base64" else [float(x) for x in v]}
            for i, v in enumerate(vectors)
        ]
        return Reply(body={"object": "list", "data": data, "model": body.get("model"),
                           "usage": {"prompt_tokens": 1, "total_tokens": 1}})

    def chat_requests(self) -> list[dict]:
        """Bodies of the chat requests received so far."""
        return [b for p, b in self.requests if p.endswith("/chat/completions")]

    def embedding_requests(self) -> list[dict]:
        """Bodies of the embedding requests received so far."""
        return [b for p, b in self.requests if p.endswith("/embeddings")]

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
