"""A chat client that asks an OpenAI-compatible endpoint for one JSON object that
satisfies a schema, as a forced tool call, a structured output, or plain JSON mode.

What is sent to the model constrains shape only (`wire_schema`): grammar engines
(llama.cpp, outlines, xgrammar) compile it into a grammar, and llama.cpp's compiler gives
up (and its server process dies) on a `maxLength: 2000` string. Every limit is checked in
Python on the answer instead, after `normalize` has mapped the forms small models answer
with onto the schema's.

Small models sometimes run away (repeating one item until `max_tokens`). Such an answer
costs the whole budget (about 200 s for 2,000 tokens on the 1.5B local model), and asking
again at temperature 0 repeats it, so a cut answer is never asked for twice: the items it
completed before the cut are kept, and each call's budget is sized by its caller.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from hybridmem.config import LLMConfig
from hybridmem.errors import ExtractionError, LLMError
from hybridmem.providers.openai_client import PROVIDER, build_client, call, endpoint

log = logging.getLogger(__name__)

# Keywords that constrain values, not shape: validated in Python, never sent.
_VALUE_KEYWORDS = {"maxLength", "minLength", "maxItems", "minItems", "minimum", "maximum",
                   "exclusiveMinimum", "exclusiveMaximum", "pattern", "format", "$schema",
                   "$id", "title", "description", "default", "examples"}
# What to try when a server refuses a mode, in order.
_FALLBACK = {"tools": "json_schema", "json_schema": "json_object"}


def wire_schema(schema: Any) -> Any:
    """The schema as sent to a model: structure and types only."""
    if isinstance(schema, dict):
        return {k: wire_schema(v) for k, v in schema.items() if k not in _VALUE_KEYWORDS}
    if isinstance(schema, list):
        return [wire_schema(v) for v in schema]
    return schema


class JSONChat:
    """Asks for a schema-valid JSON object; a malformed answer is asked for once more.

    Transport failures (429, 5xx, timeouts, refused connections) are retried by the openai
    client with exponential backoff and Retry-After, at most `max_retries` times. A server
    that refuses the configured mode (an HTTP 4xx/5xx that names it) is asked once more in
    the next mode (tools -> json_schema -> json_object), logged, and kept on that mode.
    """

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self.mode = config.mode
        self._client = build_client(
            api_key=config.api_key, base_url=config.base_url, timeout=config.timeout,
            max_retries=config.max_retries,
        )
        self.url = endpoint(self._client)
        self._lock = threading.Lock()
        self.calls = 0  # chat requests made (for cost accounting)

    def ask(self, *, system: str, user: str, schema: dict[str, Any],
            normalize: Callable[[Any], Any] = lambda answer: answer,
            max_tokens: int | None = None) -> dict[str, Any]:
        """One answer valid against `schema` (after `normalize` maps the raw answer).

        `max_tokens` bounds this answer (never above the config's); an answer cut there
        keeps the list items it completed and is not asked for again.

        Raises:
            LLMError: the endpoint failed after its retries.
            ExtractionError: two answers in a row were not valid JSON for the schema, or
                an answer was cut before it completed one item (failure "truncated").
        """
        import jsonschema  # only the LLM path needs it

        budget = min(self.config.max_tokens, max_tokens or self.config.max_tokens)
        problem = ""
        for attempt in range(2):
            prompt = user if attempt == 0 else (
                f"{user}\n\nYour previous answer was rejected: {problem}. "
                "Answer again with valid JSON matching the schema exactly."
            )
            raw, cut = self._request(system, prompt, schema, budget)
            if cut:
                return self._salvage(raw, schema, normalize, budget)
            try:
                answer = normalize(json.loads(raw))
            except (TypeError, json.JSONDecodeError) as exc:
                problem = f"not valid JSON ({exc})"
                continue
            try:
                jsonschema.validate(answer, schema)
            except jsonschema.ValidationError as exc:
                path = "/".join(str(p) for p in exc.absolute_path) or "(root)"
                problem = f"schema violation at {path}: {exc.message}"
                continue
            return answer
        raise ExtractionError(
            f"{PROVIDER} {schema.get('title', 'answer')} failed: schema: {problem}",
            provider=PROVIDER, failure="schema",
        )

    def _salvage(self, raw: str | None, schema: dict[str, Any],
                  normalize: Callable[[Any], Any], budget: int) -> dict[str, Any]:
        """What a cut answer completed before the cut, or `ExtractionError("truncated")`."""
        import jsonschema

        name = schema.get("title", "answer")
        answer = completed_prefix(raw or "")
        if answer is not None:
            try:
                answer = normalize(answer)
                jsonschema.validate(answer, schema)
            except (TypeError, jsonschema.ValidationError):
                answer = None
        if answer is None:
            raise ExtractionError(
                f"{PROVIDER} {name} failed: truncated: the answer reached max_tokens "
                f"({budget}) before completing one item", provider=PROVIDER,
                failure="truncated",
            )
        log.warning("%s: the answer reached max_tokens (%d); kept what it completed",
                    name, budget)
        return answer

    def _request(self, system: str, user: str, schema: dict[str, Any], budget: int
                 ) -> tuple[str | None, bool]:
        """The answer's text, and whether it was cut at `budget` tokens."""
        while True:
            mode = self.mode
            try:
                return self._request_in(mode, system, user, schema, budget)
            except LLMError as exc:
                fallback = _FALLBACK.get(mode)
                said = str(exc.__cause__ or "")  # the server's words, not ours
                if fallback is None or exc.failure not in ("bad_request", "server_error") or \
                        not _names_mode(said, mode):
                    raise
                with self._lock:
                    if self.mode == mode:
                        log.warning("%s refused mode %r (%s); using %r from now on",
                                    self.config.base_url or PROVIDER, mode,
                                    str(exc).splitlines()[0][:200], fallback)
                        self.mode = fallback

    def _request_in(self, mode: str, system: str, user: str, schema: dict[str, Any],
                    budget: int) -> tuple[str | None, bool]:
        name = schema.get("title", "answer")
        body = wire_schema(schema)
        kwargs: dict[str, Any] = {
            "model": self.config.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "temperature": self.config.temperature,
            "max_tokens": budget,
        }
        if self.config.top_p is not None:
            kwargs["top_p"] = self.config.top_p
        if mode == "tools":
            kwargs["tools"] = [{
                "type": "function",
                "function": {"name": name, "description": schema.get("description", ""),
                             "parameters": body},
            }]
            kwargs["tool_choice"] = {"type": "function", "function": {"name": name}}
        elif mode == "json_schema":
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": body, "strict": True},
            }
        else:
            kwargs["response_format"] = {"type": "json_object"}
            kwargs["messages"][0]["content"] += (
                "\nAnswer with one JSON object matching this JSON Schema:\n"
                + json.dumps(body, separators=(",", ":"))
            )
        with self._lock:
            self.calls += 1
        response = call(lambda: self._client.chat.completions.create(**kwargs),
                        max_retries=self.config.max_retries, what=f"chat ({name}, {mode})",
                        error_type=LLMError, url=self.url)
        try:
            choice = response.choices[0]
            message = choice.message
        except (AttributeError, IndexError, TypeError) as exc:
            raise LLMError(
                f"{PROVIDER} chat ({name}) at {self.url} failed: bad_response: no choices in "
                "the answer",
                provider=PROVIDER, failure="bad_response",
            ) from exc
        cut = getattr(choice, "finish_reason", None) == "length"
        if mode == "tools" and message.tool_calls:
            return message.tool_calls[0].function.arguments, cut
        return message.content, cut


def completed_prefix(text: str) -> Any | None:
    """The JSON value a cut answer had begun, closed after its last complete list item.

    `{"facts": [{..}, {..}, {"te` gives `{"facts": [{..}, {..}]}`; None when no item of
    a list was complete or the text is not the start of a JSON value.
    """
    closers: list[str] = []  # what would close each open object/array, innermost last
    cut_at, cut_closers = -1, ""
    in_string = escaped = False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
                if closers and closers[-1] == "]":  # a string item of a list ended
                    cut_at, cut_closers = i + 1, "".join(reversed(closers))
            continue
        if ch == '"':
            in_string = True
        elif ch in "{[":
            closers.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if not closers or closers.pop() != ch:
                return None
            if closers and closers[-1] == "]":  # an item of a list just ended
                cut_at, cut_closers = i + 1, "".join(reversed(closers))
    if cut_at < 0:
        return None
    try:
        return json.loads(text[:cut_at] + cut_closers)
    except json.JSONDecodeError:
        return None


def _names_mode(message: str, mode: str) -> bool:
    """Whether an error message is about the request's mode (tools, response_format)."""
    text = message.lower()
    words = {"tools": ("tool", "function"), "json_schema": ("json_schema", "response_format",
                                                            "schema")}[mode]
    return any(w in text for w in words)
