"""JSON Schemas shipped with hybridmem: the LLM's extraction and conflict answers, and the
shape of a search result. They are both the request's tool/structured-output schema and the
validator of the answer."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The schema `name` ("extraction", "conflict", "search_result") as a dict."""
    text = (resources.files("hybridmem.schemas") / f"{name}.json").read_text("utf-8")
    return json.loads(text)
