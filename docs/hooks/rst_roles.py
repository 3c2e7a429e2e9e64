"""MkDocs hook: the docstrings' Sphinx roles as plain code in the API reference.

The docstrings are numpydoc with Sphinx cross-reference roles (``:func:`run```,
``:class:`~cases.study.StudyConfig```); mkdocstrings shows them as written. This hook
drops the role, and with ``~`` the module path, so that the reader sees ``run`` and
``StudyConfig`` as code.
"""

from __future__ import annotations

import re

_ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|exc|obj|const):<code>(~?)([^<]*)</code>")


def _plain(m: re.Match) -> str:
    name = m[2].rsplit(".", 1)[-1] if m[1] else m[2]
    return f"<code>{name}</code>"


def on_page_content(html_text: str, page, config, files) -> str:
    """Replace every ``:role:<code>name</code>`` of a page by ``<code>name</code>``."""
    return _ROLE.sub(_plain, html_text)
