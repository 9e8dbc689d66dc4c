"""Extractors: `rules` offline (default), `llm` when an LLM is configured.

The two implementations are imported when first asked for (their patterns and schemas
take ~60 ms to load): `import hybridmem` stays off that cost, and `Memory()` pays it
while the embedding model loads beside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hybridmem.providers.extract.base import SELF, ExtractedRelation, Extraction, Extractor, Message

if TYPE_CHECKING:
    from hybridmem.providers.chat import JSONChat
    from hybridmem.providers.extract.llm import LLMExtractor
    from hybridmem.providers.extract.rules import RulesExtractor

__all__ = [
    "SELF", "ExtractedRelation", "Extraction", "Extractor", "LLMExtractor", "Message",
    "RulesExtractor", "create_extractor",
]


def create_extractor(chat: JSONChat | None, custom_prompt: str | None = None) -> Extractor:
    """The LLM extractor when a chat client is configured, else the rules extractor."""
    if chat is None:
        from hybridmem.providers.extract.rules import RulesExtractor

        return RulesExtractor()
    from hybridmem.providers.extract.llm import LLMExtractor

    return LLMExtractor(chat, custom_prompt)


def __getattr__(name: str) -> Any:
    if name == "LLMExtractor":
        from hybridmem.providers.extract.llm import LLMExtractor

        return LLMExtractor
    if name == "RulesExtractor":
        from hybridmem.providers.extract.rules import RulesExtractor

        return RulesExtractor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
