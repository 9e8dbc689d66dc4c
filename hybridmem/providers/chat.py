"""A chat client that asks an OpenAI-compatible endpoint for one JSON object that
satisfies a schema, as a forced tool call, a structured output, or plain JSON mode."""

from __future__ import annotations

import json
import threading
from typing import Any

import jsonschema

from hybridmem.config import LLMConfig
from hybridmem.errors import ExtractionError, LLMError
from hybridmem.providers.openai_client import PROVIDER, build_client, call


class JSONChat:
    """Asks for a schema-valid JSON object; a malformed answer is asked for once more.

    Transport failures (429, 5xx, timeouts, refused connections) are retried by the openai
    client with exponential backoff and Retry-After, at most `max_retries` times.
    """

    def __init__(self, config: LLMConfig) -> None:
        self.config = config
        self._client = build_client(
            api_key=config.api_key, base_url=config.base_url, timeout=config.timeout,
            max_retries=config.max_retries,
        )
        self._lock = threading.Lock()
        self.calls = 0  # chat requests made (for cost accounting)

    def ask(self, *, system: str, user: str, schema: dict[str, Any]) -> dict[str, Any]:
        """One answer valid against `schema`.

        Raises:
            LLMError: the endpoint failed after its retries.
            ExtractionError: two answers in a row were not valid JSON for the schema.
        """
        problem = ""
        for attempt in range(2):
            prompt = user if attempt == 0 else (
                f"{user}\n\nYour previous answer was rejected: {problem}. "
                "Answer again with valid JSON matching the schema exactly."
            )
            raw = self._request(system, prompt, schema)
            try:
                answer = json.loads(raw)
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

    def _request(self, system: str, user: str, schema: dict[str, Any]) -> str | None:
        name = schema.get("title", "answer")
        kwargs: dict[str, Any] = {
            "model": self.config.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
        }
        if self.config.top_p is not None:
            kwargs["top_p"] = self.config.top_p
        body = {k: v for k, v in schema.items() if not k.startswith("$")}
        if self.config.mode == "tools":
            kwargs["tools"] = [{
                "type": "function",
                "function": {"name": name, "description": schema.get("description", ""),
                             "parameters": body},
            }]
            kwargs["tool_choice"] = {"type": "function", "function": {"name": name}}
        elif self.config.mode == "json_schema":
            kwargs["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": body, "strict": True},
            }
        else:
            kwargs["response_format"] = {"type": "json_object"}
            kwargs["messages"][0]["content"] += (
                "\nAnswer with one JSON object matching this JSON Schema:\n" + json.dumps(body)
            )
        with self._lock:
            self.calls += 1
        response = call(lambda: self._client.chat.completions.create(**kwargs),
                        max_retries=self.config.max_retries, what=f"chat ({name})",
                        error_type=LLMError)
        try:
            message = response.choices[0].message
        except (AttributeError, IndexError, TypeError) as exc:
            raise LLMError(
                f"{PROVIDER} chat ({name}) failed: bad_response: no choices in the answer",
                provider=PROVIDER, failure="bad_response",
            ) from exc
        if self.config.mode == "tools" and message.tool_calls:
            return message.tool_calls[0].function.arguments
        return message.content
