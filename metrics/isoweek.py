"""ISO 8601 weeks: parsing, labels and arithmetic.

A week is stored as the ``datetime.date`` of its Monday and shown as ``YYYY-Www``
(ISO 8601; ISO years have 52 or 53 weeks and week 1 may start in December).
Python's ``date.isocalendar`` / ``date.fromisocalendar`` implement the standard;
this module only adds strict parsing and pandas helpers.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import pandas as pd

# re.ASCII: digits are 0-9 only (Python's \d and int() also take fullwidth and
# Arabic-Indic digits, which would be read silently).
WEEK_LABEL_RE = re.compile(r"^\s*(\d{4})-?W(\d{1,2})\s*$", re.IGNORECASE | re.ASCII)
ISO_DATE_RE = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})\s*$", re.ASCII)


class WeekError(ValueError):
    """A text that is not a valid ISO week label or ISO date."""


def weeks_in_iso_year(year: int) -> int:
    """Number of ISO weeks (52 or 53) in ISO year ``year``.

    Dec 28 always lies in the last ISO week of its year (ISO 8601).
    """
    return date(year, 12, 28).isocalendar().week


def monday_of(d: date | datetime) -> date:
    """Monday of the ISO week containing ``d``."""
    if isinstance(d, datetime):
        d = d.date()
    return d - timedelta(days=d.weekday())


def week_label(d: date | datetime) -> str:
    """ISO week label ``YYYY-Www`` of the week containing ``d`` (e.g. ``2026-W05``)."""
    if isinstance(d, datetime):
        d = d.date()
    iso = d.isocalendar()
    return f"{iso.year:04d}-W{iso.week:02d}"


def parse_week(text: str) -> date:
    """Parse an ISO week label (``2012-W03``) or ISO date (``2012-01-18``) to its Monday.

    Raises:
        WeekError: the text is neither, names a week that does not exist (week 53 of a
            52-week ISO year, week 0), or a date that does not exist (2023-02-30).
    """
    if not isinstance(text, str):
        raise WeekError(f"{text!r} is not a week (expected YYYY-Www or YYYY-MM-DD)")
    m = WEEK_LABEL_RE.match(text)
    if m:
        year, week = int(m.group(1)), int(m.group(2))
        if year < 1:
            raise WeekError(f"{text.strip()!r}: year out of range")
        last = weeks_in_iso_year(year)
        if not 1 <= week <= last:
            raise WeekError(
                f"{text.strip()!r} does not exist: ISO year {year} has weeks 1 to {last}"
            )
        return date.fromisocalendar(year, week, 1)
    m = ISO_DATE_RE.match(text)
    if m:
        try:
            d = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError as exc:
            raise WeekError(f"{text.strip()!r} is not a valid date ({exc})") from None
        return monday_of(d)
    foreign_digits = any(c.isdecimal() and not c.isascii() for c in text)
    hint = " written with the digits 0-9" if foreign_digits else ""
    raise WeekError(f"{text.strip()!r} is not a week (expected YYYY-Www or YYYY-MM-DD{hint})")


def week_labels(weeks: pd.Series) -> pd.Series:
    """Vectorised :func:`week_label`: datetime64 Series of Mondays -> ``YYYY-Www`` strings.

    Missing entries stay missing (``<NA>``).
    """
    w = pd.to_datetime(weeks)
    iso = w.dt.isocalendar()
    out = iso["year"].astype("string") + "-W" + iso["week"].astype("string").str.zfill(2)
    return out.astype("object").where(w.notna(), None)


def mondays(dates: pd.Series) -> pd.Series:
    """Vectorised :func:`monday_of` on a datetime64 Series (time of day dropped)."""
    d = pd.to_datetime(dates).dt.normalize()
    return d - pd.to_timedelta(d.dt.day_of_week, unit="D")


def weeks_between(start: date, end: date) -> int:
    """Whole ISO weeks from the week of ``start`` to the week of ``end`` (end exclusive).

    ``weeks_between(d, d) == 0``; negative when ``end`` is before ``start``.
    """
    return (monday_of(end) - monday_of(start)).days // 7
