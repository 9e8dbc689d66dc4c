"""Extractors: `rules` offline (default), `llm` when an LLM is configured."""

from __future__ import annotations

from hybridmem.providers.chat import JSONChat
from hybridmem.providers.extract.base import SELF, ExtractedRelation, Extraction, Extractor, Message
from hybridmem.providers.extract.llm import LLMExtractor
from hybridmem.providers.extract.rules import RulesExtractor

__all__ = [
    "SELF", "ExtractedRelation", "Extraction", "Extractor", "LLMExtractor", "Message",
    "RulesExtractor", "create_extractor",
]


def create_extractor(chat: JSONChat | None, custom_prompt: str | None = None) -> Extractor:
    """The LLM extractor when a chat client is configured, else the rules extractor."""
    if chat is None:
        return RulesExtractor()
    return LLMExtractor(chat, custom_prompt)
