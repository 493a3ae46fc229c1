"""Pilot-definition import: a pilot definitions CSV (DESIGN §7, one row per metric)
parsed and validated into PilotCreate and MetricCreate models, then saved all or
nothing with :func:`metrics.store.save_pilot` (a dry run takes the same path in a
savepoint it rolls back)."""

from __future__ import annotations

import sqlalchemy as sa
from pydantic import ValidationError
from sqlmodel import Session

from metrics import store
from metrics.csvio.dialect import _FileError, _read_table, _semicolon_hint
from metrics.csvio.formula import _unescape_one
from metrics.csvio.parsing import _parse_int, _parse_iso_date, _parse_number
from metrics.csvio.reports import PilotImportReport, RowError, _fmt_names, _short, _sorted_errors
from metrics.models import MetricCreate, PilotCreate, collapse_spaces, pilot_name_key

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
