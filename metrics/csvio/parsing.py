"""Parsing cells: measurement values (decimal dot or comma, thousands marks, percent
signs; the decimal separator decided once per file), a number typed into a form,
weeks (ISO labels and dates, day/month dates decided once per column, never in the
future) and the dates and numbers of a pilot definitions file."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from metrics.csvio.columns import (
    DATE_DMY,
    DATE_MDY,
    DECIMAL_COMMA,
    DECIMAL_DOT,
    LINE_COL,
    PERCENT_UNIT,
    WEEK_COL,
)
from metrics.csvio.reports import RowError, _num_text, _plural, _short
from metrics.isoweek import WeekError, monday_of, parse_week
from metrics.models import EARLIEST_DATE, MAX_ABS_VALUE

_DECIMAL_MARK = {DECIMAL_DOT: ".", DECIMAL_COMMA: ","}
#: The decimal separator a delimiter implies when the values do not tell: a comma file
#: cannot hold an unquoted decimal comma; semicolon files are what spreadsheets in
#: decimal-comma locales write. Tab files imply nothing.
_DEFAULT_DECIMAL = {",": DECIMAL_DOT, ";": DECIMAL_COMMA}

_DATE_WORDS = {DATE_DMY: "day-first", DATE_MDY: "month-first"}

#: Numbers of the pilot definitions CSV: dot decimal, optional sign and exponent.
#: Digits are ASCII 0-9 everywhere (re.ASCII): Python's ``\d`` and ``int()`` also
#: take fullwidth and Arabic-Indic digits, which no spreadsheet writes as numbers.
NUMBER_RE = r"^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*$"
_NUMBER = re.compile(NUMBER_RE, re.ASCII)
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$", re.ASCII)
_INT = re.compile(r"^[+]?\d+$", re.ASCII)
#: Non-ISO dates: day and month (either order) then a four-digit year.
_DMY = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})$", re.ASCII)
#: Year first with slashes or dots (2012/01/18): unambiguous, always year-month-day.
_YMD = re.compile(r"^(\d{4})[/.](\d{1,2})[/.](\d{1,2})$", re.ASCII)


def _digits_hint(text: str) -> str:
    """`` (write digits as 0-9)`` when ``text`` holds a decimal digit other than ASCII
    0-9 (fullwidth ``２``, Arabic-Indic ``٢``...), else ""."""
    if any(c.isdecimal() and not c.isascii() for c in text):
        return " (write digits as 0-9)"
    return ""


# Measurement values, matched with pyarrow (RE2: linear time, no backreferences).
# Written here rather than taken from pandas/locale: pandas.read_csv(decimal=,
# thousands=) and locale.atof accept "1,234" silently under whichever convention
# they are given, and neither knows percent signs; PilotGate must instead see that
# a cell reads two ways and ask. Each cell is matched against both conventions:
_SPACES = "[ \\x{00a0}\\x{2009}\\x{202f}]"  # space, no-break, thin, narrow no-break
_EXP = r"(?:[eE][+-]?\d+)?"
#: Dot decimal, no grouping ("61.2", "+5", ".5", "1e-5"); plain integers too.
_DOT_PLAIN = rf"^[+-]?(?:\d+(?:\.\d*)?|\.\d+){_EXP}$"
#: Comma decimal, no grouping ("61,2", ",5").
_COMMA_PLAIN = rf"^[+-]?(?:\d+(?:,\d*)?|,\d+){_EXP}$"
#: Thousands grouped in threes by commas or spaces, dot decimal ("1,234.5", "1 234").
_DOT_GROUPED = rf"^[+-]?[1-9]\d{{0,2}}(?:(?:,\d{{3}})+|(?:{_SPACES}\d{{3}})+)(?:\.\d*)?$"
#: Thousands grouped in threes by dots or spaces, comma decimal ("1.234,5", "1 234").
_COMMA_GROUPED = rf"^[+-]?[1-9]\d{{0,2}}(?:(?:\.\d{{3}})+|(?:{_SPACES}\d{{3}})+)(?:,\d*)?$"
#: What to remove before reading a cell with a decimal dot / a decimal comma.
_DOT_GROUP_MARKS = "[, \\x{00a0}\\x{2009}\\x{202f}]"
_COMMA_GROUP_MARKS = "[. \\x{00a0}\\x{2009}\\x{202f}]"


def _today() -> date:
    """Today's date; a function so tests can pin it."""
    return date.today()


@dataclass
class _Reading:
    """How one measurements file is read: the caller's choices in, the decisions out."""

    delimiter: str = ","
    decimal: str | None = None  # chosen by the user, else decided from the file
    date_format: str | None = None  # likewise
    decimal_used: str = ""
    date_format_used: str = ""
    ask_decimal: bool = False
    ask_date_format: bool = False
    allow_distant_weeks: bool = False
    ask_distant_weeks: bool = False


def _not_number_message(v: str) -> str:
    text = _short(v.strip())
    msg = f"'{text}' is not a number"
    if re.fullmatch(r"[+-]?[\d.,\s]+%?", text, re.ASCII) and re.search(
        r"\d[.,\s]\d", text, re.ASCII
    ):
        msg += " (thousands separators group three digits, and one decimal separator ends it)"
    return msg + _digits_hint(text)


def _underflow_message(text: str) -> str:
    """The reason for a nonzero number written so small that it reads as 0."""
    return (
        f"'{_short(text.strip())}' is too close to zero to store: it would become 0 "
        "(write 0 if that is meant)"
    )


#: A number's digits before any exponent include a nonzero one (so it is not 0).
_NONZERO_MANTISSA = r"^[^eE]*[1-9]"


def _label(monday: date) -> str:
    iso = monday.isocalendar()
    return f"{iso.year:04d}-W{iso.week:02d}"


@dataclass
class _Values:
    values: np.ndarray  # float64, NaN where there is no number
    reasons: np.ndarray  # object: the problem of each cell, None when fine
    missing: np.ndarray  # bool: empty cell
    percent: np.ndarray  # bool: the cell ends with a percent sign


def _bools(a: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return pc.fill_null(a, False).to_numpy(zero_copy_only=False).astype(bool)


def _floats(texts: pa.Array, valid: np.ndarray) -> np.ndarray:
    """``texts`` cast to float64 where ``valid`` (the texts there are plain numbers)."""
    picked = pc.if_else(pa.array(valid), texts, pa.scalar(None, pa.string()))
    return pc.fill_null(pc.cast(picked, pa.float64()), np.nan).to_numpy(zero_copy_only=False)


def _parse_values(raw: np.ndarray, lines: np.ndarray, reading: _Reading) -> _Values:
    """Value cells -> numbers, deciding the decimal separator once for the whole file.

    Own code rather than pandas/locale (see the patterns above): every cell is read
    under both conventions -- decimal dot (thousands ``,`` or spaces) and decimal comma
    (thousands ``.`` or spaces) -- and classified: reads one way only, reads both ways
    to the same number (``12``, ``1 234``), or reads two ways to different numbers
    (``1,234`` = 1.234 or 1234). The separator is then, in order: the one the user
    chose; the one every one-way cell uses (when the file mixes both, the cells of the
    minority are errors naming a line of the majority); the delimiter's convention
    (:data:`_DEFAULT_DECIMAL`). A two-way cell is read with its mark as the decimal
    separator when that is the separator decided; reading a lone group of three
    digits as thousands needs the user's declared choice, so otherwise the file is
    refused once with the question (``reading.ask_decimal``). Vectorised with pyarrow.
    """
    n = len(raw)
    reasons = np.full(n, None, dtype=object)
    s = pc.utf8_trim_whitespace(pa.array(raw, pa.string()))
    missing = _bools(pc.equal(s, ""))
    percent = _bools(pc.ends_with(s, "%"))
    body = s
    if percent.any():
        body = pc.utf8_trim_whitespace(pc.replace_substring_regex(s, "%$", ""))

    def match(pattern: str) -> np.ndarray:
        return _bools(pc.match_substring_regex(body, pattern))

    valid_dot = match(_DOT_PLAIN) | match(_DOT_GROUPED)
    valid_comma = match(_COMMA_PLAIN) | match(_COMMA_GROUPED)
    as_dot = _floats(pc.replace_substring_regex(body, _DOT_GROUP_MARKS, ""), valid_dot)
    comma_text = pc.replace_substring_regex(body, _COMMA_GROUP_MARKS, "")
    as_comma = _floats(pc.replace_substring(comma_text, ",", "."), valid_comma)
    dot_only = valid_dot & ~valid_comma
    comma_only = valid_comma & ~valid_dot
    with np.errstate(invalid="ignore"):
        two_way = valid_dot & valid_comma & (as_dot != as_comma)
    has_comma = _bools(pc.match_substring(body, ","))

    texts = None  # the stripped cells, built only when a message needs them

    def text(i: int) -> str:
        nonlocal texts
        if texts is None:
            texts = s.to_pylist()
        return _short(texts[i])

    decimal, chosen = reading.decimal, reading.decimal is not None
    if not chosen:
        n_dot, n_comma = int(dot_only.sum()), int(comma_only.sum())
        if n_dot and n_comma:
            default = _DEFAULT_DECIMAL.get(reading.delimiter, DECIMAL_DOT)
            decimal = (
                default if n_dot == n_comma else (DECIMAL_COMMA if n_comma > n_dot else DECIMAL_DOT)
            )
        elif n_comma:
            decimal = DECIMAL_COMMA
        elif n_dot:
            decimal = DECIMAL_DOT
        else:
            decimal = _DEFAULT_DECIMAL.get(reading.delimiter)
    if decimal == DECIMAL_COMMA:
        values, valid = as_comma, valid_comma
        own, other = comma_only, dot_only
    else:  # dot, or undecided (then only cells that read one number are valid)
        values, valid = as_dot, valid_dot if decimal else (valid_dot & valid_comma)
        own, other = dot_only, comma_only
    if (dot_only | comma_only | two_way).any():
        reading.decimal_used = decimal or ""

    # cells that are numbers only with the other decimal separator
    wrong = other & ~missing
    if wrong.any():
        if chosen:
            msg = f"is not a number with the decimal {decimal} chosen for this file"
            for i in np.flatnonzero(wrong):
                reasons[i] = f"'{text(i)}' {msg}"
        else:
            j = int(np.flatnonzero(own)[0])
            theirs = DECIMAL_DOT if decimal == DECIMAL_COMMA else DECIMAL_COMMA
            for i in np.flatnonzero(wrong):
                reasons[i] = (
                    f"'{text(i)}' reads only with a decimal {theirs}, but line {lines[j]} "
                    f"'{text(j)}' reads only with a decimal {decimal}: use one decimal "
                    "separator in the whole file (or choose it)"
                )
    # cells that read two ways: resolved by a chosen separator, or when their mark is
    # the decided decimal separator; otherwise ask once
    ask = two_way & ~missing
    if not chosen:
        if decimal is not None:
            ask &= has_comma != (decimal == DECIMAL_COMMA)
        if ask.any():
            i = int(np.flatnonzero(ask)[0])
            mark = "comma" if has_comma[i] else "dot"
            as_decimal, as_thousands = (
                (as_comma[i], as_dot[i]) if has_comma[i] else (as_dot[i], as_comma[i])
            )
            more = int(ask.sum()) - 1
            reasons[i] = (
                f"'{text(i)}' reads two ways: {_num_text(as_decimal)} with a decimal {mark}, "
                f"or {_num_text(as_thousands)} with the {mark} as thousands separator"
                + (f" ({_plural(more, 'more value')} like it)" if more else "")
                + ": choose the decimal separator (dot or comma) and import again"
            )
            reading.ask_decimal = True
            valid = valid & ~ask
    bad = ~missing & ~valid & ~wrong & ~ask
    for i in np.flatnonzero(bad):
        reasons[i] = _not_number_message(text(i))
    # a nonzero number so small that float64 reads it as 0 (1e-400): never a silent 0
    zero = valid & ~missing & (values == 0)
    if zero.any():
        underflow = zero & _bools(pc.match_substring_regex(body, _NONZERO_MANTISSA))
        for i in np.flatnonzero(underflow):
            reasons[i] = _underflow_message(text(i))
        valid = valid & ~underflow
    values = np.where(valid & ~missing, values, np.nan)
    return _Values(values, reasons, missing, percent & valid)


@dataclass(frozen=True)
class TypedNumber:
    """A number typed into a form, read by :func:`parse_typed_number`.

    Attributes:
        value: the number (the metric's unit; a percent value in percentage points),
            None when the text is empty or has a problem.
        problem: why the text is not a number, in plain words; None when fine.
        as_typed: True when the text is the number's plain form (``61.2``, ``-3``): it
            can only mean ``value``. False when reading it took an interpretation (a
            decimal comma, thousands separators, a unit or a percent sign), which a
            form should show before it writes.
    """

    value: float | None
    problem: str | None = None
    as_typed: bool = True


_PLAIN_TYPED = re.compile(r"^[+-]?(?:\d+(?:\.\d+)?|\.\d+)$")


def parse_typed_number(text: str, unit: str = "") -> TypedNumber:
    """Read one number as a person types it, with the same reader as the import
    (:func:`_parse_values`): decimal dot or comma (``4,2`` = 4.2), thousands marks
    (``1.234,5`` = 1234.5, ``1,234.5``, ``1 234``), a percent sign on a ``%`` metric,
    and a trailing unit equal to the metric's (``61,2 h``). A text that reads two ways
    (``1,234``: 1.234 or 1234) is refused with both readings; never guessed.

    Args:
        text: what was typed.
        unit: the metric's unit ("" when none).

    Returns:
        :class:`TypedNumber` (value None and no problem for an empty text).
    """
    raw = (text or "").strip()
    if not raw:
        return TypedNumber(None)
    body = raw
    u = (unit or "").strip()
    if u and u != PERCENT_UNIT and body.lower().endswith(u.lower()):
        stripped = body[: len(body) - len(u)].rstrip()
        if stripped and stripped[-1].isdigit():
            body = stripped
    reading = _Reading(delimiter="")  # no file convention: a two-way text is asked
    parsed = _parse_values(np.array([body], dtype=object), np.array([1]), reading)
    value = float(parsed.values[0])
    if parsed.reasons[0] is not None or math.isnan(value):
        if reading.ask_decimal:
            values = (
                _parse_values(
                    np.array([body], dtype=object), np.array([1]), _Reading(decimal=DECIMAL_COMMA)
                ).values[0],
                _parse_values(
                    np.array([body], dtype=object), np.array([1]), _Reading(decimal=DECIMAL_DOT)
                ).values[0],
            )
            a, b = sorted(float(v) for v in values)
            return TypedNumber(
                None,
                f"'{_short(raw)}' reads two ways: {_num_text(a)} or {_num_text(b)}. Type "
                f"{_num_text(b)} (no thousands separator) for {_num_text(b)}, or add a decimal "
                f"digit ({_short(raw)}0) for {_num_text(a)}",
                False,
            )
        return TypedNumber(None, _not_number_message(raw), False)
    if parsed.percent[0] and u != PERCENT_UNIT:
        return TypedNumber(
            None,
            f"'{_short(raw)}' has a percent sign but this metric is measured in "
            f"{u or 'no unit'}: type the number without %",
            False,
        )
    if not math.isfinite(value) or abs(value) > MAX_ABS_VALUE:
        return TypedNumber(None, f"'{_short(raw)}' is not a finite number in range", False)
    return TypedNumber(value, None, bool(_PLAIN_TYPED.match(raw)))


def _parse_weeks(
    rec: pd.DataFrame, column: str, reading: _Reading
) -> tuple[pd.Series, list[RowError]]:
    """Week cells (trimmed, non-empty) -> Monday dates (object Series, None = invalid).

    ISO labels, ISO dates and year-first dates always; day/month/year dates as
    ``reading.date_format`` says, else only when the whole column reads one way (see
    :func:`_resolve_dmy`). Each distinct text is parsed once.
    """
    errors: list[RowError] = []
    texts = rec[WEEK_COL]
    if texts.empty:
        return pd.Series(dtype=object), errors
    parsed: dict[str, date | None] = {}
    bad: dict[str, str] = {}
    other: list[str] = []
    for u in texts.unique():
        try:
            parsed[u] = parse_week(u)
        except WeekError as exc:
            ymd = _YMD.match(u)
            if ymd:
                try:
                    parsed[u] = monday_of(date(*(int(x) for x in ymd.groups())))
                except ValueError as e:
                    parsed[u] = None
                    bad[u] = f"'{u}' is not a valid date ({e})"
            elif _DMY.match(u):
                other.append(u)
            else:
                parsed[u] = None
                bad[u] = str(exc)
    if other:
        _resolve_dmy(rec, other, parsed, bad, errors, column, reading)
    today = _today()
    for u, monday in parsed.items():
        if monday is not None and monday > today:
            bad[u] = f"week {_label(monday)} is in the future"
            parsed[u] = None
        elif monday is not None and monday < EARLIEST_DATE:
            bad[u] = f"week {_label(monday)} is before {EARLIEST_DATE.year}: check the year"
            parsed[u] = None
    mondays = texts.map(parsed).astype(object)
    mondays = mondays.where(mondays.notna(), None)
    if bad:
        is_bad = texts.isin(list(bad))
        sub = rec[is_bad]
        errors.extend(
            RowError(int(ln), column, bad[t])
            for ln, t in zip(sub[LINE_COL], sub[WEEK_COL], strict=True)
        )
    return mondays, errors


def _dmy(text: str, dayfirst: bool) -> date | None:
    a, b, y = (int(x) for x in _DMY.match(text).groups())
    day, month = (a, b) if dayfirst else (b, a)
    try:
        return date(y, month, day)
    except ValueError:
        return None


def _resolve_dmy(
    rec: pd.DataFrame,
    other: list[str],
    parsed: dict[str, date | None],
    bad: dict[str, str],
    errors: list[RowError],
    column: str,
    reading: _Reading,
) -> None:
    """Decide day-first vs month-first once, for the whole column.

    Own code because pandas' ``dayfirst`` is only a hint it applies row by row (a
    column of 12/01/2012 and 13/01/2012 would silently mix both orders). Here: the
    user's choice when given; else the order under which every such date is valid;
    when both orders fit every date and give different weeks the user is asked once
    (``reading.ask_date_format``); when neither fits every date, the order most rows
    fit wins and each other date is an error naming a line of the winning order.
    """
    first_line = rec.groupby(WEEK_COL, sort=False)[LINE_COL].min().to_dict()
    if reading.date_format is not None:
        dayfirst = reading.date_format == DATE_DMY
        reading.date_format_used = reading.date_format
        word = _DATE_WORDS[reading.date_format]
        for u in other:
            d = _dmy(u, dayfirst)
            parsed[u] = None if d is None else monday_of(d)
            if d is None:
                bad[u] = f"'{u}' is not a valid date read {word} (the date format chosen)"
        return
    day_first = {u: _dmy(u, True) for u in other}
    month_first = {u: _dmy(u, False) for u in other}
    df_all = all(v is not None for v in day_first.values())
    mf_all = all(v is not None for v in month_first.values())
    if df_all and mf_all:
        differ = [u for u in other if day_first[u] != month_first[u]]
        if differ:
            u = min(differ, key=first_line.get)
            errors.append(
                RowError(
                    int(first_line[u]),
                    column,
                    f"dates like '{u}' read two ways in column {column} (day-first: "
                    f"{day_first[u].isoformat()}, month-first: {month_first[u].isoformat()}) "
                    "and no date in the file tells which: choose the date format "
                    "(day-first or month-first), or write ISO dates YYYY-MM-DD",
                )
            )
            reading.ask_date_format = True
            for v in other:
                parsed[v] = None  # reported once above
            return
        chosen = day_first
    elif df_all:
        chosen = day_first
        reading.date_format_used = DATE_DMY
    elif mf_all:
        chosen = month_first
        reading.date_format_used = DATE_MDY
    else:
        rows = rec[rec[WEEK_COL].isin(other)]
        counts = rows[WEEK_COL].value_counts()
        n_df = sum(int(counts[u]) for u in other if day_first[u] is not None)
        n_mf = sum(int(counts[u]) for u in other if month_first[u] is not None)
        best, rest, best_name, rest_name = (
            (day_first, month_first, "day-first", "month-first")
            if n_df >= n_mf
            else (month_first, day_first, "month-first", "day-first")
        )
        reading.date_format_used = DATE_DMY if best is day_first else DATE_MDY
        example = min((u for u in other if best[u] is not None), key=first_line.get, default=None)
        for u in other:
            if best[u] is not None:
                parsed[u] = monday_of(best[u])
            elif rest[u] is not None and example is not None:
                parsed[u] = None
                bad[u] = (
                    f"'{u}' is only valid {rest_name}, but line {first_line[example]} "
                    f"'{example}' is only valid {best_name}: use one date format "
                    "(ISO YYYY-MM-DD is safest)"
                )
            else:
                parsed[u] = None
                bad[u] = f"'{u}' is not a valid date"
        return
    for u in other:
        parsed[u] = monday_of(chosen[u])


def _parse_iso_date(text: str) -> date:
    m = _ISO_DATE.match(text)
    if not m:
        raise ValueError(f"'{text}' is not a date (expected YYYY-MM-DD){_digits_hint(text)}")
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError as exc:
        raise ValueError(f"'{text}' is not a valid date ({exc})") from None


def _parse_number(text: str) -> float:
    if not _NUMBER.match(text):
        raise ValueError(_not_number_message(text))
    x = float(text)
    if not math.isfinite(x):
        raise ValueError(f"'{text.strip()}' is not a finite number")
    if x == 0 and re.match(_NONZERO_MANTISSA, text):
        raise ValueError(_underflow_message(text))
    return x


def _parse_int(text: str) -> int:
    if not _INT.match(text):
        raise ValueError(f"'{text}' is not a whole number{_digits_hint(text)}")
    return int(text)
