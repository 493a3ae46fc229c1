"""Writing CSV: the one writer of every export (:func:`to_csv_text`: UTF-8 BOM,
formula-neutralised text cells, plain numbers) and the stored measurements as the
long-form frame an import reads back (:func:`export_measurements_frame`)."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
from sqlmodel import Session

from metrics import computations as C
from metrics import store
from metrics.csvio.columns import (
    EXPORT_COLUMNS,
    METRIC_COL,
    NOTE_COL,
    PILOT_COL,
    VALUE_COL,
    WEEK_COL,
)
from metrics.csvio.formula import _neutralize
from metrics.isoweek import week_labels


def export_measurements_frame(session: Session) -> pd.DataFrame:
    """Every stored weekly value in the long form that :func:`import_measurements` reads.

    Two queries (metrics, measurements) through the store, joined in pandas.

    Returns:
        Columns pilot, metric (object: pilot name, metric key), week (object,
        ``YYYY-Www``), value (float64, the metric's unit), note (object); sorted by
        pilot, metric, week. Written with :func:`to_csv_text` and imported again it
        gives 0 created, 0 updated, N unchanged.
    """
    m = store.metrics_frame(session)[[C.METRIC_ID, C.PILOT, C.KEY]]
    v = store.measurements_frame(session)[[C.METRIC_ID, C.WEEK, C.VALUE, "note"]]
    df = v.merge(m, on=C.METRIC_ID, how="inner")
    df = df.sort_values([C.PILOT, C.KEY, C.WEEK], kind="stable").reset_index(drop=True)
    return pd.DataFrame(
        {
            PILOT_COL: df[C.PILOT].astype(object),
            METRIC_COL: df[C.KEY].astype(object),
            WEEK_COL: week_labels(df[C.WEEK]).astype(object),
            VALUE_COL: df[C.VALUE].astype("float64"),
            NOTE_COL: df["note"].fillna("").astype(object),
        },
        columns=EXPORT_COLUMNS,
    )


def to_csv_text(df: pd.DataFrame) -> str:
    """The one CSV writer for every export.

    Args:
        df: any frame; its columns are written in order, without the index.

    Returns:
        UTF-8-ready text: a leading BOM ``\\ufeff`` (so spreadsheets detect UTF-8),
        the header line, one line per row, ``\\n`` line endings, minimal quoting.
        Numbers plain (positional digits, never exponent notation; the shortest text
        that reads back to the same float; dot decimal, no thousands separators),
        NaN/None/NaT as empty cells. A text cell (in an object, string or
        categorical column, and the header) that starts with ``= + - @ \\t \\r`` -- or
        with ``'``-s followed by one of them -- gets a leading ``'`` so no spreadsheet
        reads it as a formula (OWASP CSV injection); numeric columns are never
        changed (``-25.0`` stays ``-25.0``). The readers here strip that ``'`` again.
        A field holding ``\r`` or ``\n`` is always quoted, so it reads back intact.
        Encode the result with ``.encode("utf-8")`` to write a file.
    """
    out = df.copy()
    text_cols: list[int] = []
    for j in range(out.shape[1]):
        s = out.iloc[:, j]
        dtype = s.dtype
        if pd.api.types.is_float_dtype(dtype):
            # Plain positional digits (0.0000012, never 1.2e-06), shortest round trip.
            out.isetitem(j, pd.Series([_plain_float(v) for v in s], index=s.index, dtype=object))
            continue
        if isinstance(dtype, pd.CategoricalDtype):
            s = s.astype(object)
        elif not (pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)):
            continue
        out.isetitem(j, pd.Series([_neutralize(v) for v in s], index=s.index, dtype=object))
        text_cols.append(j)
    out.columns = [_neutralize(c) for c in out.columns]
    # The csv module quotes a field only when it holds the delimiter, the quote or a
    # character of the line terminator: with "\n" alone a bare "\r" in a text would be
    # written unquoted and read back as a line break. So write with a terminator of
    # "\r", a character found in no cell, and "\n" (every field holding "\r" or "\n" is
    # then quoted), and turn that unique sequence into "\n" afterwards.
    marker = "\r" + _absent_char(out, text_cols) + "\n"
    text = out.to_csv(index=False, lineterminator=marker, quoting=csv.QUOTE_MINIMAL)
    return "\ufeff" + text.replace(marker, "\n")


def _plain_float(v: float) -> str:
    """``v`` as plain digits with the shortest exact round trip; "" when missing."""
    if v is None or not np.isfinite(v):
        return ""
    return np.format_float_positional(float(v), unique=True, trim="0")


def _absent_char(df: pd.DataFrame, text_cols: list[int]) -> str:
    """A character that occurs in no text cell and no column name of ``df``."""
    cells = [pd.Series([str(c) for c in df.columns], dtype=object)]
    for j in text_cols:
        col = df.iloc[:, j]
        cells.append(col[col.map(lambda v: isinstance(v, str))])
    for cand in ("\x1e", "\x1f", *(chr(i) for i in range(0xE000, 0xF900))):
        if not any(s.str.contains(cand, regex=False).any() for s in cells if len(s)):
            return cand
    raise ValueError("cannot find a free separator character")  # pragma: no cover
