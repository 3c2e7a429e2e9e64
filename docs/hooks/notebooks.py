"""MkDocs hook: a jupytext notebook shown as a page, converted when the site is built.

A page line ``<!-- notebook: examples/walkthrough.py -->`` is replaced by the notebook's
cells (read with jupytext from the percent script, relative to the repository's top
folder): its Markdown cells as they are, its code cells as Python code blocks. The
script stays the one source; nothing is executed here (the tests run it).
"""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parents[2]
_MARKER = re.compile(r"^<!-- notebook: (\S+) -->$", re.M)


def notebook_markdown(path: Path) -> str:
    """The cells of the notebook at ``path`` as one Markdown text."""
    parts = []
    for cell in jupytext.read(path).cells:
        source = cell.source.strip()
        if not source:
            continue
        if cell.cell_type == "markdown":
            parts.append(source)
        elif cell.cell_type == "code":
            parts.append(f"```python\n{source}\n```")
    return "\n\n".join(parts) + "\n"


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Replace every notebook marker of a page by the notebook's cells."""

    def insert(m: re.Match) -> str:
        path = ROOT / m[1]
        if not path.is_file():
            raise PluginError(f"{page.file.src_uri}: notebook '{m[1]}' not found")
        return notebook_markdown(path)

    return _MARKER.sub(insert, markdown)
