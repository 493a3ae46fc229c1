"""CSV in and out: measurement and pilot-definition imports, and the one CSV writer.

DESIGN §6 and §7. Importing is all-or-nothing: a file is parsed and validated
completely first, every wrong row is reported (line number, column, reason) and
nothing is written; only a clean file is written, in one call to the store. A file
that would change stored values is written only when the caller says so
(``update=True``; the CLI's ``--update``, the Import page's confirmation).

Reading rules (strict, nothing is coerced silently; ``docs/import-formats.md`` tells
users the same):

* bytes are decoded as UTF-8 (with or without a byte-order mark); ``str`` is taken
  as is (a leading BOM is dropped).
* Measurements files: the field delimiter -- comma, semicolon or tab -- is detected
  (:func:`_detect_delimiter`: ``csv.Sniffer``, checked against the header); an Excel
  ``sep=;`` first line names it and is skipped. Pilot definition files are
  comma-separated.
* Header names are case-insensitive and trimmed. Entirely blank lines (or lines of
  only delimiters) are skipped; line numbers are physical lines of the file (header =
  line 1 when it is the first line): a record's line is the line it starts on, and
  a quoted field holding a newline counts its lines too. In a measurements file a
  line that repeats the header is skipped and reported as a notice.
* Fields may be quoted (also after spaces that follow the delimiter); spaces around
  pilot, metric, week and value cells are dropped.
* A row with more fields than the header is an error unless the extra fields are
  empty (trailing delimiters); a row with fewer fields is an error.
* Measurement values (:func:`_parse_values`): decimal dot or decimal comma, thousands
  separators (the other mark, or spaces) in groups of three, a percent sign on a
  metric whose unit is ``%`` (``12,5 %`` is 12.5, never 0.125). The decimal
  separator is decided once for the whole file; a number that reads two ways
  (``1,234``) without a declared separator is refused with a question to the user
  (``decimal="dot"|"comma"``). ``nan``, ``inf`` and an empty value are errors; an
  empty value is never 0.
* Weeks: ISO week labels (``2012-W03``) and ISO dates always; ``YYYY/MM/DD``; day and
  month dates (``18/01/2012``) decided once for the whole column -- when every such
  date reads both ways the user is asked (``date_format="dmy"|"mdy"``).
* Numbers in pilot definition files: dot decimal, optional sign and exponent.
* Formula neutralisation is symmetric: :func:`to_csv_text` prefixes ``'`` to a text
  cell that starts with ``= + - @ \\t \\r``, or with one or more ``'`` followed by
  one of those (so text that already looks neutralised stays distinguishable); the
  readers strip ONE leading ``'`` from a text cell (pilot, metric, note; the text
  fields of the pilot CSV) ONLY when the rest starts with one of those characters,
  after any further ``'``. The two rules are inverse, so every exported text imports
  back exactly (``=x`` -> ``'=x`` -> ``=x``; ``'=x`` -> ``''=x`` -> ``'=x``; ``'hi``
  and ``it's`` are left alone both ways). Number cells are never touched.

Measurement CSV (long form, canonical)::

    pilot,metric,week,value,note

Wide form: ``pilot,week,<metric key>,<metric key>,...`` (detected when the header
has pilot and week but neither metric nor value); every non-empty metric cell is a
value, an empty one is no value; every column after pilot and week is a metric key
(the wide form has no note column). Metric keys are matched case-insensitively (keys
are always lowercase).

Pilot definitions CSV (one row per metric, pilot fields repeated)::

    pilot,vendor,use_case,owner,start_date,decision_date,stage,metric,label,unit,
    direction,role,baseline,target,margin,min,max[,trailing_window,min_weeks,cost,
    value_per_unit]
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from pydantic import ValidationError
from sqlmodel import Session

from metrics import computations as C
from metrics import store
from metrics.isoweek import WeekError, monday_of, parse_week, week_labels
from metrics.models import (
    CONTROL_CHARS_RE,
    EARLIEST_DATE,
    MAX_ABS_VALUE,
    MetricCreate,
    PilotCreate,
    collapse_spaces,
    pilot_name_key,
)
from metrics.settings import get_settings

__all__ = [
    "ACTION_COL",
    "CHANGE_COLUMNS",
    "DATE_DMY",
    "DATE_FORMATS",
    "DATE_MDY",
    "DECIMALS",
    "DECIMAL_COMMA",
    "DECIMAL_DOT",
    "DELIMITER_NAMES",
    "EXPORT_COLUMNS",
    "FORMULA_TRIGGERS",
    "LINE_COL",
    "METRIC_COL",
    "METRIC_ID_COL",
    "NOTE_COL",
    "OLD_NOTE_COL",
    "OLD_VALUE_COL",
    "PILOT_COL",
    "PILOT_CSV_COLUMNS",
    "REPORT_COLUMNS",
    "VALUE_COL",
    "WEEK_COL",
    "WEEK_LABEL_COL",
    "ImportReport",
    "PilotImportReport",
    "Progress",
    "RowError",
    "TypedNumber",
    "export_measurements_frame",
    "import_measurements",
    "import_pilots",
    "parse_measurements_csv",
    "parse_pilots_csv",
    "parse_typed_number",
    "pilot_names_in",
    "to_csv_text",
]

# --------------------------------------------------------------------------- columns

PILOT_COL = C.PILOT  # "pilot"
METRIC_COL = "metric"
WEEK_COL = C.WEEK  # "week"
VALUE_COL = C.VALUE  # "value"
NOTE_COL = "note"
LINE_COL = "line"
WEEK_LABEL_COL = "week_label"
METRIC_ID_COL = C.METRIC_ID  # "metric_id"
ACTION_COL = "action"
OLD_VALUE_COL = "old_value"
OLD_NOTE_COL = "old_note"

#: Long-form measurement columns: required ones, then the optional note.
LONG_REQUIRED = (PILOT_COL, METRIC_COL, WEEK_COL, VALUE_COL)
LONG_OPTIONAL = (NOTE_COL,)
#: Wide form: these two, then one column per metric key.
WIDE_REQUIRED = (PILOT_COL, WEEK_COL)

#: Columns of :attr:`ImportReport.rows`, in order.
REPORT_COLUMNS = [
    LINE_COL,
    PILOT_COL,
    METRIC_COL,
    WEEK_COL,
    WEEK_LABEL_COL,
    VALUE_COL,
    NOTE_COL,
    METRIC_ID_COL,
    ACTION_COL,
]
#: Columns of :attr:`ImportReport.changes` (stored values a write would overwrite).
CHANGE_COLUMNS = [
    LINE_COL,
    PILOT_COL,
    METRIC_COL,
    WEEK_COL,
    WEEK_LABEL_COL,
    METRIC_ID_COL,
    OLD_VALUE_COL,
    VALUE_COL,
    OLD_NOTE_COL,
    NOTE_COL,
]
#: Columns of :func:`export_measurements_frame` (the long form), in order.
EXPORT_COLUMNS = [PILOT_COL, METRIC_COL, WEEK_COL, VALUE_COL, NOTE_COL]

CREATE, UPDATE, UNCHANGED = "create", "update", "unchanged"

#: Field delimiters of a measurements CSV (detected), with their names for people.
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
#: Decimal separators of measurement values (``decimal=`` of the readers).
DECIMAL_DOT, DECIMAL_COMMA = "dot", "comma"
DECIMALS = (DECIMAL_DOT, DECIMAL_COMMA)
_DECIMAL_MARK = {DECIMAL_DOT: ".", DECIMAL_COMMA: ","}
#: The decimal separator a delimiter implies when the values do not tell: a comma file
#: cannot hold an unquoted decimal comma; semicolon files are what spreadsheets in
#: decimal-comma locales write. Tab files imply nothing.
_DEFAULT_DECIMAL = {",": DECIMAL_DOT, ";": DECIMAL_COMMA}
#: Day/month order of non-ISO dates (``date_format=`` of the readers).
DATE_DMY, DATE_MDY = "dmy", "mdy"
DATE_FORMATS = (DATE_DMY, DATE_MDY)
_DATE_WORDS = {DATE_DMY: "day-first", DATE_MDY: "month-first"}
#: The unit of metrics whose values may carry a percent sign.
PERCENT_UNIT = "%"

#: ``progress(fraction 0..1, text)``: called while a large file is read and written.
Progress = Callable[[float, str], None]
#: How often (records) the reader reports progress.
_PROGRESS_EVERY = 5000

#: Pilot definitions CSV columns (DESIGN §7), then the optional extras.
PILOT_CSV_COLUMNS = [
    "pilot",
    "vendor",
    "use_case",
    "owner",
    "start_date",
    "decision_date",
    "stage",
    "metric",
    "label",
    "unit",
    "direction",
    "role",
    "baseline",
    "target",
    "margin",
    "min",
    "max",
]
PILOT_CSV_EXTRA = ["trailing_window", "min_weeks", "cost", "value_per_unit"]
PILOT_CSV_REQUIRED = ["pilot", "start_date", "decision_date", "metric", "direction", "target"]
#: Pilot-level columns: identical on every row of one pilot.
PILOT_FIELDS = [
    "vendor",
    "use_case",
    "owner",
    "start_date",
    "decision_date",
    "stage",
    "trailing_window",
    "min_weeks",
    "cost",
]
#: File column -> model field, where they differ.
_FILE_TO_FIELD = {"pilot": "name", "metric": "key", "min": "min_value", "max": "max_value"}
_FIELD_TO_FILE = {v: k for k, v in _FILE_TO_FIELD.items()}

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

NOTE_MAX = 1000  # models.MeasurementBase.note max_length

# =========================================================================== reports


@dataclass(frozen=True)
class RowError:
    """One problem in an imported file.

    Attributes:
        line: 1-based physical line of the file (header = line 1); None for problems
            with the file as a whole.
        column: the column's name as written in the header (trimmed), or None.
        reason: what is wrong, in plain words.
    """

    line: int | None
    column: str | None
    reason: str

    def __str__(self) -> str:
        if self.line is None:
            where = "file" if self.column is None else f"column {self.column}"
        else:
            where = f"line {self.line}"
            if self.column is not None:
                where += f", column {self.column}"
        return f"{where}: {self.reason}"


def _errors_line(n: int) -> str:
    return f"{n} error{'s' if n != 1 else ''}, nothing written"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _empty_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            LINE_COL: pd.Series([], dtype="int64"),
            PILOT_COL: pd.Series([], dtype=object),
            METRIC_COL: pd.Series([], dtype=object),
            WEEK_COL: pd.Series([], dtype=object),
            WEEK_LABEL_COL: pd.Series([], dtype=object),
            VALUE_COL: pd.Series([], dtype="float64"),
            NOTE_COL: pd.Series([], dtype=object),
            METRIC_ID_COL: pd.Series([], dtype="int64"),
            ACTION_COL: pd.Series([], dtype=object),
        }
    )


def _empty_changes() -> pd.DataFrame:
    return _changes_frame(_empty_rows().assign(**{OLD_VALUE_COL: 0.0, OLD_NOTE_COL: ""}))


class _Report:
    """What both import reports share: ``errors`` and whether there are none."""

    errors: list[RowError]

    @property
    def ok(self) -> bool:
        """True when the file has no errors."""
        return not self.errors


@dataclass
class ImportReport(_Report):
    """The outcome of reading (and maybe writing) a measurements CSV.

    Attributes:
        rows: the parsed, valid rows, in file order: line (int64, the physical line),
            pilot, metric (object: the pilot's name, the metric key), week (object:
            ``datetime.date`` of the Monday), week_label (object, ``YYYY-Www``),
            value (float64, the metric's unit; a percent value in percentage points),
            note (object), metric_id (int64), action (object: ``create`` |
            ``update`` | ``unchanged`` compared with the stored values). An empty
            frame with these columns when there are errors.
        errors: every problem found, sorted by line (file-level ones first).
        form: ``long`` | ``wide`` | ``""`` when the header fits neither.
        created, updated, unchanged: what was written, or (dry run, parse only,
            refused) what would be written.
        written: True once the rows were handed to the store.
        notices: things the reader did that the user should know but that are not
            errors (a repeated header line skipped), sorted by line.
        changes: the rows whose action is ``update``, with what is stored now
            (:data:`CHANGE_COLUMNS`: line, pilot, metric, week, week_label,
            metric_id, old_value, value, old_note, note); empty when nothing
            stored would change.
        needs_confirmation: True when nothing was written because stored values
            would change and the caller did not allow it (``update=False``):
            ``changes`` lists them. ``ok`` is then False.
        delimiter: the field delimiter read (``,`` ``;`` or tab).
        decimal: the decimal separator the values were read with (``dot`` |
            ``comma``), ``""`` when no value has a decimal or thousands separator.
        date_format: how non-ISO dates were read (``dmy`` | ``mdy``), ``""`` when
            the file has none.
        ask_decimal, ask_date_format: the file reads two ways and the user must
            choose (the decimal separator; day-first or month-first); ``errors``
            holds the question, with the line where it arises.
        reason: the revision reason the rows were (or would be) written with.
        ask_distant_weeks: some weeks are far from their pilot's dates and were
            refused; confirming them (``allow_distant_weeks``) imports them.
    """

    rows: pd.DataFrame
    errors: list[RowError]
    form: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    written: bool = False
    notices: list[RowError] = field(default_factory=list)
    changes: pd.DataFrame = field(default_factory=_empty_changes)
    needs_confirmation: bool = False
    delimiter: str = ","
    decimal: str = ""
    date_format: str = ""
    ask_decimal: bool = False
    ask_date_format: bool = False
    reason: str = ""
    ask_distant_weeks: bool = False

    @property
    def ok(self) -> bool:
        """True when the file has no errors and was not refused for want of a
        confirmation (see ``needs_confirmation``)."""
        return not self.errors and not self.needs_confirmation

    def summary_line(self) -> str:
        """One line for a person, e.g. ``50 rows: 48 created, 2 updated, 0 unchanged``
        (with `` (dry run, nothing written)`` when nothing was written), ``3 errors,
        nothing written``, or when refused ``... nothing written: 2 stored values
        would change and the overwrite was not confirmed``."""
        if self.errors:
            return _errors_line(len(self.errors))
        n = len(self.rows)
        text = (
            f"{_plural(n, 'row')}: {self.created} created, "
            f"{self.updated} updated, {self.unchanged} unchanged"
        )
        if self.needs_confirmation:
            n = len(self.changes)
            return (
                f"{text}; nothing written: {_plural(n, 'stored value')} would change "
                "and the overwrite was not confirmed"
            )
        return text if self.written else text + " (dry run, nothing written)"

    def change_lines(self) -> list[str]:
        """One line per stored value that would change, in file order, e.g.
        ``line 3: Helpdesk triage assistant, resolution_time, 2012-W02: 90 -> 85.5``
        (with ``; note '' -> 'typo fixed'`` when the note changes too)."""
        out = []
        for c in self.changes.itertuples(index=False):
            text = (
                f"line {c.line}: {c.pilot}, {c.metric}, {c.week_label}: "
                f"{_num_text(c.old_value)} -> {_num_text(c.value)}"
            )
            if c.old_note != c.note:
                text += f"; note {c.old_note!r} -> {c.note!r}"
            out.append(text)
        return out


@dataclass
class PilotImportReport(_Report):
    """The outcome of reading (and maybe writing) a pilot definitions CSV.

    Attributes:
        pilots: the parsed pilots with their metrics, in order of first appearance;
            empty when there are errors.
        errors: every problem found, sorted by line.
        created, updated: pilots created / updated (or that would be, when not written).
        metrics_created, metrics_updated: metrics created / changed (likewise).
        written: True once the pilots were saved through the store.
    """

    pilots: list[tuple[PilotCreate, list[MetricCreate]]]
    errors: list[RowError]
    created: int = 0
    updated: int = 0
    metrics_created: int = 0
    metrics_updated: int = 0
    written: bool = False
    unchanged: int = 0
    details: list[str] = field(default_factory=list)

    def summary_line(self) -> str:
        """E.g. ``2 pilots: 1 created, 1 updated; metrics: 5 created, 1 updated``
        (``, 1 unchanged`` after the pilots' counts when a pilot had nothing to change;
        `` (dry run, nothing written)`` when not written) or ``3 errors, nothing
        written``. ``details`` says per pilot what changed (:meth:`SaveResult.describe`)."""
        if self.errors:
            return _errors_line(len(self.errors))
        n = len(self.pilots)
        same = f", {self.unchanged} unchanged" if self.unchanged else ""
        text = (
            f"{n} pilot{'s' if n != 1 else ''}: {self.created} created, "
            f"{self.updated} updated{same}; metrics: {self.metrics_created} created, "
            f"{self.metrics_updated} updated"
        )
        return text if self.written else text + " (dry run, nothing written)"


# =========================================================================== reading


@dataclass
class _Table:
    header_line: int
    names: list[str]  # normalised: trimmed, lowercase
    display: list[str]  # trimmed, as written
    lines: list[int] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    delimiter: str = ","
    notices: list[RowError] = field(default_factory=list)
    #: fields of the header line as written, trailing empty ones included
    width: int = 0
    #: lines of rows that had more fields than the header line, the extra ones empty
    #: (cut off): checked for a value split by an unquoted comma
    padded: list[int] = field(default_factory=list)

    def column(self, j: int) -> list[str]:
        return [r[j] for r in self.rows]


def _decode(data: bytes | str) -> str:
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            return bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise _FileError(
                f"file is not UTF-8 text (invalid byte at position {exc.start}); "
                "save it as 'CSV UTF-8'"
            ) from None
    if not isinstance(data, str):
        raise TypeError(f"data must be bytes or str, not {type(data).__name__}")
    try:
        data.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates: not text any file could hold
        raise _FileError(
            f"file is not UTF-8 text (invalid character at position {exc.start})"
        ) from None
    return data.removeprefix("\ufeff")


class _FileError(Exception):
    def __init__(self, reason: str, line: int | None = None, column: str | None = None):
        super().__init__(reason)
        self.error = RowError(line, column, reason)


def _fmt_names(names: Iterable[str]) -> str:
    return ", ".join(names) or "none"


_SEP_LINE = re.compile(r"^sep=([,;\t])\r?$", re.IGNORECASE)
#: Lines given to csv.Sniffer (it reads a sample, not the file).
_SNIFF_LINES = 50


def _detect_delimiter(text: str) -> tuple[str, bool]:
    """The field delimiter of a measurements file, and whether line 1 is ``sep=X``.

    ``csv.Sniffer`` guesses from a sample of the first lines (restricted to comma,
    semicolon and tab). Its guess is checked against the header, which must name
    ``pilot`` and ``week`` in both forms: when the sniffer fails (e.g. a one-row
    file) or is misled (e.g. notes full of commas in a semicolon file), the
    delimiter that splits the header into those names wins. An Excel ``sep=X``
    first line names the delimiter outright.
    """
    head = text[: 1 << 16]
    first = head.partition("\n")[0]
    m = _SEP_LINE.match(first)
    if m:
        return m.group(1), True
    lines = [ln for ln in head.splitlines() if ln.strip()][:_SNIFF_LINES]
    if not lines:
        return ",", False
    fits = []
    for d in DELIMITER_NAMES:
        try:
            names = {c.strip().lower() for c in next(csv.reader([lines[0]], delimiter=d))}
        except (csv.Error, StopIteration):
            continue
        if {PILOT_COL, WEEK_COL} <= names:
            fits.append(d)
    try:
        sniffed = csv.Sniffer().sniff("\n".join(lines), delimiters="".join(DELIMITER_NAMES))
        guess: str | None = sniffed.delimiter
    except csv.Error:
        guess = None
    if guess is not None and (guess in fits or not fits):
        return guess, False
    return (fits[0] if fits else ","), False


def _read_table(
    data: bytes | str, *, measurements: bool = False, progress: Progress | None = None
) -> tuple[_Table, list[RowError]]:
    """CSV text -> header and records with their physical line numbers.

    Rows with the wrong number of fields are reported and left out (trailing empty
    fields beyond the header are allowed). With ``measurements`` the delimiter is
    detected and repeated header lines are skipped (as notices); otherwise the file
    is comma-separated. Raises _FileError when nothing can be read.
    """
    text = _decode(data)
    delimiter, sep_line = _detect_delimiter(text) if measurements else (",", False)
    # A quoted field after spaces (`a, "b, c"`) needs skipinitialspace, which would
    # also drop leading spaces of unquoted notes; so it is used only when the file
    # needs it (PilotGate's own exports never do).
    spaced_quote = '"' in text and re.search(
        rf"(?:^|{re.escape(delimiter)})[ \t]+\"", text, re.MULTILINE
    )
    try:
        table, errors = _read_records(text, delimiter, sep_line, False, progress)
        problems = _split_problems(table, errors) if spaced_quote else 0
    except _FileError:
        if not spaced_quote:
            raise
        table, errors, problems = None, [], math.inf
    if problems:  # read again skipping spaces before quotes; keep the better reading
        second = _read_records(text, delimiter, sep_line, True, progress)
        if _split_problems(*second) < problems:
            table, errors = second
    if table is None or (not table.rows and not errors):
        raise _FileError("no rows")
    table.delimiter = delimiter
    if measurements:
        _drop_repeated_headers(table)
        if not table.rows and not errors:
            raise _FileError("no rows")
    return table, errors


def _split_problems(table: _Table | None, errors: list[RowError]) -> int:
    """Signs that quoted fields were split: field-count errors, and cells that start
    with spaces and a quote."""
    if table is None:
        return 0
    cells = sum(
        1 for r in table.rows for c in r if c[:1] in (" ", "\t") and c.lstrip(" \t")[:1] == '"'
    )
    return len(errors) + cells


def _read_records(
    text: str,
    delimiter: str,
    sep_line: bool,
    skipinitialspace: bool,
    progress: Progress | None,
) -> tuple[_Table | None, list[RowError]]:
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=delimiter,
        strict=True,
        skipinitialspace=skipinitialspace,
    )
    table: _Table | None = None
    errors: list[RowError] = []
    ncols = 0
    prev = 0
    max_rows = get_settings().max_import_rows
    total = text.count("\n") + 1 if progress is not None else 0
    countdown = _PROGRESS_EVERY
    try:
        if sep_line:
            next(reader, None)
            prev = reader.line_num
        for rec in reader:
            start = prev + 1
            prev = reader.line_num
            if not "".join(rec).strip():
                continue
            if table is None:
                table = _header(start, rec)
                ncols = len(table.names)
                _check_width(table)
                continue
            if len(table.rows) + len(errors) >= max_rows:
                raise _FileError(
                    f"the file has more than {max_rows:,} rows: at most {max_rows:,} are "
                    "read at once (PILOTGATE_MAX_IMPORT_ROWS); split it into smaller files"
                )
            countdown -= 1
            if not countdown and progress is not None:
                countdown = _PROGRESS_EVERY
                progress(0.5 * prev / total, f"Reading line {prev:,} of {total:,}")
            n = len(rec)
            if n != ncols:
                if n > ncols and not any(c.strip() for c in rec[ncols:]):
                    if n > table.width:
                        table.padded.append(start)
                    rec = rec[:ncols]
                elif n > ncols:
                    errors.append(
                        RowError(
                            start,
                            None,
                            f"{n} fields but the header has {ncols} columns (quote a "
                            f"value that contains a {DELIMITER_NAMES[delimiter]})",
                        )
                    )
                    continue
                else:
                    errors.append(
                        RowError(start, None, f"only {n} fields but the header has {ncols} columns")
                    )
                    continue
            table.lines.append(start)
            table.rows.append(rec)
    except csv.Error as exc:
        reason = f"not readable as CSV: {exc}"
        if "expected after" in str(exc):
            reason += " (a quoted cell must end at its closing quote: nothing may follow it)"
        raise _FileError(reason, line=prev + 1) from None
    return table, errors


def _drop_repeated_headers(table: _Table) -> None:
    """Skip data lines that repeat the header (files pasted together); each is noted."""
    first = pc.utf8_lower(pc.utf8_trim_whitespace(pa.array(table.column(0), pa.string())))
    candidates = np.flatnonzero(pc.equal(first, table.names[0]).to_numpy(zero_copy_only=False))
    drop = [i for i in candidates if [c.strip().lower() for c in table.rows[i]] == table.names]
    if not drop:
        return
    for i in drop:
        table.notices.append(
            RowError(
                table.lines[i],
                None,
                f"the header is repeated here (as on line {table.header_line}): line skipped",
            )
        )
    keep = np.ones(len(table.rows), dtype=bool)
    keep[drop] = False
    table.rows = [r for r, k in zip(table.rows, keep, strict=True) if k]
    table.lines = [ln for ln, k in zip(table.lines, keep, strict=True) if k]


def _check_width(table: _Table) -> None:
    """Refuse a header with more columns than ``Settings.max_import_columns``, before
    any row is read: the work of checking a file grows with its columns (issue 9)."""
    limit = get_settings().max_import_columns
    n = len(table.names)
    if n > limit:
        raise _FileError(
            f"the header has {n:,} columns: at most {limit:,} are read at once "
            "(PILOTGATE_MAX_IMPORT_COLUMNS); split the file into several with fewer "
            "metric columns",
            line=table.header_line,
        )


def _header(line: int, rec: list[str]) -> _Table:
    display = [c.strip() for c in rec]
    while display and not display[-1]:
        display.pop()
    for j, name in enumerate(display):
        if not name:
            raise _FileError(f"column {j + 1} of the header has no name", line=line)
    names = [d.lower() for d in display]
    seen: dict[str, int] = {}
    for j, name in enumerate(names):
        if name in seen:
            raise _FileError(
                f"column '{name}' appears twice (columns {seen[name] + 1} and {j + 1})",
                line=line,
                column=display[j],
            )
        seen[name] = j
    return _Table(line, names, display, width=len(rec))


def _semicolon_hint(table: _Table) -> str:
    if len(table.names) == 1 and ";" in table.display[0]:
        return "; the header looks semicolon-separated: save the file as comma-separated CSV"
    return ""


def _unescape(s: pd.Series) -> pd.Series:
    """Strip one leading "'" when the rest starts with a formula trigger (vectorised)."""
    mask = s.str.contains(_ESCAPED_RE, regex=True)
    if mask.any():
        s = s.where(~mask, s.str.slice(1))
    return s


def _unescape_one(v: str) -> str:
    return v[1:] if v.startswith("'") and _NEEDS_QUOTE_RE.match(v) else v


def _num_text(x: float) -> str:
    """Shortest round-trip text of a number, without a trailing '.0'."""
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def _today() -> date:
    """Today's date; a function so tests can pin it."""
    return date.today()


# =========================================================================== measurements


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


def parse_measurements_csv(
    data: bytes | str,
    metrics: pd.DataFrame,
    *,
    existing: pd.DataFrame | None = None,
    decimal: str | None = None,
    date_format: str | None = None,
    progress: Progress | None = None,
    allow_distant_weeks: bool = False,
) -> ImportReport:
    """Parse and validate a measurements CSV (long or wide form) without touching a database.

    Args:
        data: the file's bytes (UTF-8, BOM optional) or its text; comma, semicolon or
            tab separated (detected).
        metrics: :func:`metrics.store.metrics_frame` -- columns metric_id (int64),
            pilot, key, label, unit (object), min_value, max_value (float64, NaN =
            open); other columns are ignored (no ``unit`` column: no percent signs).
        existing: :func:`metrics.store.measurements_frame` -- columns metric_id,
            week (datetime64 Monday), value (float64), note -- used to classify each
            row as create / update / unchanged and to list the ``changes``. None:
            every row counts as ``create``.
        decimal: ``"dot"`` | ``"comma"``: the decimal separator of the values, as the
            user declared it; None: decided from the file (see ``docs/import-formats.md``).
        date_format: ``"dmy"`` | ``"mdy"``: how to read dates like ``03/04/2026``;
            None: decided from the whole column, or asked.
        progress: called with (fraction 0..1, text) while reading and checking.
        allow_distant_weeks: accept weeks far from the pilot's dates
            (:func:`metrics.store.distant_weeks`: more than 156 weeks before the start
            or 52 after the decision date); else each is an error naming its line and
            ``ask_distant_weeks`` is set. ``metrics`` needs start_date and
            decision_date columns for this check (else it is skipped).

    Returns:
        An :class:`ImportReport`; ``written`` is False and the counts are what a write
        would do. Problems never raise: each is a :class:`RowError` (line, column,
        reason), all of them, sorted by line. Weeks after the Monday of today's week
        are refused.

    Raises:
        TypeError: ``data`` is neither bytes nor str (a programming error).
        ValueError: ``decimal`` or ``date_format`` is not one of the values above.
    """
    if decimal is not None and decimal not in DECIMALS:
        raise ValueError(f"decimal must be one of {DECIMALS}, not {decimal!r}")
    if date_format is not None and date_format not in DATE_FORMATS:
        raise ValueError(f"date_format must be one of {DATE_FORMATS}, not {date_format!r}")
    try:
        table, errors = _read_table(data, measurements=True, progress=progress)
    except _FileError as exc:
        return ImportReport(_empty_rows(), [exc.error], "")
    reading = _Reading(table.delimiter, decimal, date_format)
    reading.allow_distant_weeks = allow_distant_weeks
    meta = {"notices": table.notices, "delimiter": table.delimiter}
    names = set(table.names)
    if METRIC_COL in names or VALUE_COL in names:
        form = "long"
        missing = [c for c in LONG_REQUIRED if c not in names]
        if missing:
            return _header_failure(
                form,
                f"missing required column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(missing)} (found: {_fmt_names(table.display)})",
                meta,
            )
        unknown = [
            RowError(
                table.header_line,
                table.display[j],
                f"unknown column '{table.display[j]}' (long form columns: "
                f"{', '.join(LONG_REQUIRED + LONG_OPTIONAL)})",
            )
            for j, name in enumerate(table.names)
            if name not in LONG_REQUIRED + LONG_OPTIONAL
        ]
        if unknown:
            return ImportReport(_empty_rows(), unknown, form, **meta)
    elif PILOT_COL in names and WEEK_COL in names:
        form = "wide"
        if len(names) == 2:
            return _header_failure(
                form, "no metric columns: the wide form is pilot, week, <metric key>, ...", meta
            )
    else:
        missing = [c for c in LONG_REQUIRED if c not in names]
        return _header_failure(
            "",
            f"missing required columns {', '.join(missing)} (found: "
            f"{_fmt_names(table.display)}); expected pilot, metric, week, value[, note] "
            f"(long form) or pilot, week, <metric key>, ... (wide form)",
            meta,
        )

    if progress is not None:
        progress(0.5, f"Checking {_plural(len(table.rows), 'row')}")
    out: dict[str, pd.DataFrame] = {}
    errors.extend(_validate(table, form, metrics, existing, out, reading, progress))
    errors = _sorted_errors(errors)
    meta.update(
        decimal=reading.decimal_used,
        date_format=reading.date_format_used,
        ask_decimal=reading.ask_decimal,
        ask_date_format=reading.ask_date_format,
        ask_distant_weeks=reading.ask_distant_weeks,
    )
    if progress is not None:
        progress(1.0, "Checked")
    if errors:
        return ImportReport(_empty_rows(), errors, form, **meta)
    rows: pd.DataFrame = out["rows"]
    counts = rows[ACTION_COL].value_counts()
    return ImportReport(
        rows,
        [],
        form,
        created=int(counts.get(CREATE, 0)),
        updated=int(counts.get(UPDATE, 0)),
        unchanged=int(counts.get(UNCHANGED, 0)),
        changes=out["changes"],
        **meta,
    )


def _header_failure(form: str, reason: str, meta: dict) -> ImportReport:
    return ImportReport(_empty_rows(), [RowError(None, None, reason)], form, **meta)


def _sorted_errors(errors: list[RowError]) -> list[RowError]:
    unique = list(dict.fromkeys(errors))
    return sorted(unique, key=lambda e: -1 if e.line is None else e.line)


class _Errors:
    """Collects RowErrors from boolean masks over a frame with a ``line`` column."""

    def __init__(self) -> None:
        self.items: list[RowError] = []

    def add(self, frame: pd.DataFrame, mask, column, reason) -> None:
        """``column``/``reason``: a constant or a Series aligned with ``frame``."""
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        lines = frame[LINE_COL].to_numpy()[mask]
        cols = column[mask].tolist() if isinstance(column, pd.Series) else [column] * len(lines)
        reasons = reason[mask].tolist() if isinstance(reason, pd.Series) else [reason] * len(lines)
        self.items.extend(
            RowError(int(ln), c, r) for ln, c, r in zip(lines, cols, reasons, strict=True)
        )


def _str_series(values: list[str]) -> pd.Series:
    return pd.Series(values, dtype="str")


def _validate(
    table: _Table,
    form: str,
    metrics: pd.DataFrame,
    existing: pd.DataFrame | None,
    out: dict,
    reading: _Reading,
    progress: Progress | None = None,
) -> list[RowError]:
    """Validate every record; on success put the rows and changes frames into ``out``."""
    err = _Errors()
    pos = {name: j for j, name in enumerate(table.names)}
    disp = {name: table.display[j] for j, name in enumerate(table.names)}
    n = len(table.rows)
    if n == 0:
        return []
    # ---- records: one per data line (pilot and week live here)
    rec = pd.DataFrame(
        {
            LINE_COL: np.asarray(table.lines, dtype="int64"),
            PILOT_COL: _unescape(_str_series(table.column(pos[PILOT_COL])).str.strip()),
            WEEK_COL: _str_series(table.column(pos[WEEK_COL])).str.strip(),
        }
    )
    err.items.extend(_split_values(table, form, pos))
    known_pilots = set(metrics[C.PILOT]) if not metrics.empty else set()
    pilot_missing = rec[PILOT_COL] == ""
    err.add(rec, pilot_missing, disp[PILOT_COL], "pilot is missing")
    pilot_unknown = ~pilot_missing & ~rec[PILOT_COL].isin(known_pilots)
    if pilot_unknown.any():
        msgs = {
            name: _unknown_pilot_message(name, known_pilots)
            for name in rec.loc[pilot_unknown, PILOT_COL].unique()
        }
        err.add(rec, pilot_unknown, disp[PILOT_COL], rec[PILOT_COL].map(msgs))
    pilot_ok = ~(pilot_missing | pilot_unknown)

    week_missing = rec[WEEK_COL] == ""
    err.add(rec, week_missing, disp[WEEK_COL], "week is missing")
    mondays, week_errors = _parse_weeks(rec.loc[~week_missing], disp[WEEK_COL], reading)
    err.items.extend(week_errors)
    rec["monday"] = mondays.reindex(rec.index)

    # ---- cells: one per value
    if form == "long":
        cells = pd.DataFrame(
            {
                "rec": np.arange(n),
                LINE_COL: rec[LINE_COL].to_numpy(),
                METRIC_COL: _unescape(_str_series(table.column(pos[METRIC_COL])).str.strip())
                .str.lower()
                .to_numpy(),
                VALUE_COL: np.asarray(table.column(pos[VALUE_COL]), dtype=object),
                NOTE_COL: (
                    _unescape(_str_series(table.column(pos[NOTE_COL]))).to_numpy()
                    if NOTE_COL in pos
                    # no note column: None = keep the stored note (never wipe it)
                    else np.full(n, None, dtype=object)
                ),
                "mcol": disp[METRIC_COL],
                "vcol": disp[VALUE_COL],
            }
        )
    else:
        pieces = []
        for j, name in enumerate(table.names):
            if name in WIDE_REQUIRED:
                continue
            vals = _str_series(table.column(j))
            keep = (vals.str.strip() != "").to_numpy()
            if not keep.any():
                continue
            idx = np.flatnonzero(keep)
            pieces.append(
                pd.DataFrame(
                    {
                        "rec": idx,
                        "colpos": j,
                        LINE_COL: rec[LINE_COL].to_numpy()[idx],
                        METRIC_COL: name,
                        VALUE_COL: vals.to_numpy()[idx],
                        NOTE_COL: None,  # the wide form has no notes: keep stored ones
                        "mcol": table.display[j],
                        "vcol": table.display[j],
                    }
                )
            )
        if not pieces:
            return [*err.items, RowError(None, None, "no values: every metric cell is empty")]
        cells = pd.concat(pieces, ignore_index=True)
        cells = cells.sort_values(["rec", "colpos"], kind="stable").reset_index(drop=True)
        cells = cells.drop(columns="colpos")
        for col in (METRIC_COL, VALUE_COL, NOTE_COL, "mcol", "vcol"):
            cells[col] = cells[col].astype(object)

    recs = cells["rec"].to_numpy()
    cells[PILOT_COL] = rec[PILOT_COL].to_numpy()[recs]
    cells["monday"] = rec["monday"].to_numpy()[recs]
    cells_pilot_ok = pilot_ok.to_numpy()[recs]

    # ---- metric
    metric_missing = (cells[METRIC_COL] == "").to_numpy()
    err.add(cells, metric_missing, cells["mcol"], "metric is missing")
    if "archived" in metrics and metrics["archived"].astype(bool).any():
        # archived metrics (store.set_metric_archived) take no values: named, not unknown
        archived_keys = metrics.loc[metrics["archived"].astype(bool), [C.PILOT, C.KEY]]
        archived_keys = archived_keys.rename(columns={C.KEY: METRIC_COL}).assign(_archived=True)
        metrics = metrics[~metrics["archived"].astype(bool)]
        flag = cells[[PILOT_COL, METRIC_COL]].merge(
            archived_keys, on=[PILOT_COL, METRIC_COL], how="left"
        )["_archived"]
        is_archived = flag.fillna(False).astype(bool).to_numpy() & cells_pilot_ok
        if is_archived.any():
            sub = cells.loc[is_archived]
            reason = pd.Series(index=cells.index, dtype=object)
            reason.loc[sub.index] = [
                f"metric '{_short(m)}' of pilot '{_short(p)}' is archived (its values are "
                f"kept): unarchive it first (`pilotgate metrics unarchive`) to import values"
                for p, m in zip(sub[PILOT_COL], sub[METRIC_COL], strict=True)
            ]
            err.add(cells, is_archived, cells["mcol"], reason)
            metric_missing = metric_missing | is_archived  # not "unknown" as well
    dates = [c for c in (C.START_DATE, C.DECISION_DATE) if c in metrics]
    lookup = metrics[
        [C.PILOT, C.KEY, C.METRIC_ID, C.LABEL, "min_value", "max_value", *dates]
    ].assign(unit=metrics.get("unit", ""))
    lookup = lookup.rename(columns={C.KEY: METRIC_COL})
    cells = cells.merge(lookup, on=[PILOT_COL, METRIC_COL], how="left", validate="many_to_one")
    metric_unknown = cells_pilot_ok & ~metric_missing & cells[C.METRIC_ID].isna().to_numpy()
    if metric_unknown.any():
        keys_of = metrics.groupby(C.PILOT)[C.KEY].agg(lambda k: ", ".join(sorted(k))).to_dict()
        sub = cells.loc[metric_unknown]
        reason = pd.Series(index=cells.index, dtype=object)
        reason.loc[sub.index] = [
            f"pilot '{_short(p)}' has no metric '{_short(m)}' "
            f"(its metrics: {keys_of.get(p, 'none')})"
            for p, m in zip(sub[PILOT_COL], sub[METRIC_COL], strict=True)
        ]
        err.add(cells, metric_unknown, cells["mcol"], reason)

    # ---- week far from the pilot's dates (one shared rule: metrics.store.distant_weeks)
    if not reading.allow_distant_weeks and {C.START_DATE, C.DECISION_DATE} <= set(cells):
        judged = cells[C.METRIC_ID].notna() & cells["monday"].notna()
        if existing is not None and not existing.empty and judged.any():
            # a week that already has a stored value was accepted before: only new weeks
            # are judged (an exported file re-imports unchanged)
            have = pd.MultiIndex.from_arrays(
                [existing[C.METRIC_ID].astype("int64"), _week_ns(existing[C.WEEK])]
            )
            mine = pd.MultiIndex.from_arrays(
                [
                    cells[C.METRIC_ID].fillna(-1).astype("int64"),
                    _week_ns(cells["monday"].where(judged, pd.Timestamp("1900-01-01"))),
                ]
            )
            judged &= ~mine.isin(have)
        if judged.any():
            sub = cells.loc[judged]
            mask, reasons = store.distant_weeks(
                sub["monday"], sub[C.START_DATE], sub[C.DECISION_DATE]
            )
            if mask.any():
                reason = pd.Series(reasons, index=sub.index, dtype=object)
                err.add(sub, mask, disp[WEEK_COL], reason)
                reading.ask_distant_weeks = True

    # ---- value
    raw = cells[VALUE_COL].to_numpy(dtype=object)
    parsed = _parse_values(raw, cells[LINE_COL].to_numpy(), reading)
    err.add(cells, parsed.missing, cells["vcol"], "value is missing")
    has_reason = pd.notna(parsed.reasons)
    if has_reason.any():
        err.add(cells, has_reason, cells["vcol"], pd.Series(parsed.reasons))
    values = pd.Series(parsed.values, index=cells.index, dtype="float64")
    wrong_unit = parsed.percent & cells[C.METRIC_ID].notna().to_numpy()
    wrong_unit &= (cells["unit"].fillna("").astype(str).str.strip() != PERCENT_UNIT).to_numpy()
    if wrong_unit.any():
        sub = cells.loc[wrong_unit]
        reason = pd.Series(index=cells.index, dtype=object)
        reason.loc[sub.index] = [
            f"'{_short(str(v).strip())}' has a percent sign but {lab} is measured in "
            f"{u or 'no unit'}: write the number without %"
            for v, lab, u in zip(sub[VALUE_COL], sub[C.LABEL], sub["unit"].fillna(""), strict=True)
        ]
        err.add(cells, wrong_unit, cells["vcol"], reason)
        values = values.where(~wrong_unit)
    not_finite = np.isinf(values.to_numpy())
    too_large = (values.abs() > MAX_ABS_VALUE).to_numpy() & ~not_finite
    if not_finite.any() or too_large.any():
        text = pd.Series(raw, index=cells.index, dtype=object).astype(str).str.strip()
        err.add(cells, not_finite, cells["vcol"], "'" + text + "' is not a finite number")
        reason = "'" + text + f"' is too large (limit ±{MAX_ABS_VALUE:g})"
        err.add(cells, too_large, cells["vcol"], reason)
        values = values.where(~(not_finite | too_large))
    cells[VALUE_COL] = values
    lo, hi = cells["min_value"], cells["max_value"]
    below = (values < lo).to_numpy(dtype=bool)
    above = (values > hi).to_numpy(dtype=bool)
    out_of_range = below | above
    if out_of_range.any():
        sub = cells.loc[out_of_range]
        reason = pd.Series(index=cells.index, dtype=object)
        reason.loc[sub.index] = [
            f"{lab} must be {_range_text(a, b)}: got {_num_text(v)}"
            for v, a, b, lab in zip(
                sub[VALUE_COL], sub["min_value"], sub["max_value"], sub[C.LABEL], strict=True
            )
        ]
        err.add(cells, out_of_range, cells["vcol"], reason)

    # ---- note
    notes = cells[NOTE_COL].fillna("").astype(str)
    too_long = (notes.str.len() > NOTE_MAX).to_numpy(dtype=bool)
    if too_long.any():
        col = disp.get(NOTE_COL)
        err.add(cells, too_long, col, f"note is longer than {NOTE_MAX} characters")

    has_control = notes.str.contains(CONTROL_CHARS_RE).to_numpy(dtype=bool)
    if has_control.any():
        col = disp.get(NOTE_COL)
        err.add(cells, has_control, col, "note contains control characters (e.g. NUL)")

    # ---- duplicates within the file
    keyed = cells[C.METRIC_ID].notna().to_numpy() & cells["monday"].notna().to_numpy()
    if keyed.any():
        k = cells.loc[keyed, [C.METRIC_ID, "monday", LINE_COL, PILOT_COL, METRIC_COL, "vcol"]]
        dup = k.duplicated([C.METRIC_ID, "monday"], keep="first")
        if dup.any():
            first = k.groupby([C.METRIC_ID, "monday"])[LINE_COL].transform("first")
            d = k[dup]
            labels = {w: _label(w) for w in d["monday"].unique()}
            reason = pd.Series(
                [
                    f"pilot '{p}', metric '{m}', week {labels[w]} again: duplicate of line {f}"
                    for p, m, w, f in zip(
                        d[PILOT_COL], d[METRIC_COL], d["monday"], first[dup], strict=True
                    )
                ],
                index=d.index,
                dtype=object,
            )
            column = d["vcol"] if form == "wide" else None
            err.add(d, np.ones(len(d), dtype=bool), column, reason)

    if err.items:
        return err.items
    if progress is not None:
        progress(0.9, "Comparing with the stored values")
    out["rows"], out["changes"] = _rows_frame(cells, existing)
    return []


_WHOLE = re.compile(r"^[+-]?\d+$", re.ASCII)
_DIGITS = re.compile(r"^\d+$", re.ASCII)


def _split_values(table: _Table, form: str, pos: dict[str, int]) -> list[RowError]:
    """Rows where an unquoted decimal comma split a value in two (comma files only).

    ``61,2`` written unquoted in a comma file is the two fields ``61`` and ``2``. When
    the row is then longer than the header and its extra fields are empty (cut off as
    trailing delimiters), the value would be read as 61 and the ``2`` as the next
    column (the note, or the next metric): such a row -- a whole number followed by a
    field of digits -- is refused, naming the line.
    """
    if table.delimiter != "," or not table.padded:
        return []
    if form == "long":
        columns = [pos[VALUE_COL]]
    else:
        columns = [j for j, name in enumerate(table.names) if name not in WIDE_REQUIRED]
    index = {ln: i for i, ln in enumerate(table.lines)}
    out = []
    for line in table.padded:
        if line not in index:  # a repeated header line, skipped
            continue
        row = table.rows[index[line]]
        for j in columns:
            if j + 1 >= len(row):
                continue
            a, b = row[j].strip(), row[j + 1]
            if _WHOLE.match(a) and _DIGITS.match(b):
                out.append(
                    RowError(
                        line,
                        table.display[j],
                        f"'{_short(a)}' is followed by an unexpected extra field '{_short(b)}': "
                        "the row has more fields than the header (a decimal comma? write "
                        f'{_short(a)}.{_short(b)}, or quote it: "{_short(a)},{_short(b)}")',
                    )
                )
                break
    return out


def _unknown_pilot_message(name: str, known: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
    if not close:
        lower = {k.lower(): k for k in known}
        if name.lower() in lower:
            close = [lower[name.lower()]]
    hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
    return f"unknown pilot {_short(name)!r}{hint}"


def _short(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters (with an ellipsis) for messages."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


def _range_text(lo: float, hi: float) -> str:
    if pd.notna(lo) and pd.notna(hi):
        return f"between {_num_text(lo)} and {_num_text(hi)}"
    if pd.notna(lo):
        return f"at least {_num_text(lo)}"
    return f"at most {_num_text(hi)}"


def _label(monday: date) -> str:
    iso = monday.isocalendar()
    return f"{iso.year:04d}-W{iso.week:02d}"


# --------------------------------------------------------------------------- values


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


# --------------------------------------------------------------------------- weeks


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


# --------------------------------------------------------------------------- rows


def _rows_frame(
    cells: pd.DataFrame, existing: pd.DataFrame | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The report's rows frame and its changes frame (rows that would update)."""
    weeks = pd.Series(cells["monday"].to_numpy(), dtype=object)
    labels = {w: _label(w) for w in weeks.unique()}
    rows = pd.DataFrame(
        {
            LINE_COL: cells[LINE_COL].astype("int64").to_numpy(),
            PILOT_COL: cells[PILOT_COL].astype(object).to_numpy(),
            METRIC_COL: cells[METRIC_COL].astype(object).to_numpy(),
            WEEK_COL: weeks.to_numpy(),
            WEEK_LABEL_COL: weeks.map(labels).astype(object).to_numpy(),
            VALUE_COL: cells[VALUE_COL].astype("float64").to_numpy(),
            NOTE_COL: cells[NOTE_COL].astype(object).to_numpy(),
            METRIC_ID_COL: cells[C.METRIC_ID].astype("int64").to_numpy(),
        }
    )
    action, old_value, old_note, note = _classify(rows, existing)
    rows[NOTE_COL] = note
    rows[ACTION_COL] = action
    for col in (PILOT_COL, METRIC_COL, WEEK_COL, WEEK_LABEL_COL, NOTE_COL, ACTION_COL):
        rows[col] = rows[col].astype(object)  # pandas 3 would infer the str dtype
    is_update = action == UPDATE
    changes = rows[is_update].assign(
        **{OLD_VALUE_COL: old_value[is_update], OLD_NOTE_COL: old_note[is_update]}
    )
    return rows, _changes_frame(changes)


def _changes_frame(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({c: df[c].to_numpy() for c in CHANGE_COLUMNS})
    for c in (LINE_COL, METRIC_ID_COL):
        out[c] = out[c].astype("int64")
    for c in (OLD_VALUE_COL, VALUE_COL):
        out[c] = out[c].astype("float64")
    for c in (PILOT_COL, METRIC_COL, WEEK_COL, WEEK_LABEL_COL, OLD_NOTE_COL, NOTE_COL):
        out[c] = out[c].astype(object)
    return out


def _week_ns(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s).astype("datetime64[ns]")


def _classify(
    rows: pd.DataFrame, existing: pd.DataFrame | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(action, stored value, stored note, note to write) per row: create / update /
    unchanged. A row whose note is None (the file has no note column, or is in wide
    form) keeps the stored note ("" for a new value): a file without notes never
    wipes them."""
    n = len(rows)
    given = rows[NOTE_COL].to_numpy(dtype=object)
    missing = pd.isna(given)
    if existing is None or existing.empty:
        return (
            np.full(n, CREATE, dtype=object),
            np.full(n, np.nan),
            np.full(n, None, dtype=object),
            np.where(missing, "", given).astype(object),
        )
    ex = pd.DataFrame(
        {
            METRIC_ID_COL: existing[C.METRIC_ID].astype("int64").to_numpy(),
            "_w": _week_ns(existing[C.WEEK]).to_numpy(),
            "_old_value": existing[C.VALUE].astype("float64").to_numpy(),
            "_old_note": (
                existing[NOTE_COL].fillna("").astype(object).to_numpy()
                if NOTE_COL in existing
                else ""
            ),
        }
    )
    inc = pd.DataFrame(
        {
            METRIC_ID_COL: rows[METRIC_ID_COL].to_numpy(),
            "_w": _week_ns(rows[WEEK_COL]).to_numpy(),
        }
    )
    merged = inc.merge(ex, on=[METRIC_ID_COL, "_w"], how="left", validate="many_to_one")
    old_value = merged["_old_value"].to_numpy(dtype="float64")
    old_note = merged["_old_note"].astype(object).to_numpy()
    new = np.isnan(old_value)
    kept = np.where(pd.isna(old_note), "", old_note)
    note = np.where(missing, kept, given).astype(object)
    same = (old_value == rows[VALUE_COL].to_numpy()) & (old_note == note)
    action = np.where(new, CREATE, np.where(same, UNCHANGED, UPDATE)).astype(object)
    return action, old_value, old_note, note


def _scaled(progress: Progress | None, lo: float, hi: float) -> Progress | None:
    if progress is None:
        return None
    return lambda f, text: progress(lo + (hi - lo) * min(max(f, 0.0), 1.0), text)


def _change_keys(df: pd.DataFrame) -> list[tuple]:
    """What identifies a change the user saw: metric, week, old and new value and note."""
    weeks = [pd.Timestamp(w).date() for w in df[WEEK_COL]]
    return sorted(
        zip(
            df[METRIC_ID_COL].astype("int64").tolist(),
            weeks,
            df[OLD_VALUE_COL].astype("float64").tolist(),
            df[VALUE_COL].astype("float64").tolist(),
            df[OLD_NOTE_COL].fillna("").astype(str).tolist(),
            df[NOTE_COL].fillna("").astype(str).tolist(),
            strict=True,
        )
    )


def same_changes(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """True when two ``changes`` frames list the same stored values changing the same
    way (metric, week, old and new value and note), whatever their order."""
    return _change_keys(a) == _change_keys(b)


def changed_meanwhile(
    session: Session, shown: pd.DataFrame, now: pd.DataFrame, rows: pd.DataFrame | None = None
) -> list[str]:
    """Who changed what since a preview: one message per stored value of the file's
    weeks that differs between the ``changes`` a person saw (``shown``) and those
    found now (``now``), naming who stored what and when
    (:func:`metrics.store.conflict_message`), e.g. "Resolution time 2012-W06 was
    changed by alice to 75.0 h at 10:04 UTC while you were editing; your value 71.0
    (line 2) was not saved. Reload to see it."

    Args:
        shown, now: :data:`CHANGE_COLUMNS` frames (a dry run's ``changes``).
        rows: the report's rows (line, metric_id, week, value) to name the file's value
            of a week that was new when shown; optional.

    Returns:
        The messages, in file order; empty when nothing differs.
    """

    def keyed(df: pd.DataFrame) -> dict[tuple[int, date], tuple]:
        if df is None or df.empty:
            return {}
        return {
            (int(m), pd.Timestamp(w).date()): (float(o), str(on or ""), int(ln), float(v))
            for m, w, o, on, ln, v in zip(
                df[METRIC_ID_COL],
                df[WEEK_COL],
                df[OLD_VALUE_COL],
                df[OLD_NOTE_COL].fillna(""),
                df[LINE_COL],
                df[VALUE_COL],
                strict=True,
            )
        }

    a, b = keyed(shown), keyed(now)
    lines: dict[tuple[int, date], tuple[int, float]] = {}
    if rows is not None and not rows.empty:
        for m, w, ln, v in zip(
            rows[METRIC_ID_COL], rows[WEEK_COL], rows[LINE_COL], rows[VALUE_COL], strict=True
        ):
            lines[(int(m), pd.Timestamp(w).date())] = (int(ln), float(v))
    differing = sorted(
        {
            k
            for k in a.keys() | b.keys()
            if a.get(k, (None, None))[:2] != b.get(k, (None, None))[:2]
        },
        key=lambda k: (b.get(k) or a.get(k) or (0, 0, lines.get(k, (0, 0))[0]))[2],
    )
    out = []
    for key in differing:
        got = b.get(key) or a.get(key)
        line, value = (got[2], got[3]) if got else lines.get(key, (None, None))
        yours = "value" if value is None else f"value {_num_text(value)}"
        if line is not None:
            yours += f" (line {line})"
        out.append(store.conflict_message(session, metric_id=key[0], week=key[1], yours=yours))
    return out


def import_measurements(
    *,
    session: Session,
    actor: str,
    data: bytes | str,
    dry_run: bool = False,
    source: str = "",
    update: bool = False,
    reason: str | None = None,
    decimal: str | None = None,
    date_format: str | None = None,
    expected_changes: pd.DataFrame | None = None,
    progress: Progress | None = None,
    allow_distant_weeks: bool = False,
) -> ImportReport:
    """Validate a measurements CSV completely, then write all of it or nothing.

    Reads the metrics and the stored measurements (one query each), parses with
    :func:`parse_measurements_csv`; when there is any error nothing is written and the
    report lists them. Otherwise, unless ``dry_run``, hands every row to
    :func:`metrics.store.write_measurements` once, which writes values and revisions
    with executemany-style statements; the counts then come from the store. The
    caller commits (``session_scope``); on a report that is not ``ok`` the caller
    should roll back (nothing was written by this function).

    Args:
        source: the file's name, for the default revision reason ``"import <source>"``.
        update: False refuses (writes nothing, ``needs_confirmation`` set,
            ``changes`` listing them) when any stored value or note would change,
            also in a dry run; and refuses the write when another writer stored one
            of the file's weeks meanwhile. The CLI passes ``--update``; the Import
            page passes True only after the person confirmed.
        reason: the revision reason for every value written; None or blank:
            ``"import <source>"``. Checked first, as a single correction's reason is
            (:func:`metrics.store.check_reason`: length, control characters); a
            reason that fails is the report's one error.
        decimal, date_format: the user's choices, see :func:`parse_measurements_csv`.
        expected_changes: the ``changes`` frame the person confirmed (a dry run's);
            when given, the write is refused unless exactly those values would change
            now and exactly that many are updated.
        progress: called with (fraction 0..1, text) while reading and writing.
        allow_distant_weeks: the user confirmed weeks far from their pilot's dates
            (``--allow-distant-weeks``, the Import page's tick box); else refused.

    Returns:
        :class:`ImportReport`. A :class:`metrics.store.StoreError` or a database
        integrity/data error (e.g. a concurrent write of the same week) becomes a
        file-level :class:`RowError` (the session is rolled back for the latter);
        user mistakes never raise.
    """
    try:  # the same rule as a single correction's reason (length, control characters)
        store.check_reason(reason)
    except store.StoreError as exc:
        return ImportReport(_empty_rows(), [RowError(None, None, f"nothing written: {exc}")], "")
    metrics = store.metrics_frame(session, include_archived=True)
    existing = store.measurements_frame(session)
    report = parse_measurements_csv(
        data,
        metrics,
        existing=existing,
        decimal=decimal,
        date_format=date_format,
        progress=_scaled(progress, 0.0, 0.8),
        allow_distant_weeks=allow_distant_weeks,
    )
    report.reason = reason.strip() if reason and reason.strip() else f"import {source}".strip()
    if report.errors:
        return report
    if expected_changes is not None and _change_keys(report.changes) != _change_keys(
        expected_changes
    ):
        who = changed_meanwhile(session, expected_changes, report.changes, report.rows)
        return _write_failed(
            report,
            "the stored values changed since the preview; nothing written: "
            + (" ".join(who) or "check the values that would change again"),
        )
    if not update and not report.changes.empty:
        report.needs_confirmation = True
    if report.needs_confirmation or dry_run or report.rows.empty:
        if progress is not None:
            progress(1.0, "Checked: nothing written")
        return report
    rows = pd.DataFrame(
        {
            C.METRIC_ID: report.rows[METRIC_ID_COL].to_numpy(),
            C.WEEK: _week_ns(report.rows[WEEK_COL]).to_numpy(),
            C.VALUE: report.rows[VALUE_COL].to_numpy(),
            "note": report.rows[NOTE_COL].to_numpy(),
        }
    )
    if progress is not None:
        progress(0.8, f"Writing {_plural(len(rows), 'row')}")
    try:
        counts = store.write_measurements(
            session=session, actor=actor, rows=rows, reason=report.reason
        )
    except store.StoreError as exc:
        session.rollback()
        return _write_failed(report, str(exc))
    except (sa.exc.IntegrityError, sa.exc.DataError) as exc:
        session.rollback()
        return _write_failed(
            report,
            "the database refused the rows, nothing written (another import or entry may "
            f"have written the same weeks at the same time; try again): {exc.orig}",
        )
    except (sa.exc.OperationalError, sa.exc.InternalError) as exc:  # locked, read-only, full
        from metrics.db import failure_reason

        session.rollback()
        cause = failure_reason(exc, session.get_bind().url)
        return _write_failed(report, f"nothing written: {cause}")
    confirmed = len(report.changes)
    if (not update or expected_changes is not None) and counts.updated != confirmed:
        session.rollback()
        extra = counts.updated - confirmed
        return _write_failed(
            report,
            f"{_plural(abs(extra), 'stored value')} of this file's weeks "
            f"{'were' if abs(extra) != 1 else 'was'} written by someone else while it was "
            "checked; nothing written: try again to see what would change",
        )
    report.created, report.updated, report.unchanged = (
        counts.created,
        counts.updated,
        counts.unchanged,
    )
    report.written = True
    if progress is not None:
        progress(1.0, f"Written: {report.summary_line()}")
    return report


def _write_failed(report: ImportReport, reason: str) -> ImportReport:
    return ImportReport(
        _empty_rows(),
        [RowError(None, None, reason)],
        report.form,
        notices=report.notices,
        delimiter=report.delimiter,
        decimal=report.decimal,
        date_format=report.date_format,
        reason=report.reason,
    )


# =========================================================================== export


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


def _neutralize(v):
    if isinstance(v, str) and _NEEDS_QUOTE_RE.match(v):
        return "'" + v
    return v


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


# =========================================================================== pilots


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


_PILOT_PARSERS = {
    "start_date": _parse_iso_date,
    "decision_date": _parse_iso_date,
    "cost": _parse_number,
    "trailing_window": _parse_int,
    "min_weeks": _parse_int,
}
_METRIC_PARSERS = {
    "baseline": _parse_number,
    "target": _parse_number,
    "margin": _parse_number,
    "min": _parse_number,
    "max": _parse_number,
    "value_per_unit": _parse_number,
}
_TEXT_COLUMNS = {"pilot", "vendor", "use_case", "owner", "label", "unit"}
_PILOT_MODEL_FIELDS = ["pilot", *PILOT_FIELDS]
_METRIC_MODEL_FIELDS = [
    "metric",
    "label",
    "unit",
    "direction",
    "role",
    "baseline",
    "target",
    "margin",
    "min",
    "max",
    "value_per_unit",
]


def _validation_errors(exc: ValidationError, line: int, disp: dict[str, str]) -> list[RowError]:
    """A pydantic error -> one RowError per problem, with the file's column name."""
    out = []
    for e in exc.errors():
        loc = [str(x) for x in e.get("loc", ()) if x != "__root__"]
        msg = e.get("msg", "invalid").removeprefix("Value error, ")
        if e.get("type") in ("enum", "literal_error"):
            msg = f"'{e.get('input')}' is not allowed: {msg[:1].lower()}{msg[1:]}"
        col = None
        if loc:
            file_name = _FIELD_TO_FILE.get(loc[0], loc[0])
            col = disp.get(file_name, file_name)
        out.append(RowError(line, col, msg))
    return out or [RowError(line, None, store.validation_message(exc))]


def parse_pilots_csv(data: bytes | str) -> PilotImportReport:
    """Parse and validate a pilot definitions CSV (DESIGN §7) without a database.

    One row per metric; rows of one pilot (same ``pilot`` name, in any order) must
    repeat identical pilot fields (vendor, use_case, owner, start_date, decision_date,
    stage, and the optional trailing_window, min_weeks, cost). Required columns:
    pilot, start_date, decision_date, metric, direction, target; the others may be
    absent or empty (defaults of :class:`~metrics.models.PilotCreate` /
    :class:`~metrics.models.MetricCreate`). Dates are ISO ``YYYY-MM-DD``; numbers as
    in the measurements CSV. File columns map to model fields: pilot->name,
    metric->key, min->min_value, max->max_value.

    Returns:
        :class:`PilotImportReport` with ``pilots`` = [(PilotCreate, [MetricCreate, ...])]
        in order of first appearance (empty when there are errors) and every problem
        as a :class:`RowError`: pydantic validation errors carry the pilot's first
        line (pilot fields) or the metric's line, and the column.
    """
    return _parse_pilots(data)[0]


def _parse_pilots(data: bytes | str) -> tuple[PilotImportReport, dict[str, int]]:
    """:func:`parse_pilots_csv` plus each pilot's first line (for store errors)."""
    try:
        table, errors = _read_table(data)
    except _FileError as exc:
        return PilotImportReport([], [exc.error]), {}
    names = set(table.names)
    missing = [c for c in PILOT_CSV_REQUIRED if c not in names]
    if missing:
        return PilotImportReport(
            [],
            [
                RowError(
                    None,
                    None,
                    f"missing required column{'s' if len(missing) > 1 else ''} "
                    f"{', '.join(missing)} (found: {_fmt_names(table.display)})"
                    + _semicolon_hint(table),
                )
            ],
        ), {}
    allowed = set(PILOT_CSV_COLUMNS) | set(PILOT_CSV_EXTRA)
    unknown = [
        RowError(
            table.header_line,
            table.display[j],
            f"unknown column '{table.display[j]}' (columns: "
            f"{', '.join(PILOT_CSV_COLUMNS + PILOT_CSV_EXTRA)})",
        )
        for j, name in enumerate(table.names)
        if name not in allowed
    ]
    if unknown:
        return PilotImportReport([], unknown), {}
    disp = {name: table.display[j] for j, name in enumerate(table.names)}

    records: list[tuple[int, dict[str, str]]] = []
    for line, row in zip(table.lines, table.rows, strict=True):
        cells = {}
        for name, raw in zip(table.names, row, strict=True):
            v = raw.strip()
            cells[name] = _unescape_one(v) if name in _TEXT_COLUMNS else v
        records.append((line, cells))

    groups: dict[str, list[tuple[int, dict[str, str]]]] = {}
    # Names are one pilot ignoring case and spacing (DESIGN §3): rows naming the same
    # pilot differently are refused, never read as two pilots or merged silently.
    spelled: dict[str, tuple[str, int]] = {}
    for line, cells in records:
        if not cells["pilot"]:
            errors.append(RowError(line, disp["pilot"], "pilot is missing"))
            continue
        name = collapse_spaces(cells["pilot"])
        first = spelled.setdefault(pilot_name_key(name), (name, line))
        if first[0] != name:
            errors.append(
                RowError(
                    line,
                    disp["pilot"],
                    f"pilot '{_short(cells['pilot'])}' is the pilot '{_short(first[0])}' of "
                    f"line {first[1]} (names are compared ignoring case and spacing): "
                    "write it the same way on every row",
                )
            )
            continue
        groups.setdefault(name, []).append((line, cells))

    pilots: list[tuple[PilotCreate, list[MetricCreate]]] = []
    for name, rows in groups.items():
        pilot_in, errs = _pilot_from_rows(name, rows, disp)
        errors.extend(errs)
        metrics_in: list[MetricCreate] = []
        seen: dict[str, int] = {}
        for line, cells in rows:
            key = cells["metric"]
            if key in seen:
                errors.append(
                    RowError(
                        line,
                        disp["metric"],
                        f"pilot '{name}' lists metric '{key}' again: duplicate of line {seen[key]}",
                    )
                )
                continue
            seen[key] = line
            metric_in, errs = _metric_from_row(line, cells, disp)
            errors.extend(errs)
            if metric_in is not None:
                metrics_in.append(metric_in)
        if pilot_in is not None:
            pilots.append((pilot_in, metrics_in))
    errors = _sorted_errors(errors)
    first_lines = {name: rows[0][0] for name, rows in groups.items()}
    return PilotImportReport([] if errors else pilots, errors), first_lines


def _pilot_from_rows(
    name: str, rows: list[tuple[int, dict[str, str]]], disp: dict[str, str]
) -> tuple[PilotCreate | None, list[RowError]]:
    errors: list[RowError] = []
    first_line, first = rows[0]
    for line, cells in rows[1:]:
        for f in PILOT_FIELDS:
            if f in cells and cells[f] != first[f]:
                errors.append(
                    RowError(
                        line,
                        disp[f],
                        f"pilot '{name}' has {f} '{cells[f]}' here but '{first[f]}' "
                        f"on line {first_line}",
                    )
                )
    fields: dict[str, object] = {"name": name}
    for f in PILOT_FIELDS:
        text = first.get(f, "")
        if not text:
            if f in ("start_date", "decision_date"):
                errors.append(RowError(first_line, disp[f], f"{f} is missing"))
            continue
        parser = _PILOT_PARSERS.get(f)
        try:
            fields[f] = parser(text) if parser else text
        except ValueError as exc:
            errors.append(RowError(first_line, disp[f], str(exc)))
    if errors:
        return None, errors
    try:
        return PilotCreate(**fields), []
    except ValidationError as exc:
        return None, _validation_errors(exc, first_line, disp)


def _metric_from_row(
    line: int, cells: dict[str, str], disp: dict[str, str]
) -> tuple[MetricCreate | None, list[RowError]]:
    errors: list[RowError] = []
    fields: dict[str, object] = {}
    for col in _METRIC_MODEL_FIELDS:
        text = cells.get(col, "")
        if not text:
            if col in ("metric", "direction"):
                errors.append(RowError(line, disp[col], f"{col} is missing"))
            elif col == "target" and cells.get("role", "").strip().lower() != "guardrail":
                # DESIGN §4: a guardrail needs no target; a primary metric does
                errors.append(
                    RowError(
                        line,
                        disp[col],
                        "target is missing: a primary metric needs a target "
                        "(only a guardrail may leave it empty)",
                    )
                )
            continue
        parser = _METRIC_PARSERS.get(col)
        try:
            fields[_FILE_TO_FIELD.get(col, col)] = parser(text) if parser else text
        except ValueError as exc:
            errors.append(RowError(line, disp[col], str(exc)))
    if errors:
        return None, errors
    try:
        return MetricCreate(**fields), []
    except ValidationError as exc:
        return None, _validation_errors(exc, line, disp)


def _near_duplicate_names(session: Session, pilots, first_lines: dict[str, int]) -> list[RowError]:
    """A file's pilot whose name matches a stored pilot only ignoring case or spacing:
    refused (an update names the pilot exactly; a new pilot needs another name)."""
    errors = []
    for pilot_in, _metrics in pilots:
        stored = store.find_pilot_by_name(session, pilot_in.name)
        if stored is not None and stored.name != pilot_in.name:
            errors.append(
                RowError(
                    first_lines.get(pilot_in.name),
                    "pilot",
                    f"pilot '{_short(pilot_in.name)}' matches the existing pilot "
                    f"'{_short(stored.name)}' (names are compared ignoring case and "
                    "spacing): write its name exactly to update it, or choose another name "
                    "for a new pilot",
                )
            )
    return errors


def import_pilots(
    *, session: Session, actor: str, data: bytes | str, dry_run: bool = False
) -> PilotImportReport:
    """Create or update pilots and their metrics from a definitions CSV, all or nothing.

    Parses with :func:`parse_pilots_csv`; with any error nothing is written. Otherwise
    calls :func:`metrics.store.save_pilot` once per pilot in the same session (metrics
    matched by key; metrics not listed are kept). A dry run takes exactly that path
    inside a savepoint it then rolls back, so it applies every check the real import
    applies -- the actor's role, stage gates, stored values against a new allowed
    range -- and reports the same counts, writing nothing.

    Returns:
        :class:`PilotImportReport`. A :class:`metrics.store.StoreError` (or database
        integrity/data error) rolls back (undoing pilots already saved in this call)
        and becomes a RowError on that pilot's first line; user mistakes never raise.
        The caller commits on success.
    """
    report, first_lines = _parse_pilots(data)
    if not report.ok:
        return report
    near = _near_duplicate_names(session, report.pilots, first_lines)
    if near:
        return PilotImportReport([], near)
    if dry_run:
        savepoint = session.begin_nested()
        try:
            failed = _save_pilots(session, actor, report, first_lines)
        finally:
            savepoint.rollback()
        return failed or report
    failed = _save_pilots(session, actor, report, first_lines)
    if failed is not None:
        session.rollback()
        return failed
    report.written = True
    return report


def _save_pilots(
    session: Session, actor: str, report: PilotImportReport, first_lines: dict[str, int]
) -> PilotImportReport | None:
    """Save every pilot of ``report`` (setting its counts); the failure report, or None.
    The caller rolls back on failure."""
    created = updated = unchanged = m_created = m_updated = 0
    for pilot_in, metrics_in in report.pilots:
        try:
            res = store.save_pilot(
                session=session, actor=actor, pilot_in=pilot_in, metrics_in=metrics_in
            )
        except (store.StoreError, sa.exc.IntegrityError, sa.exc.DataError) as exc:
            reason = str(exc) if isinstance(exc, store.StoreError) else str(exc.orig)
            line = first_lines.get(pilot_in.name)
            return PilotImportReport(
                [], [RowError(line, None, f"pilot '{pilot_in.name}': {reason}")]
            )
        created += int(res.created)
        updated += int(not res.created and res.changed)
        unchanged += int(not res.changed)
        m_created += res.metrics_created
        m_updated += res.metrics_updated
        report.details.append(res.describe())
    report.unchanged = unchanged
    report.created, report.updated = created, updated
    report.metrics_created, report.metrics_updated = m_created, m_updated
    return None


# =========================================================================== API scope


def pilot_names_in(data: bytes | str) -> set[str]:
    """The pilot names a measurements CSV addresses, read exactly as
    :func:`import_measurements` reads them (delimiter detection, trimming, the formula
    escape removed); empty when the file cannot be read or has no pilot column (the
    import then reports why). Used to check an API token's pilot scope before import.
    """
    try:
        table, _errors = _read_table(data, measurements=True)
    except (_FileError, TypeError):
        return set()
    if PILOT_COL not in table.names:
        return set()
    j = table.names.index(PILOT_COL)
    return {_unescape_one(v.strip()) for v in table.column(j) if v.strip()}
