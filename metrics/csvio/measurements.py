"""Measurement import: a measurements CSV (long or wide form) read and validated
completely -- pilots, metrics, weeks, values, notes, duplicates, distant weeks -- into
an :class:`ImportReport` that classifies each row against the stored values (create,
update, unchanged), then written all or nothing with
:func:`metrics.store.write_measurements`; and the pilot names a file addresses (an API
token's scope)."""

from __future__ import annotations

import difflib
from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlmodel import Session

from metrics import computations as C
from metrics import store
from metrics.csvio.columns import (
    ACTION_COL,
    CREATE,
    DATE_FORMATS,
    DECIMALS,
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
    UNCHANGED,
    UPDATE,
    VALUE_COL,
    WEEK_COL,
    WEEK_LABEL_COL,
    WIDE_REQUIRED,
    Progress,
)
from metrics.csvio.dialect import _FileError, _read_table, _split_values, _Table
from metrics.csvio.formula import _unescape, _unescape_one
from metrics.csvio.parsing import _label, _parse_values, _parse_weeks, _Reading
from metrics.csvio.reports import (
    ImportReport,
    RowError,
    _changes_frame,
    _empty_rows,
    _fmt_names,
    _num_text,
    _plural,
    _short,
    _sorted_errors,
)
from metrics.models import CONTROL_CHARS_RE, MAX_ABS_VALUE

NOTE_MAX = 1000  # models.MeasurementBase.note max_length


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


def _unknown_pilot_message(name: str, known: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
    if not close:
        lower = {k.lower(): k for k in known}
        if name.lower() in lower:
            close = [lower[name.lower()]]
    hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
    return f"unknown pilot {_short(name)!r}{hint}"


def _range_text(lo: float, hi: float) -> str:
    if pd.notna(lo) and pd.notna(hi):
        return f"between {_num_text(lo)} and {_num_text(hi)}"
    if pd.notna(lo):
        return f"at least {_num_text(lo)}"
    return f"at most {_num_text(hi)}"


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
