"""Formula neutralisation, both ways (OWASP CSV injection): the writer prefixes ``'``
to a text cell a spreadsheet would read as a formula, and the readers strip exactly
that ``'`` again, so every exported text imports back unchanged."""

from __future__ import annotations

import re

import pandas as pd

#: A text cell starting with one of these is prefixed with "'" on export (OWASP CSV
#: injection): the ASCII triggers, tab and both line-break characters, and the
#: fullwidth and small forms of = + - @ (U+FF1D U+FF0B U+FF0D U+FF20, U+FE66 U+FE62
#: U+FE63 U+FE6B), which spreadsheets with East Asian input read as the ASCII ones.
FORMULA_TRIGGERS = (
    "=",
    "+",
    "-",
    "@",
    "\t",
    "\r",
    "\n",
    "\uff1d",
    "\uff0b",
    "\uff0d",
    "\uff20",
    "\ufe66",
    "\ufe62",
    "\ufe63",
    "\ufe6b",
)
_TRIGGER_CLASS = "[" + "".join(re.escape(t) for t in FORMULA_TRIGGERS) + "]"
#: Export prefixes "'" to text matching _NEEDS_QUOTE_RE; import strips one "'" from text
#: matching _ESCAPED_RE. The two rules are inverse: any text round-trips exactly.
_NEEDS_QUOTE_RE = re.compile("^'*" + _TRIGGER_CLASS)
_ESCAPED_RE = "^'+" + _TRIGGER_CLASS


def _unescape(s: pd.Series) -> pd.Series:
    """Strip one leading "'" when the rest starts with a formula trigger (vectorised)."""
    mask = s.str.contains(_ESCAPED_RE, regex=True)
    if mask.any():
        s = s.where(~mask, s.str.slice(1))
    return s


def _unescape_one(v: str) -> str:
    return v[1:] if v.startswith("'") and _NEEDS_QUOTE_RE.match(v) else v


def _neutralize(v):
    if isinstance(v, str) and _NEEDS_QUOTE_RE.match(v):
        return "'" + v
    return v
