"""CSV in and out: measurement and pilot-definition imports, and the one CSV writer.

The package, one job per module, lower ones first (each imports only those before it):
``columns`` (shared column names and choices), ``reports`` (RowError and the import
reports), ``formula`` (formula neutralisation both ways), ``dialect`` (encoding,
delimiter, records and their lines), ``parsing`` (numbers, dates, weeks),
``measurements`` and ``pilots`` (the two imports: validate, report, write),
``writing`` (the CSV writer and the export frame). Everything is re-exported here:
callers use ``metrics.csvio.<name>``.

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
  (:func:`dialect._detect_delimiter`: ``csv.Sniffer``, checked against the header); an Excel
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
* Measurement values (:func:`parsing._parse_values`): decimal dot or decimal comma, thousands
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
  cell that starts with ``= + - @ \t \r``, or with one or more ``'`` followed by
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

from metrics.csvio import (
    columns,
    dialect,
    formula,
    measurements,
    parsing,
    pilots,
    reports,
    writing,
)
from metrics.csvio.columns import (
    ACTION_COL,
    CHANGE_COLUMNS,
    CREATE,
    DATE_DMY,
    DATE_FORMATS,
    DATE_MDY,
    DECIMAL_COMMA,
    DECIMAL_DOT,
    DECIMALS,
    DELIMITER_NAMES,
    EXPORT_COLUMNS,
    LINE_COL,
    LONG_OPTIONAL,
    LONG_REQUIRED,
    METRIC_COL,
    METRIC_ID_COL,
    NOTE_COL,
    OLD_NOTE_COL,
    OLD_VALUE_COL,
    PERCENT_UNIT,
    PILOT_COL,
    REPORT_COLUMNS,
    UNCHANGED,
    UPDATE,
    VALUE_COL,
    WEEK_COL,
    WEEK_LABEL_COL,
    WIDE_REQUIRED,
    Progress,
)
from metrics.csvio.formula import (
    FORMULA_TRIGGERS,
)
from metrics.csvio.measurements import (
    NOTE_MAX,
    changed_meanwhile,
    import_measurements,
    parse_measurements_csv,
    pilot_names_in,
    same_changes,
)
from metrics.csvio.parsing import (
    NUMBER_RE,
    TypedNumber,
    _today,
    parse_typed_number,
)
from metrics.csvio.pilots import (
    PILOT_CSV_COLUMNS,
    PILOT_CSV_EXTRA,
    PILOT_CSV_REQUIRED,
    PILOT_FIELDS,
    import_pilots,
    parse_pilots_csv,
)
from metrics.csvio.reports import (
    ImportReport,
    PilotImportReport,
    RowError,
)
from metrics.csvio.writing import (
    _plain_float,
    export_measurements_frame,
    to_csv_text,
)

# Re-exports: the names outside __all__ (CREATE, same_changes, _plain_float, _today...)
# are used as ``csvio.<name>`` by other modules and tests, as before the split.
# ruff: noqa: F401
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
