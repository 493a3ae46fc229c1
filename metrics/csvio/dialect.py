"""Reading a file's dialect and encoding: bytes decoded as UTF-8 (a byte-order mark
dropped), the field delimiter detected (an Excel ``sep=`` line, ``csv.Sniffer`` checked
against the header), records read with their physical line numbers, the size limits,
repeated header lines skipped, and values split in two by an unquoted decimal comma.
The result is a header and its records as text (``_Table``); what cells mean is for
the readers above."""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metrics.csvio.columns import (
    DELIMITER_NAMES,
    PILOT_COL,
    VALUE_COL,
    WEEK_COL,
    WIDE_REQUIRED,
    Progress,
)
from metrics.csvio.reports import RowError, _short
from metrics.settings import get_settings

#: How often (records) the reader reports progress.
_PROGRESS_EVERY = 5000


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
