"""Raw event log -> weekly measurements (``pilotgate derive``, DESIGN §6 and §7).

An event log has one row per event: a case id (a ticket, a permit application, ...)
and the time the event happened. Definition (shared/data/README.md, "resolution
time"): *a case's duration is its last event minus its first event; the weekly value
is the median duration over the cases opened (first event) in that ISO week.*

Weeks are ISO 8601 weeks (DESIGN §4), stored as the Monday's date (``datetime64[ns]``,
midnight) and labelled ``YYYY-Www``. Weeks without cases are absent, never zero.

Everything here is plain pandas and vectorised (one groupby, no loop per case).
Timestamps are treated as wall-clock times: a time zone offset, if the input has one,
is dropped without converting, so a case belongs to the week of its local date.
"""

from __future__ import annotations

from os import PathLike
from typing import IO, Literal

import pandas as pd

from metrics.isoweek import week_labels

__all__ = [
    "CASES_COL",
    "CASE_COL",
    "DURATION_COL",
    "END_COL",
    "MEASUREMENT_COLUMNS",
    "START_COL",
    "VALUE_COL",
    "WEEK_COL",
    "DeriveError",
    "case_durations",
    "derive_measurements",
    "read_event_log",
    "weekly_median_duration",
]

CASE_COL = "case"
START_COL = "first_event"
END_COL = "last_event"
DURATION_COL = "duration"
WEEK_COL = "week"
VALUE_COL = "value"
CASES_COL = "cases"
MEASUREMENT_COLUMNS = ["pilot", "metric", "week", "value", "note"]

Unit = Literal["h", "d"]
_UNIT_TIMEDELTA = {"h": pd.Timedelta(hours=1), "d": pd.Timedelta(days=1)}
_NS = "datetime64[ns]"


class DeriveError(ValueError):
    """An event log that cannot be turned into measurements; ``str()`` is one line for a person."""


# --------------------------------------------------------------------------- helpers


def _check_unit(unit: str) -> pd.Timedelta:
    try:
        return _UNIT_TIMEDELTA[unit]
    except (KeyError, TypeError):
        raise DeriveError(f"unknown unit {unit!r}: use 'h' (hours) or 'd' (days)") from None


def _describe_columns(columns) -> str:
    return ", ".join(repr(str(c)) for c in columns) or "none"


def _check_columns(frame: pd.DataFrame, case_col: str, time_col: str) -> None:
    if case_col == time_col:
        raise DeriveError(f"the case column and the time column are both {case_col!r}")
    missing = [c for c in (case_col, time_col) if c not in frame.columns]
    if missing:
        what = "column" if len(missing) == 1 else "columns"
        raise DeriveError(
            f"{what} {_describe_columns(missing)} not found; "
            f"the columns are: {_describe_columns(frame.columns)}"
        )


def _as_naive_ns(times: pd.Series) -> pd.Series:
    """datetime64 of any unit / time zone -> naive ``datetime64[ns]`` (wall-clock time)."""
    if isinstance(times.dtype, pd.DatetimeTZDtype):
        times = times.dt.tz_localize(None)
    try:
        return times.astype(_NS)
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
        lo, hi = pd.Timestamp.min, pd.Timestamp.max  # the datetime64[ns] range
        bad = times[(times < lo) | (times > hi)]
        first = bad.iloc[0] if len(bad) else "?"
        raise DeriveError(
            f"timestamp {first} is outside the supported range {lo.year}..{hi.year}"
        ) from None


def _parse_times(text: pd.Series, column: str, line_numbers: pd.Series | None) -> pd.Series:
    """Parse ISO 8601 text to naive ``datetime64[ns]``; DeriveError names the first bad one."""
    stripped = text.astype("object").where(text.notna(), "").astype(str).str.strip()
    try:
        parsed = pd.to_datetime(stripped, format="ISO8601", errors="coerce")
    except ValueError:
        raise DeriveError(
            f"column {column!r} mixes timestamps with different UTC offsets "
            "(or with and without one); write them all one way"
        ) from None
    bad = parsed.isna()
    if bad.any():
        pos = int(bad.to_numpy().argmax())
        where = f"line {int(line_numbers.iloc[pos])}" if line_numbers is not None else "row"
        raw = stripped.iloc[pos]
        more = int(bad.sum()) - 1
        tail = f" ({more} more bad timestamp{'s' if more != 1 else ''})" if more else ""
        if raw == "":
            raise DeriveError(f"{where}: the timestamp in column {column!r} is blank{tail}")
        raise DeriveError(
            f"{where}: cannot read timestamp {raw!r} in column {column!r} "
            f"(expected YYYY-MM-DD HH:MM:SS){tail}"
        )
    return _as_naive_ns(parsed)


# --------------------------------------------------------------------------- public API


def read_event_log(
    path_or_buffer: str | PathLike[str] | IO[str] | IO[bytes],
    *,
    case_col: str,
    time_col: str,
) -> pd.DataFrame:
    """Read a CSV event log and validate it completely; bad rows are never dropped.

    Args:
        path_or_buffer: a path or an open file / buffer with a CSV (UTF-8, a BOM is
            allowed), first line a header.
        case_col: name of the case id column (exact header text; surrounding spaces
            in the header are ignored).
        time_col: name of the event timestamp column. Timestamps are ISO 8601,
            ``YYYY-MM-DD HH:MM:SS`` or ``YYYY-MM-DDTHH:MM:SS`` (parsed with
            ``pd.to_datetime(format="ISO8601")``; a date alone means midnight).

    Returns:
        The file's rows in file order, with every column of the file. ``case_col``
        is ``object`` (the id text, stripped); ``time_col`` is ``datetime64[ns]``
        (naive; a UTC offset in the text is dropped, the wall-clock time kept); other
        columns are ``object`` text. Lines that are completely blank (no text in any
        field, e.g. ``,,``) are skipped like empty lines.

    Raises:
        DeriveError: (a ``ValueError``; message is one line) when the file is empty
            or has only a header; when ``case_col`` or ``time_col`` is not in the
            header (the message lists the columns there are); when a timestamp is
            blank or cannot be parsed (names the 1-based file line, header = line 1,
            and the bad text); when a case id is blank (names the line); when
            timestamps mix different UTC offsets.
    """
    try:
        raw = pd.read_csv(
            path_or_buffer,
            dtype=object,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            encoding="utf-8-sig",
        )
    except pd.errors.EmptyDataError:
        raise DeriveError("the event log is empty (no header, no rows)") from None
    except pd.errors.ParserError as exc:
        detail = " ".join(str(exc).split())
        raise DeriveError(f"the event log is not a readable CSV: {detail}") from None
    except UnicodeDecodeError as exc:
        raise DeriveError(f"the event log is not UTF-8 text ({exc.reason})") from None

    raw.columns = [str(c).strip() for c in raw.columns]
    _check_columns(raw, case_col, time_col)
    if raw.columns.duplicated().any():
        dup = raw.columns[raw.columns.duplicated()].unique()
        raise DeriveError(f"the header repeats column(s) {_describe_columns(dup)}")

    # Header is line 1, so row i (0-based, blank lines kept) is on line i + 2.
    line_numbers = pd.Series(range(2, len(raw) + 2), index=raw.index)
    text = raw.astype(str).apply(lambda col: col.str.strip())
    blank_line = (text == "").all(axis=1)
    raw, text, line_numbers = raw[~blank_line], text[~blank_line], line_numbers[~blank_line]
    if raw.empty:
        raise DeriveError("the event log has a header but no event rows")

    case_ids = text[case_col]
    blank_case = case_ids == ""
    if blank_case.any():
        first = int(line_numbers[blank_case].iloc[0])
        more = int(blank_case.sum()) - 1
        tail = f" ({more} more line{'s' if more != 1 else ''} with a blank case id)" if more else ""
        raise DeriveError(f"line {first}: the case id in column {case_col!r} is blank{tail}")

    out = raw.copy()
    for col in out.columns:
        out[col] = text[col].astype(object)
    out[time_col] = _parse_times(text[time_col], time_col, line_numbers)
    return out.reset_index(drop=True)


def case_durations(
    events: pd.DataFrame,
    *,
    case_col: str,
    time_col: str,
    unit: Unit = "h",
) -> pd.DataFrame:
    """Duration of every case: last event minus first event.

    Formula (shared/data/README.md): "A ticket's resolution time is its last event
    minus its first event", i.e. ``max(time) - min(time)`` over the case's events; a
    case with one event lasts 0. Row order of ``events`` does not matter.

    Args:
        events: one row per event. ``case_col`` holds the case id (any hashable,
            non-missing); ``time_col`` is ``datetime64`` (any unit; a time zone is
            dropped, wall-clock kept) or ISO 8601 text.
        unit: ``"h"`` hours or ``"d"`` days (24 h) for the duration.

    Returns:
        One row per case, sorted by ``first_event`` then ``case``, index 0..n-1:

        ============== ================ ===========================================
        ``case``        object           the case id as it was in ``events``
        ``first_event`` datetime64[ns]   earliest event time
        ``last_event``  datetime64[ns]   latest event time
        ``duration``    float64          last - first, in ``unit`` (hours or days)
        ============== ================ ===========================================

        Empty input gives an empty frame with these columns and dtypes.

    Raises:
        DeriveError: a column is missing (message lists the columns there are), a
            case id or timestamp is missing, text timestamps cannot be parsed, or
            ``unit`` is not ``"h"``/``"d"``.
    """
    per_unit = _check_unit(unit)
    _check_columns(events, case_col, time_col)

    cases = events[case_col]
    if cases.isna().any():
        raise DeriveError(f"{int(cases.isna().sum())} event(s) have no case id in {case_col!r}")
    times = events[time_col]
    if pd.api.types.is_datetime64_any_dtype(times.dtype):
        if times.isna().any():
            raise DeriveError(
                f"{int(times.isna().sum())} event(s) have no timestamp in {time_col!r}"
            )
        times = _as_naive_ns(times)
    else:
        times = _parse_times(times, time_col, line_numbers=None)

    frame = pd.DataFrame({CASE_COL: cases.to_numpy(), "_t": times.to_numpy()})
    spans = frame.groupby(CASE_COL, sort=False)["_t"].agg(["min", "max"])
    out = pd.DataFrame(
        {
            CASE_COL: spans.index.to_numpy(dtype=object),
            START_COL: spans["min"].to_numpy().astype(_NS),
            END_COL: spans["max"].to_numpy().astype(_NS),
        }
    )
    out[DURATION_COL] = ((out[END_COL] - out[START_COL]) / per_unit).astype("float64")
    out[CASE_COL] = out[CASE_COL].astype(object)
    return out.sort_values([START_COL, CASE_COL], kind="stable", ignore_index=True)


def _weekly(durations: pd.DataFrame) -> pd.DataFrame:
    start = durations[START_COL]
    monday = start.dt.normalize() - pd.to_timedelta(start.dt.day_of_week, unit="D")
    grouped = durations.assign(**{WEEK_COL: monday}).groupby(WEEK_COL, sort=True)[DURATION_COL]
    stats = grouped.agg(["median", "size"])
    return pd.DataFrame(
        {
            WEEK_COL: stats.index.to_numpy().astype(_NS),
            VALUE_COL: stats["median"].to_numpy(dtype="float64"),
            CASES_COL: stats["size"].to_numpy(dtype="int64"),
        }
    )


def weekly_median_duration(
    events: pd.DataFrame,
    *,
    case_col: str,
    time_col: str,
    unit: Unit = "h",
) -> pd.DataFrame:
    """Median case duration per ISO week of the cases' first event.

    Formula (shared/data/README.md): "Weekly value = median over the tickets opened
    in that ISO week", a case's duration being its last event minus its first event
    (:func:`case_durations`). A case belongs to the ISO week (Monday..Sunday) of its
    *first* event, however long it runs; its first event on a Sunday puts it in the
    week of the preceding Monday. The median of an even count is the mean of the two
    middle values.

    Args:
        events: as for :func:`case_durations`.
        unit: ``"h"`` hours or ``"d"`` days.

    Returns:
        One row per week that has at least one case, sorted by week, index 0..n-1
        (weeks without cases are absent, never zero):

        ========= ================ ===============================================
        ``week``   datetime64[ns]   Monday 00:00 of the ISO week
        ``value``  float64          median case duration in ``unit``
        ``cases``  int64            number of cases opened that week
        ========= ================ ===============================================

    Raises:
        DeriveError: as for :func:`case_durations`.
    """
    return _weekly(case_durations(events, case_col=case_col, time_col=time_col, unit=unit))


def derive_measurements(
    events: pd.DataFrame,
    *,
    case_col: str,
    time_col: str,
    unit: Unit = "h",
    pilot: str | None = None,
    metric: str | None = None,
) -> pd.DataFrame:
    """Weekly median case duration shaped as the long measurements CSV (DESIGN §6).

    Same numbers as :func:`weekly_median_duration` (formula: last event minus first
    event per case; median over the cases opened in each ISO week), ready for
    ``DataFrame.to_csv(index=False)`` and ``pilotgate import``.

    Args:
        events: as for :func:`case_durations`.
        unit: ``"h"`` hours or ``"d"`` days.
        pilot: pilot name for every row; empty string when ``None``.
        metric: metric key for every row; empty string when ``None``.

    Returns:
        One row per week that has cases, sorted by week, columns in this order:

        ========== ========= ====================================================
        ``pilot``   object    ``pilot`` or ``""``
        ``metric``  object    ``metric`` or ``""``
        ``week``    object    ISO week label ``YYYY-Www`` (ISO year, so Monday
                              2012-12-31 is ``2013-W01``)
        ``value``   float64   median case duration in ``unit``, full precision
        ``note``    object    e.g. ``"median of 23 cases"``
        ========== ========= ====================================================

    Raises:
        DeriveError: as for :func:`case_durations`.
    """
    weekly = weekly_median_duration(events, case_col=case_col, time_col=time_col, unit=unit)
    n = len(weekly)
    counts = weekly[CASES_COL].astype(str)
    notes = "median of " + counts + " case" + (weekly[CASES_COL] != 1).map({True: "s", False: ""})
    return pd.DataFrame(
        {
            "pilot": pd.Series([pilot or ""] * n, dtype=object),
            "metric": pd.Series([metric or ""] * n, dtype=object),
            "week": pd.Series(week_labels(weekly[WEEK_COL]).to_list(), dtype=object),
            "value": pd.Series(weekly[VALUE_COL].to_numpy(dtype="float64")),
            "note": pd.Series(notes.to_list(), dtype=object),
        },
        columns=MEASUREMENT_COLUMNS,
    )
