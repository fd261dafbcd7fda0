"""Reading the in-repository format documents (SCRIPTS.md, RECORDING.md, EXPORT.md) in tests:
one section by its heading, and the first column of a Markdown table."""

from __future__ import annotations

import re
from pathlib import Path


def section(document: Path, title: str) -> str:
    """From the heading ``title`` (e.g. ``"## Example"``) to the next heading of the same or a
    higher level."""
    text = document.read_text(encoding="utf-8")
    start = text.index(f"\n{title}") + 1
    level = len(title) - len(title.lstrip("#"))
    following = re.search(rf"^#{{1,{level}}} ", text[start + len(title) :], flags=re.M)
    return text[start : start + len(title) + following.start() if following else None]


def first_column(text: str) -> list[str]:
    """The code-quoted names in the first column of every table row (``| `name` | …``)."""
    return re.findall(r"^\| `([^`]+)` \|", text, flags=re.M)
