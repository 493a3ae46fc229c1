"""The names every csvio module shares: the columns of a measurements file and of
an import report's frames, the action a row would take, and the reader's choices
(field delimiters, decimal separators, date formats)."""

from __future__ import annotations

from collections.abc import Callable

from metrics import computations as C

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

#: Day/month order of non-ISO dates (``date_format=`` of the readers).
DATE_DMY, DATE_MDY = "dmy", "mdy"
DATE_FORMATS = (DATE_DMY, DATE_MDY)

#: The unit of metrics whose values may carry a percent sign.
PERCENT_UNIT = "%"

#: ``progress(fraction 0..1, text)``: called while a large file is read and written.
Progress = Callable[[float, str], None]
