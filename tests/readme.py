"""The README's code blocks, so tests can run them exactly as a reader would."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"

_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(language: str) -> list[str]:
    """The README's fenced blocks of one language, in order."""
    return [body for lang, body in _BLOCK.findall(README.read_text("utf-8")) if lang == language]


def python_blocks() -> list[str]:
    """The README's Python blocks, in order."""
    return blocks("python")


_SHOWN = re.compile(r"^```python\n(.*?)^```\n(?:(?!```)[^\n]*\n){0,3}?^```\n(.*?)^```",
                    re.MULTILINE | re.DOTALL)


def shown_outputs() -> list[tuple[str, str]]:
    """(code, output) for each Python block the README follows, within a few lines of
    prose, with an unlabelled block of what it prints."""
    return _SHOWN.findall(README.read_text("utf-8"))
