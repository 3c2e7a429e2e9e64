"""MkDocs hook: the equations of every page as MathML, rendered when the site is built.

``pymdownx.arithmatex`` (``generic: true``) wraps each ``$...$`` / ``$$...$$`` in
``<span class="arithmatex">\\(...\\)</span>`` or ``<div class="arithmatex">\\[...\\]</div>``;
this hook replaces the LaTeX inside with MathML from ``latex2mathml``, which browsers
render natively. The site loads no script to show equations and needs no network.
A formula that cannot be converted stops the build with the page and the formula.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET

from latex2mathml.converter import convert
from mkdocs.exceptions import PluginError

_MATH = re.compile(
    r'<(?P<tag>span|div) class="arithmatex">\\(?P<open>[(\[])(?P<tex>.*?)\\[)\]]</(?P=tag)>',
    re.S,
)


def to_mathml(tex: str, display: bool) -> str:
    """One formula as a ``<math>`` element; ``ValueError`` when it cannot be converted."""
    try:
        mathml = convert(tex, display="block" if display else "inline")
        ET.fromstring(mathml)  # well-formed: an unsupported construct leaves raw '&' etc.
    except Exception as exc:  # latex2mathml raises its own types, ET a ParseError
        reason = str(exc) or type(exc).__name__
        raise ValueError(f"cannot render {tex!r} as MathML: {reason}") from exc
    return mathml


def on_page_content(html_text: str, page, config, files) -> str:
    """Replace the LaTeX of every arithmatex element of a page by MathML."""

    def render(m: re.Match) -> str:
        tex = html.unescape(m["tex"]).strip()
        try:
            mathml = to_mathml(tex, display=m["tag"] == "div")
        except ValueError as exc:
            raise PluginError(f"{page.file.src_uri}: {exc}") from None
        return f'<{m["tag"]} class="arithmatex">{mathml}</{m["tag"]}>'

    return _MATH.sub(render, html_text)
