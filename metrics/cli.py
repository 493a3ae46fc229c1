"""The ``pilotgate`` command line (DESIGN §7), over the same core as the dashboard.

Typer builds the interface. Every user mistake ends as one readable line per problem
on stderr and a non-zero exit, never a traceback.

Start-up is kept short (issue 13): this module imports only Typer and the settings at
the top; SQLAlchemy, pandas, SciPy and the rest of the core are imported inside the
command that needs them, so ``pilotgate --help`` never pays for them.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

import typer

app = typer.Typer(
    help="PilotGate: track AI pilots against baselines and targets; go / no-go / extend.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
seed_app = typer.Typer(help="Load demo or real data.", no_args_is_help=True)
pilots_app = typer.Typer(help="Pilot definitions.", no_args_is_help=True)
export_app = typer.Typer(help="Write CSV exports.", no_args_is_help=True)
app.add_typer(seed_app, name="seed")
app.add_typer(pilots_app, name="pilots")
app.add_typer(export_app, name="export")
users_app = typer.Typer(help="Users and their roles (viewer, editor, admin).", no_args_is_help=True)
app.add_typer(users_app, name="users")

_state: dict[str, str | None] = {"database_url": None}


class CliError(Exception):
    """A user-facing failure: printed as one line on stderr, exit code 1 (or ``code``)."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


def _fail(message: str, code: int = 1) -> None:
    raise CliError(message, code)


@app.callback()
def _main(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="SQLAlchemy URL; default PILOTGATE_DATABASE_URL or sqlite:///pilotgate.db.",
            show_default=False,
        ),
    ] = None,
) -> None:
    _state["database_url"] = database_url


def _engine():
    from metrics.db import init_db, make_engine

    engine = make_engine(_state["database_url"])
    init_db(engine)
    return engine


def _actor() -> str:
    from metrics.settings import get_settings

    return get_settings().actor


def _read_input(path: Path) -> bytes:
    if str(path) == "-":
        return sys.stdin.buffer.read()
    if not path.exists():
        _fail(f"{path}: no such file")
    if path.is_dir():
        _fail(f"{path}: is a folder, not a CSV file")
    try:
        return path.read_bytes()
    except OSError as exc:
        _fail(f"{path}: cannot read: {exc.strerror or exc}")
    raise AssertionError  # unreachable


def _check_output(output: Path | None) -> None:
    """Fail early (before any work) when ``output`` cannot be written."""
    if output is None or str(output) == "-":
        return
    if output.is_dir():
        _fail(f"{output}: is a folder; give a file name inside it")
    if not output.parent.is_dir():
        _fail(f"{output}: folder {output.parent} does not exist")


def _write_output(text: str, output: Path | None) -> None:
    _check_output(output)
    if output is None or str(output) == "-":
        sys.stdout.write(text.removeprefix("\ufeff") if sys.stdout.isatty() else text)
        sys.stdout.flush()
    else:
        try:
            output.write_text(text, encoding="utf-8", newline="")
        except OSError as exc:
            _fail(f"{output}: cannot write: {exc.strerror or exc}")
        typer.echo(f"wrote {output}", err=True)


def _parse_date(text: str | None, option: str) -> date:
    from metrics.models import check_date_range

    if text is None:
        return date.today()
    try:
        return check_date_range(date.fromisoformat(text), option)
    except ValueError as exc:
        if "outside" in str(exc):
            _fail(str(exc))
        _fail(f"{option} {text!r} is not a date: use YYYY-MM-DD")
    raise AssertionError  # unreachable


@app.command()
def init(
    seed_if_empty: Annotated[
        bool,
        typer.Option(
            "--seed-if-empty", help="Load the demo portfolio and the help-desk pilot if empty."
        ),
    ] = False,
) -> None:
    """Create the database or migrate it to the newest schema."""
    from metrics import store
    from metrics.db import safe_url, schema_revision, session_scope
    from metrics.settings import get_settings
    from seed.demo import seed_demo as _seed_demo
    from seed.helpdesk import seed_helpdesk as _seed_helpdesk

    engine = _engine()
    typer.echo(f"database {safe_url(engine.url)} at schema revision {schema_revision(engine)}")
    if not seed_if_empty:
        return
    with session_scope(engine) as s:
        if not store.pilots_frame(s).empty:
            typer.echo("database already has pilots: nothing seeded")
            return
        demo = _seed_demo(session=s, actor=_actor(), today=date.today())
        typer.echo(f"seeded the demo portfolio ({demo.created} weekly values)")
        path = get_settings().shared_data_dir / "helpdesk.csv"
        if path.exists():
            real = _seed_helpdesk(session=s, actor=_actor(), path=path)
            typer.echo(f"seeded the real help-desk pilot ({real.created} weekly values)")
        else:
            typer.echo(f"warning: {path} not found: the real help-desk pilot was not seeded")


@seed_app.command("demo")
def seed_demo(
    today: Annotated[
        str | None, typer.Option(help="Anchor the demo weeks at this date (YYYY-MM-DD).")
    ] = None,
) -> None:
    """Load the deterministic demo portfolio (five pilots, every status)."""
    from metrics.db import session_scope
    from seed.demo import seed_demo as _seed

    anchor = _parse_date(today, "--today")
    if not date(1901, 1, 1) <= anchor <= date.today():
        _fail(f"--today {anchor}: use a date from 1901-01-01 up to today")
    with session_scope(_engine()) as s:
        counts = _seed(session=s, actor=_actor(), today=anchor)
    typer.echo(
        f"demo portfolio: {counts.created} created, {counts.updated} updated, "
        f"{counts.unchanged} unchanged weekly values"
    )


@seed_app.command("helpdesk")
def seed_helpdesk(
    path: Annotated[
        Path | None, typer.Option("--file", help="The help-desk event log CSV.")
    ] = None,
) -> None:
    """Build the real help-desk pilot from shared/data/helpdesk.csv."""
    from metrics.db import session_scope
    from metrics.derive import DeriveError
    from metrics.settings import get_settings
    from seed.helpdesk import PILOT_NAME
    from seed.helpdesk import seed_helpdesk as _seed

    path = path or get_settings().shared_data_dir / "helpdesk.csv"
    if path.is_dir():
        _fail(f"{path}: is a folder, not the help-desk event log CSV")
    if not path.exists():
        _fail(
            f"{path}: help-desk event log not found (set PILOTGATE_SHARED_DATA_DIR or pass --file)"
        )
    try:
        with session_scope(_engine()) as s:
            counts = _seed(session=s, actor=_actor(), path=path)
    except DeriveError as exc:
        _fail(f"{path}: {exc}")
    typer.echo(
        f"{PILOT_NAME}: {counts.created} created, {counts.updated} updated, "
        f"{counts.unchanged} unchanged weekly values"
    )


@pilots_app.command("import")
def pilots_import(
    file: Annotated[Path, typer.Argument(help="Pilot definitions CSV ('-' for stdin).")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate only.")] = False,
) -> None:
    """Create or update pilots and their metrics from a definitions CSV (all-or-nothing)."""
    data = _read_input(file)
    from metrics import csvio
    from metrics.db import session_scope

    with session_scope(_engine()) as s:
        report = csvio.import_pilots(session=s, actor=_actor(), data=data, dry_run=dry_run)
        if not report.ok:
            s.rollback()
    _finish_report(report, file)


@app.command("import")
def import_measurements(
    file: Annotated[
        Path, typer.Argument(help="Measurements CSV, long or wide form ('-' = stdin).")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Validate and report; write nothing.")
    ] = False,
    update: Annotated[
        bool,
        typer.Option(
            "--update", help="Allow the file to change stored values (else refused, exit 1)."
        ),
    ] = False,
    reason: Annotated[
        str | None,
        typer.Option("--reason", help='Revision reason (default: "import FILE-NAME").'),
    ] = None,
    decimal: Annotated[
        Literal["comma", "dot"] | None,
        typer.Option("--decimal", help="Decimal separator of the values (default: detect)."),
    ] = None,
    date_format: Annotated[
        Literal["dmy", "mdy"] | None,
        typer.Option("--date-format", help="Dates like 03/04/2026: day-first or month-first."),
    ] = None,
) -> None:
    """Import weekly measurements; on any error nothing is written and the exit code is 1."""
    data = _read_input(file)
    from metrics import csvio
    from metrics.db import session_scope

    with session_scope(_engine()) as s:
        report = csvio.import_measurements(
            session=s,
            actor=_actor(),
            data=data,
            dry_run=dry_run,
            source=file.name,
            update=update,
            reason=reason,
            decimal=decimal,
            date_format=date_format,
        )
        if not report.ok:
            s.rollback()
    for note in report.notices:
        typer.echo(f"{file}: note: {note}", err=True)
    if report.needs_confirmation:
        for line in report.change_lines():
            typer.echo(f"{file}: would change {line}", err=True)
        _fail(f"{file}: {report.summary_line()}; pass --update (and --reason TEXT) to overwrite")
    if not report.ok:
        for err in report.errors:
            typer.echo(f"{file}: {err}", err=True)
        if report.ask_decimal:
            typer.echo(f"{file}: choose the decimal separator: --decimal comma|dot", err=True)
        if report.ask_date_format:
            typer.echo(f"{file}: choose the date format: --date-format dmy|mdy", err=True)
        _fail(f"{file}: {report.summary_line()}")
    typer.echo(report.summary_line())


def _finish_report(report, file: Path) -> None:
    if not report.ok:
        for err in report.errors:
            typer.echo(f"{file}: {err}", err=True)
        _fail(f"{file}: {report.summary_line()}")
    typer.echo(report.summary_line())


@export_app.command("summary")
def export_summary(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File to write (default stdout).")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Judge as of this date (YYYY-MM-DD); later weeks ignored."),
    ] = None,
) -> None:
    """Write the go/no-go summary CSV (one row per pilot and metric)."""
    from metrics import csvio, service
    from metrics.db import session_scope

    day = _parse_date(as_of, "--as-of")
    _check_output(output)
    with session_scope(_engine()) as s:
        frame = service.summary_export_frame(s, as_of=day)
    _write_output(csvio.to_csv_text(frame), output)


@export_app.command("vendors")
def export_vendors(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File to write (default stdout).")
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Judge as of this date (YYYY-MM-DD); later weeks ignored."),
    ] = None,
) -> None:
    """Write one row per vendor across its pilots (the Vendors page's table)."""
    from metrics import csvio, service
    from metrics.db import session_scope

    day = _parse_date(as_of, "--as-of")
    _check_output(output)
    with session_scope(_engine()) as s:
        frame = service.vendors_frame(s, as_of=day)
    _write_output(csvio.to_csv_text(frame), output)


@export_app.command("measurements")
def export_measurements(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File to write (default stdout).")
    ] = None,
) -> None:
    """Write every weekly value in the long form that `pilotgate import` reads."""
    from metrics import csvio
    from metrics.db import session_scope

    with session_scope(_engine()) as s:
        frame = csvio.export_measurements_frame(s)
    _write_output(csvio.to_csv_text(frame), output)


@export_app.command("revisions")
def export_revisions(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File to write (default stdout).")
    ] = None,
) -> None:
    """Write the audit trail of measurements: every create, correction, delete, restore."""
    from metrics import csvio, store
    from metrics.db import session_scope

    _check_output(output)
    with session_scope(_engine()) as s:
        frame = store.revisions_export_frame(s)
    _write_output(csvio.to_csv_text(frame), output)


@app.command()
def derive(
    file: Annotated[Path, typer.Argument(help="Event log CSV, one row per event ('-' = stdin).")],
    case: Annotated[str, typer.Option("--case", help="Column holding the case/ticket id.")],
    time: Annotated[str, typer.Option("--time", help="Column holding the event timestamp.")],
    unit: Annotated[str, typer.Option("--unit", help="h (hours) or d (days).")] = "h",
    pilot: Annotated[str, typer.Option(help="Pilot name to write in the pilot column.")] = "",
    metric: Annotated[str, typer.Option(help="Metric key to write in the metric column.")] = "",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File to write (default stdout).")
    ] = None,
) -> None:
    """Turn an event log into weekly median case durations (measurements CSV)."""
    from metrics import csvio
    from metrics.derive import DeriveError, derive_measurements, read_event_log

    if unit not in ("h", "d"):
        _fail(f"--unit {unit!r}: use h (hours) or d (days)")
    _check_output(output)
    source = io.BytesIO(_read_input(file))
    try:
        events = read_event_log(source, case_col=case, time_col=time)
        frame = derive_measurements(
            events,
            case_col=case,
            time_col=time,
            unit=unit,
            pilot=pilot or None,
            metric=metric or None,
        )
    except DeriveError as exc:
        _fail(f"{file}: {exc}")
    if not pilot or not metric:
        typer.echo(
            "note: the pilot and/or metric columns are empty; pass --pilot and --metric "
            "(or fill them in) before `pilotgate import` can read the file",
            err=True,
        )
    _write_output(csvio.to_csv_text(frame), output)


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8501,
    headless: Annotated[bool, typer.Option(help="Do not open a browser.")] = True,
) -> None:
    """Run the dashboard (Streamlit) on http://localhost:PORT."""
    from metrics.settings import REPO_ROOT

    env = dict(os.environ)
    if _state["database_url"]:
        env["PILOTGATE_DATABASE_URL"] = _state["database_url"]
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(REPO_ROOT / "streamlit_app.py"),
        "--server.port",
        str(port),
        "--server.headless",
        str(headless).lower(),
    ]
    raise SystemExit(subprocess.call(cmd, env=env))


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Sign-in name (e-mail in oidc mode).")],
    email: Annotated[str, typer.Option("--email", help="E-mail address.")] = "",
    role: Annotated[str, typer.Option("--role", help="viewer, editor or admin.")] = "viewer",
) -> None:
    """Add a user. While the database has no admin, this works without one (bootstrap)."""
    from metrics import users
    from metrics.db import session_scope
    from metrics.errors import StoreError

    try:
        with session_scope(_engine()) as s:
            users.add_user(
                session=s, actor=_actor(), name=name, email=email, role=role, bootstrap=True
            )
    except StoreError as exc:
        _fail(str(exc))
    typer.echo(f"added {name.strip()} ({role.strip().lower()})")


@users_app.command("set-role")
def users_set_role(
    name: Annotated[str, typer.Argument(help="The user's sign-in name.")],
    role: Annotated[str, typer.Argument(help="viewer, editor or admin.")],
) -> None:
    """Change a user's role (needs an admin; the last admin cannot be demoted)."""
    from metrics import users
    from metrics.db import session_scope
    from metrics.errors import StoreError

    try:
        with session_scope(_engine()) as s:
            changed = users.set_role(session=s, actor=_actor(), name=name, role=role)
    except StoreError as exc:
        _fail(str(exc))
    role = role.strip().lower()
    typer.echo(f"{name.strip()} is now {role}" if changed else f"{name.strip()} was already {role}")


@users_app.command("list")
def users_list() -> None:
    """List every user with e-mail and role (tab-separated: name, email, role)."""
    from metrics import users
    from metrics.db import session_scope

    with session_scope(_engine()) as s:
        frame = users.users_frame(s)
    if frame.empty:
        typer.echo("no users yet: add the first admin with `pilotgate users add NAME --role admin`")
        return
    typer.echo("name\temail\trole")
    for name, email, role in frame[["name", "email", "role"]].itertuples(index=False):
        typer.echo(f"{name}\t{email}\t{role}")


def main() -> None:
    """Console entry point: run the app, turning user-facing errors into one line.

    Usage errors are printed by Typer/Click (exit 2); :class:`CliError` and database
    errors become ``error: ...`` on stderr with exit 1 or 2.
    """
    try:
        app()
    except CliError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(exc.code) from None
    except Exception as exc:
        _exit_on_known_error(exc)
        raise


def _exit_on_known_error(exc: Exception) -> None:
    """One line on stderr and exit 2 for a database or configuration error; returns
    (the caller re-raises) for anything else. Imports the error types only now."""
    import sqlalchemy as sa
    from pydantic import ValidationError

    from metrics.db import DatabaseError

    if isinstance(exc, DatabaseError):
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    if isinstance(exc, ValidationError):  # a PILOTGATE_* environment variable is invalid
        from metrics.errors import validation_message

        typer.echo(f"error: configuration: {validation_message(exc)}", err=True)
        raise SystemExit(2) from None
    if isinstance(exc, sa.exc.OperationalError):  # locked / unreachable mid-command
        reason = " ".join(str(exc.orig).split())
        typer.echo(f"error: database error, nothing written; try again ({reason})", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
