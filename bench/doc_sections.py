"""Sections of a Markdown file that a benchmark owns, kept when another rewrites the file.

A section is the text between ``<!-- section NAME -->`` and ``<!-- /section NAME -->``.
``write_section`` replaces (or appends) one section; ``write_keeping_sections`` writes a whole
file anew but keeps every section the old file had, so ``bench/serving.py`` rewriting
``docs/performance.md`` does not drop what ``bench/inference.py`` and ``bench/train_memory.py``
wrote there.
"""

from __future__ import annotations

import re
from pathlib import Path

_SECTION = re.compile(r"<!-- section (?P<name>[\w.-]+) -->\n.*?<!-- /section (?P=name) -->\n", re.S)


def _wrap(name: str, text: str) -> str:
    return f"<!-- section {name} -->\n{text.rstrip()}\n<!-- /section {name} -->\n"


def write_section(path: Path, name: str, text: str) -> None:
    """Put ``text`` in section ``name`` of ``path``, replacing the section if it is there."""
    old = path.read_text() if path.exists() else ""
    block = _wrap(name, text)
    for match in _SECTION.finditer(old):
        if match.group("name") == name:
            path.write_text(old[: match.start()] + block + old[match.end() :])
            return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(old.rstrip("\n") + ("\n\n" if old.strip() else "") + block)


def write_keeping_sections(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, then every section the old file had."""
    old = path.read_text() if path.exists() else ""
    kept = [match.group(0) for match in _SECTION.finditer(old)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + "\n" + "".join("\n" + block for block in kept))
