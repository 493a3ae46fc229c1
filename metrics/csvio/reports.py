"""What an import reports: :class:`RowError` (one problem, with its line and column),
:class:`ImportReport` and :class:`PilotImportReport` with their empty frames, and the
small helpers that put numbers and names into their messages."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from metrics.csvio.columns import (
    ACTION_COL,
    CHANGE_COLUMNS,
    LINE_COL,
    METRIC_COL,
    METRIC_ID_COL,
    NOTE_COL,
    OLD_NOTE_COL,
    OLD_VALUE_COL,
    PILOT_COL,
    VALUE_COL,
    WEEK_COL,
    WEEK_LABEL_COL,
)
from metrics.models import MetricCreate, PilotCreate


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


def _short(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters (with an ellipsis) for messages."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _num_text(x: float) -> str:
    """Shortest round-trip text of a number, without a trailing '.0'."""
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def _fmt_names(names: Iterable[str]) -> str:
    return ", ".join(names) or "none"


def _sorted_errors(errors: list[RowError]) -> list[RowError]:
    unique = list(dict.fromkeys(errors))
    return sorted(unique, key=lambda e: -1 if e.line is None else e.line)


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


def _changes_frame(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({c: df[c].to_numpy() for c in CHANGE_COLUMNS})
    for c in (LINE_COL, METRIC_ID_COL):
        out[c] = out[c].astype("int64")
    for c in (OLD_VALUE_COL, VALUE_COL):
        out[c] = out[c].astype("float64")
    for c in (PILOT_COL, METRIC_COL, WEEK_COL, WEEK_LABEL_COL, OLD_NOTE_COL, NOTE_COL):
        out[c] = out[c].astype(object)
    return out


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
