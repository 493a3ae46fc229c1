"""Text made safe for Streamlit's markdown: no Streamlit import, so every dashboard
module (sign-in, components, pages) can use it without importing another."""

from __future__ import annotations

import re

#: Where Streamlit's markdown would still turn escaped text into something else, since
#: it acts on the text after escapes are resolved: a ``:`` that starts an emoji
#: shortcode (``:smile:``) or a Material icon (``:material/home:``) -- the patterns
#: ``:[\w+-]+:`` and ``:material_(\w+):`` --, a ``://`` or ``www.`` a link would start
#: with (GFM autolink literals). A zero-width space goes right after the ``:`` or ``www``.
_BREAK_RE = re.compile(r"(?::(?=[\w+\-/]+:|//)|(?<![\w.])www(?=\.))", re.IGNORECASE)


def md_escape(text: str) -> str:
    """User text made literal for any Streamlit element that renders markdown.

    Backslash-escapes every ASCII punctuation mark markdown, HTML, LaTeX or a
    directive (``:red[x]``) could act on. Shortcodes (``:smile:``, ``:material/x:``) and
    autolinks (``http://…``, ``www.…``) are recognised after escapes are resolved, so
    only there a zero-width space breaks them (see ``_BREAK_RE``); every other ``:``
    (``Not saved: …``, ``12:30``) stays plain, so copied text carries no invisible
    character.
    """
    out = _BREAK_RE.sub(lambda m: m.group(0) + "\u200b", str(text))
    for ch in "\\`*_{}[]<>()#+-.!|~$&=:":
        out = out.replace(ch, "\\" + ch)
    return out
