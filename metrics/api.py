"""The HTTP API (DESIGN §11): vendors push weekly measurements, other systems read the
go/no-go summary. ``pilotgate api`` serves it with uvicorn under ``/api/v1``.

A third door beside the CLI and the dashboard, as thin as they are: every request is
answered by the same core functions -- :func:`metrics.csvio.import_measurements` (a JSON
body is handed to it as the equivalent CSV), :func:`metrics.service.summary_export_frame`,
:func:`metrics.csvio.to_csv_text` and the token functions of :mod:`metrics.store`. This
module only translates HTTP to those calls and their reports to status codes:

- 401 missing, unknown or revoked token; 403 role, or a pilot outside the token's scope;
- 400 a body that is not JSON; 415 a content type other than JSON or CSV;
- 413 a body over ``api_max_body_bytes`` or more rows than ``api_max_rows``;
- 422 every bad row (``row`` index for JSON, ``line`` for CSV, ``field``, ``reason``),
  nothing written; 409 stored values would change without ``update`` and a ``reason``,
  or another writer changed the same weeks meanwhile (nothing written; try again);
- 200 otherwise (re-posting identical rows writes nothing and answers 200).

Every revision written through a token records the actor ``token:<name>``. The token
itself never appears in a message, a log line or an export.
"""

from __future__ import annotations

import csv
import io
import logging
import threading
from contextlib import asynccontextmanager
from datetime import date
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from metrics import csvio, service, store
from metrics.access import allowed
from metrics.db import session_scope
from metrics.errors import StoreError
from metrics.models import Role, check_date_range
from metrics.settings import Settings, get_settings

API_PREFIX = "/api/v1"
log = logging.getLogger("pilotgate.api")

#: Content types POST /measurements reads (parameters such as charset are allowed).
JSON_TYPE = "application/json"
CSV_TYPE = "text/csv"
PDF_TYPE = "application/pdf"
#: Largest id a path may name (ids are 32-bit integers on every backend).
MAX_ID = 2_147_483_647
#: Query parameters that apply to a text/csv body only (a JSON body carries them).
CSV_QUERY_PARAMS = ("dry_run", "update", "reason", "decimal", "date_format")
#: Revision reason source for values created without a reason: "import via API".
SOURCE = "via API"


# =========================================================================== schemas


class Problem(BaseModel):
    """One problem with a request: where (row index of a JSON body, or line of a CSV
    body; None for the request as a whole), which field, and why."""

    row: int | None = None
    line: int | None = None
    field: str | None = None
    reason: str


class Change(BaseModel):
    """A stored value the request would change (409 lists them)."""

    row: int | None = None
    line: int | None = None
    pilot: str
    metric: str
    week: str
    old_value: float
    value: float
    old_note: str
    note: str


class ErrorOut(BaseModel):
    """Every error answer: ``detail`` is a sentence, or (422) every problem found."""

    detail: str | list[Problem]
    changes: list[Change] | None = None


class RowIn(BaseModel):
    """One weekly value, as in the import CSV (DESIGN §6)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    pilot: str = Field(description="The pilot's name, exactly as stored.")
    metric: str = Field(description="The metric's key, e.g. resolution_time.")
    week: str = Field(
        description="ISO week label (2026-W10) or an ISO date inside the week (2026-03-04)."
    )
    value: float = Field(description="Finite number in the metric's unit.")
    note: str | None = Field(
        default=None,
        description=(
            "Replaces the stored note ('' clears it). Omitted or null on every row: "
            "stored notes are kept. Give it on every row or on none."
        ),
    )


class MeasurementsIn(BaseModel):
    """JSON body of POST /api/v1/measurements."""

    model_config = ConfigDict(extra="forbid", strict=True)

    rows: list[RowIn] = Field(min_length=1)
    dry_run: bool = Field(default=False, description="Validate and report; write nothing.")
    update: bool = Field(
        default=False, description="Allow changing stored values (needs a reason)."
    )
    reason: str | None = Field(
        default=None, description="Revision reason; required to change stored values."
    )


class ImportOut(BaseModel):
    """What a push did (or, with dry_run, would do)."""

    rows: int
    created: int
    updated: int
    unchanged: int
    dry_run: bool
    written: bool
    summary: str
    notices: list[Problem] = Field(default_factory=list)


class MetricOut(BaseModel):
    key: str
    label: str
    unit: str
    direction: str
    role: str
    baseline: float | None
    target: float | None
    margin: float | None
    min_value: float | None
    max_value: float | None


class PilotOut(BaseModel):
    id: int
    name: str
    vendor: str
    use_case: str
    owner: str
    stage: str
    start_date: date
    decision_date: date
    cost: float | None
    trailing_window: int
    min_weeks: int
    metrics: list[MetricOut]


class SummaryOut(BaseModel):
    """The go/no-go summary: ``rows`` has one object per pilot and metric, keyed by
    ``columns`` (the columns of ``pilotgate export summary``, in order)."""

    as_of: date
    columns: list[str]
    rows: list[dict[str, str | int | float | None]]


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    words = {
        400: "The body is not valid JSON.",
        401: "Missing, unknown or revoked token.",
        403: "The token's role or pilot scope does not allow this.",
        404: "No pilot with that id.",
        409: "Stored values would change without update and reason, or changed meanwhile.",
        413: "Body larger than api_max_body_bytes, or more rows than api_max_rows.",
        415: "Content type other than application/json or text/csv.",
        422: "Every problem found; nothing written.",
        503: "The database is busy or unreachable; nothing written; try again.",
    }
    return {c: {"model": ErrorOut, "description": words[c]} for c in codes}


# =========================================================================== app


def create_app(
    engine: Engine, settings: Settings | None = None, *, schedule_alerts: bool = False
) -> FastAPI:
    """The API application over ``engine`` (migrated; see :func:`metrics.db.init_db`).

    Args:
        settings: limits (``api_max_body_bytes``, ``api_max_rows``); default the
            process settings.
        schedule_alerts: run :func:`metrics.alerts.run_alerts` every
            ``settings.alerts_interval_s`` while the app is up (``pilotgate api`` does;
            DESIGN §13).
    """
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        schedule = None
        if schedule_alerts:
            from metrics.alerts import AlertSchedule

            schedule = AlertSchedule(engine=engine, interval_s=settings.alerts_interval_s)
            schedule.start()
        _app.state.alert_schedule = schedule
        try:
            yield
        finally:
            if schedule is not None:
                schedule.stop()

    app = FastAPI(
        lifespan=lifespan,
        title="PilotGate API",
        version="1",
        description=(
            "Push weekly measurements, read pilots and the go/no-go summary. "
            "Authenticate with `Authorization: Bearer <token>` (`pilotgate tokens create`). "
            "Guide: docs/api.md."
        ),
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.engine = engine
    app.state.settings = settings
    app.state.summaries = _SummaryCache()
    app.include_router(_router(), prefix=API_PREFIX)
    _install_error_handlers(app)

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        body = MeasurementsIn.model_json_schema(ref_template="#/components/schemas/{model}")
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(body.pop("$defs", {}))
        components["MeasurementsIn"] = body
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            Problem(field=".".join(str(x) for x in e["loc"][1:]) or None, reason=_reason(e))
            for e in exc.errors()
        ]
        return JSONResponse(status_code=422, content={"detail": _dump(problems)})

    @app.exception_handler(sa.exc.OperationalError)
    async def _busy(_request: Request, exc: sa.exc.OperationalError) -> JSONResponse:
        log.warning("database error: %s", " ".join(str(exc.orig).split()))
        return JSONResponse(
            status_code=503,
            content={"detail": "the database is busy or unreachable; nothing written; try again"},
        )

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:  # pragma: no cover
        # A bug, never a client's mistake (tests make sure hostile input never gets
        # here). Logged with method and path only: never headers (the token).
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(status_code=500, content={"detail": "internal error"})


def _dump(problems: list[Problem]) -> list[dict]:
    return [p.model_dump() for p in problems]


def _reason(err: dict) -> str:
    """A pydantic error as a sentence naming what was sent (short)."""
    kind, msg = err.get("type", ""), err.get("msg", "invalid")
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    if kind == "finite_number":
        return (
            f"{err.get('input')!r} is not a finite number (NaN, Infinity and numbers beyond "
            "±1.8e308, e.g. 1e400, are refused)"
        )
    if "input" in err and kind not in ("json_invalid",):
        shown = repr(err["input"])
        if len(shown) > 60:
            shown = shown[:59] + "…"
        return f"{msg} (got {shown})"
    return msg


# =========================================================================== auth

_bearer = HTTPBearer(
    auto_error=False,
    description="An API token from `pilotgate tokens create` (shown once).",
)


def _engine(request: Request) -> Engine:
    return request.app.state.engine


def token_scope(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> store.TokenScope:
    """The calling token's scope (FastAPI dependency); 401 when there is none."""
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        raise HTTPException(
            401,
            "missing API token: send the header 'Authorization: Bearer <token>'",
            headers=challenge,
        )
    with session_scope(_engine(request)) as s:
        scope = store.authenticate_api_token(session=s, token=credentials.credentials)
    if scope is None:
        raise HTTPException(401, "unknown or revoked API token", headers=challenge)
    return scope


Scope = Annotated[store.TokenScope, Depends(token_scope)]


# =========================================================================== routes


def _router() -> APIRouter:
    router = APIRouter()

    @router.get(
        "/pilots",
        response_model=list[PilotOut],
        responses=_responses(401, 503),
        summary="Pilots and their metrics (those in the token's scope)",
    )
    def get_pilots(request: Request, scope: Scope) -> list[PilotOut]:
        with session_scope(_engine(request)) as s:
            pilots = store.pilots_frame(s)
            metrics = store.metrics_frame(s)
        by_pilot = {pid: g for pid, g in metrics.groupby("pilot_id")}
        out = []
        for p in _records(pilots):
            if not scope.allows(p["pilot_id"]):
                continue
            m = by_pilot.get(p["pilot_id"])
            out.append(
                PilotOut(
                    id=p["pilot_id"],
                    name=p["pilot"],
                    vendor=p["vendor"],
                    use_case=p["use_case"],
                    owner=p["owner"],
                    stage=p["stage"],
                    start_date=p["start_date"].date(),
                    decision_date=p["decision_date"].date(),
                    cost=p["cost"],
                    trailing_window=p["trailing_window"],
                    min_weeks=p["min_weeks"],
                    metrics=[] if m is None else [MetricOut(**r) for r in _metric_records(m)],
                )
            )
        return out

    @router.get(
        "/summary",
        response_model=SummaryOut,
        responses=_responses(401, 422, 503),
        summary="The go/no-go summary as JSON rows",
    )
    def get_summary(request: Request, scope: Scope, as_of: date | None = None) -> SummaryOut:
        day, frame = _summary(request, scope, as_of)
        return SummaryOut(as_of=day, columns=list(frame.columns), rows=_records(frame))

    @router.get(
        "/summary.csv",
        response_class=Response,
        responses={
            200: {
                "content": {CSV_TYPE: {"schema": {"type": "string"}}},
                "description": "Byte for byte what `pilotgate export summary` writes.",
            },
            **_responses(401, 422, 503),
        },
        summary="The go/no-go summary CSV",
    )
    def get_summary_csv(request: Request, scope: Scope, as_of: date | None = None) -> Response:
        day, frame = _summary(request, scope, as_of)
        return Response(
            content=csvio.to_csv_text(frame).encode("utf-8"),
            media_type=f"{CSV_TYPE}; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="pilotgate-summary-{day}.csv"'},
        )

    @router.get(
        "/pilots/{pilot_id}/report.pdf",
        response_class=Response,
        responses={
            200: {
                "content": {PDF_TYPE: {"schema": {"type": "string", "format": "binary"}}},
                "description": "The one-page decision report (DESIGN §12), as "
                "`pilotgate report PILOT --as-of DATE` writes it.",
            },
            **_responses(401, 403, 404, 422, 503),
        },
        summary="One pilot's one-page decision report (PDF)",
    )
    def get_report_pdf(
        request: Request,
        scope: Scope,
        pilot_id: Annotated[int, Path(ge=1, le=MAX_ID, description="The pilot's id (GET /pilots)")],
        as_of: date | None = None,
    ) -> Response:
        # Same answer for a pilot outside the scope whether it exists or not: a limited
        # token cannot discover other pilots' ids.
        if not scope.allows(pilot_id):
            raise HTTPException(
                403, f"token '{scope.name}' may not read pilot {pilot_id} (outside its scope)"
            )
        day = _as_of(as_of)
        from metrics.report import pilot_report_pdf

        try:
            with session_scope(_engine(request)) as s:
                inputs = service.report_inputs(s, pilot_id=pilot_id, as_of=day)
        except service.PilotNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        except service.ReportError as exc:
            raise HTTPException(
                422, [Problem(field="as_of", reason=str(exc)).model_dump()]
            ) from None
        filename = f"pilotgate-report-{pilot_id}-{day}.pdf"
        return Response(
            content=pilot_report_pdf(inputs),
            media_type=PDF_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    @router.post(
        "/measurements",
        response_model=ImportOut,
        responses=_responses(400, 401, 403, 409, 413, 415, 422, 503),
        summary="Push weekly measurements (JSON rows or the import CSV); all or nothing",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    JSON_TYPE: {"schema": {"$ref": "#/components/schemas/MeasurementsIn"}},
                    CSV_TYPE: {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def post_measurements(
        request: Request,
        scope: Scope,
        dry_run: Annotated[bool | None, Query(description="text/csv bodies only.")] = None,
        update: Annotated[bool | None, Query(description="text/csv bodies only.")] = None,
        reason: Annotated[
            str | None, Query(max_length=2000, description="text/csv bodies only.")
        ] = None,
        decimal: Annotated[
            Literal["dot", "comma"] | None, Query(description="text/csv: decimal separator.")
        ] = None,
        date_format: Annotated[
            Literal["dmy", "mdy"] | None, Query(description="text/csv: dates like 03/04/2026.")
        ] = None,
    ) -> JSONResponse:
        if not allowed(scope.role, Role.editor):
            raise HTTPException(
                403,
                f"token {scope.name!r} is a {scope.role.value} token: pushing measurements "
                "needs an editor token",
            )
        settings: Settings = request.app.state.settings
        kind = _content_type(request)
        body = await _read_body(request, settings.api_max_body_bytes)
        if kind == JSON_TYPE:
            given = [p for p in CSV_QUERY_PARAMS if p in request.query_params]
            if given:
                return _problems(
                    [
                        Problem(
                            field=p,
                            reason=f"query parameter {p} applies to text/csv bodies: put it "
                            "in the JSON body",
                        )
                        for p in given
                    ]
                )
            try:
                push = _json_push(body, settings.api_max_rows)
            except _RowProblems as exc:
                return _problems(exc.problems)
        else:
            push = _csv_push(body, settings.api_max_rows, dry_run, update, reason)
            push.decimal, push.date_format = decimal, date_format
        outside = (
            []
            if scope.pilot_names is None
            else store.pilots_outside_scope(scope, push.pilot_names())
        )
        if outside:
            raise HTTPException(
                403,
                f"token {scope.name!r} may not write pilot(s) outside its scope: "
                + ", ".join(repr(n[:80]) for n in outside),
            )
        try:
            store.check_reason(push.reason)
        except StoreError as exc:
            return _problems([Problem(field="reason", reason=str(exc))])
        report, write_failed = await run_in_threadpool(_import, _engine(request), scope, push)
        return _answer(report, write_failed, push)

    return router


# =========================================================================== helpers


def _records(frame: pd.DataFrame) -> list[dict]:
    """Frame rows as plain Python dicts: NaN/NaT -> None, numpy scalars -> Python."""

    def plain(v):
        if v is None or (isinstance(v, float | np.floating) and np.isnan(v)) or v is pd.NaT:
            return None
        if isinstance(v, np.integer):
            return int(v)
        if isinstance(v, np.floating):
            return float(v)
        if isinstance(v, np.bool_):
            return bool(v)
        return v

    cols = list(frame.columns)
    return [
        {c: plain(v) for c, v in zip(cols, row, strict=True)}
        for row in frame.itertuples(index=False, name=None)
    ]


def _metric_records(m: pd.DataFrame) -> list[dict]:
    return _records(m[list(MetricOut.model_fields)])


class _SummaryCache:
    """The last few summaries, keyed by (database data version, as-of day).

    The summary is a pure function of the stored data and the day, and
    :func:`metrics.store.data_version` changes with every write (the dashboard keys its
    caches the same way), so concurrent readers -- a BI tool polling, 20 systems at
    9:00 -- share one computation instead of each recomputing it. One lock: a summary
    not cached yet is computed once while the others wait for it.
    """

    def __init__(self, size: int = 16):
        self.size = size
        self.frames: dict[tuple, pd.DataFrame] = {}
        self.lock = threading.Lock()

    def get(self, engine: Engine, day: date) -> pd.DataFrame:
        with session_scope(engine) as s:
            key = (store.data_version(s), day)
        frame = self.frames.get(key)
        if frame is not None:
            return frame
        with self.lock:
            frame = self.frames.get(key)
            if frame is None:
                with session_scope(engine) as s:
                    frame = service.summary_export_frame(s, as_of=day)
                if len(self.frames) >= self.size:
                    self.frames.pop(next(iter(self.frames)))
                self.frames[key] = frame
        return frame


def _as_of(as_of: date | None) -> date:
    """The day to judge at (default today); 422 outside the dates PilotGate accepts."""
    day = as_of or service.today()
    try:
        check_date_range(day, "as_of")
    except ValueError as exc:
        raise HTTPException(422, [Problem(field="as_of", reason=str(exc)).model_dump()]) from None
    return day


def _summary(
    request: Request, scope: store.TokenScope, as_of: date | None
) -> tuple[date, pd.DataFrame]:
    day = _as_of(as_of)
    frame = request.app.state.summaries.get(_engine(request), day)
    if scope.pilot_names is not None:
        frame = frame[frame["pilot"].isin(scope.pilot_names)].reset_index(drop=True)
    return day, frame


def _content_type(request: Request) -> str:
    raw = request.headers.get("content-type", "")
    kind = raw.split(";", 1)[0].strip().lower()
    if kind not in (JSON_TYPE, CSV_TYPE):
        shown = f"'{raw[:60]}'" if raw else "none"
        raise HTTPException(
            415, f"content type {shown}: send {JSON_TYPE} (rows) or {CSV_TYPE} (the import CSV)"
        )
    return kind


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit`` bytes (by
    its Content-Length, or while streaming when that is absent or wrong)."""
    too_big = HTTPException(413, f"body larger than {limit:,} bytes: split the upload")
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise HTTPException(400, "invalid Content-Length header")
        if int(length) > limit:
            raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


class _Push:
    """One push, ready for :func:`metrics.csvio.import_measurements`."""

    def __init__(
        self,
        data: bytes | str,
        *,
        dry_run: bool,
        update: bool,
        reason: str | None,
        names: set[str] | None = None,
        row_of_line: dict[int, int] | None = None,
    ):
        self.data = data
        self.dry_run = dry_run
        self.update = update
        self.reason = reason
        self.decimal: str | None = "dot" if row_of_line is not None else None
        self.date_format: str | None = None
        self._names = names
        #: JSON bodies: physical CSV line -> index in ``rows``; None for CSV bodies.
        self.row_of_line = row_of_line

    def pilot_names(self) -> set[str]:
        if self._names is None:
            self._names = csvio.pilot_names_in(self.data)
        return self._names

    def where(self, line: int | None) -> dict[str, int | None]:
        """``row`` (JSON) or ``line`` (CSV) of a problem reported at CSV ``line``."""
        if self.row_of_line is None:
            return {"line": line}
        return {"row": None if line is None else self.row_of_line.get(line)}


def _json_push(body: bytes, max_rows: int) -> _Push:
    try:
        req = MeasurementsIn.model_validate_json(body)
    except ValidationError as exc:
        errors = exc.errors()
        bad_json = [e for e in errors if e["type"] == "json_invalid"]
        if bad_json:
            raise HTTPException(400, f"body is not valid JSON: {bad_json[0]['msg']}") from None
        raise _RowProblems([_json_problem(e) for e in errors]) from None
    if len(req.rows) > max_rows:
        raise HTTPException(
            413, f"{len(req.rows):,} rows: at most {max_rows:,} per request; split the upload"
        )
    with_note = [r.note is not None for r in req.rows]
    if any(with_note) and not all(with_note):
        raise _RowProblems(
            [
                Problem(
                    row=i,
                    field="note",
                    reason="other rows of this request have a note: give one on every row "
                    "('' for none) or on none (stored notes are then kept)",
                )
                for i, has in enumerate(with_note)
                if not has
            ]
        )
    # The same file `pilotgate import` reads: one import path for every door.
    frame = pd.DataFrame(
        {
            "pilot": pd.Series([r.pilot for r in req.rows], dtype=object),
            "metric": pd.Series([r.metric for r in req.rows], dtype=object),
            "week": pd.Series([r.week for r in req.rows], dtype=object),
            "value": pd.Series([r.value for r in req.rows], dtype="float64"),
        }
    )
    if all(with_note):
        frame["note"] = pd.Series([r.note for r in req.rows], dtype=object)
    text = csvio.to_csv_text(frame)
    lines = _record_lines(text)
    return _Push(
        text,
        dry_run=req.dry_run,
        update=req.update,
        reason=req.reason,
        names={r.pilot.strip() for r in req.rows},
        row_of_line={line: i for i, line in enumerate(lines)},
    )


def _record_lines(text: str) -> list[int]:
    """The physical line each data record of ``text`` starts on, counted the way the
    importer counts (a quoted note holding line breaks spans several lines)."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    out, prev = [], 0
    for _rec in reader:
        out.append(prev + 1)
        prev = reader.line_num
    return out[1:]  # the header is line 1


def _json_problem(err: dict) -> Problem:
    loc = list(err.get("loc", ()))
    row = loc[1] if len(loc) >= 2 and loc[0] == "rows" and isinstance(loc[1], int) else None
    rest = loc[2:] if row is not None else loc
    return Problem(row=row, field=".".join(str(x) for x in rest) or None, reason=_reason(err))


def _csv_push(
    body: bytes, max_rows: int, dry_run: bool | None, update: bool | None, reason: str | None
) -> _Push:
    # A cheap upper bound before parsing: data lines = line breaks (minus the header).
    lines = body.count(b"\n") + (0 if body.endswith(b"\n") else 1) - 1
    if lines > max_rows:
        raise HTTPException(
            413, f"{lines:,} data lines: at most {max_rows:,} per request; split the upload"
        )
    return _Push(body, dry_run=bool(dry_run), update=bool(update), reason=reason)


class _RowProblems(Exception):
    def __init__(self, problems: list[Problem]):
        super().__init__("invalid rows")
        self.problems = problems


def _problems(problems: list[Problem]) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": _dump(problems)})


def _import(engine: Engine, scope: store.TokenScope, push: _Push):
    """Run the import in one transaction; (report, whether the write itself failed)."""
    has_reason = bool(push.reason and push.reason.strip())
    with session_scope(engine) as s:
        report = csvio.import_measurements(
            session=s,
            actor=scope.actor,
            data=push.data,
            dry_run=push.dry_run,
            source=SOURCE,
            # Changing stored values needs both: without a reason the import refuses
            # them (409) exactly as without update.
            update=push.update and has_reason,
            reason=push.reason,
            decimal=push.decimal,
            date_format=push.date_format,
        )
        # The importer rolls the session back only when the write itself failed (a
        # concurrent writer, a busy database); validation problems leave it open.
        write_failed = bool(report.errors) and not s.in_transaction()
        if not report.ok:
            s.rollback()
    return report, write_failed


def _answer(report: csvio.ImportReport, write_failed: bool, push: _Push) -> JSONResponse:
    notices = [
        Problem(**push.where(n.line), field=n.column, reason=n.reason) for n in report.notices
    ]
    if report.needs_confirmation:
        n = len(report.changes)
        changes = [
            Change(
                **push.where(int(c.line)),
                pilot=c.pilot,
                metric=c.metric,
                week=c.week_label,
                old_value=c.old_value,
                value=c.value,
                old_note=c.old_note or "",
                note=c.note or "",
            ).model_dump()
            for c in report.changes.itertuples(index=False)
        ]
        return JSONResponse(
            status_code=409,
            content={
                "detail": f"{n} stored value{'s' if n != 1 else ''} would change: send "
                "update=true and a reason to overwrite; nothing written",
                "changes": changes,
            },
        )
    if write_failed:
        return JSONResponse(
            status_code=409,
            content={"detail": "; ".join(e.reason for e in report.errors) or "nothing written"},
        )
    if report.errors:
        return _problems(
            [Problem(**push.where(e.line), field=e.column, reason=e.reason) for e in report.errors]
        )
    out = ImportOut(
        rows=len(report.rows),
        created=report.created,
        updated=report.updated,
        unchanged=report.unchanged,
        dry_run=push.dry_run,
        written=report.written,
        summary=report.summary_line(),
        notices=notices,
    )
    return JSONResponse(status_code=200, content=out.model_dump())


__all__ = ["API_PREFIX", "create_app", "token_scope"]
