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
tokens_app = typer.Typer(help="HTTP API tokens (docs/api.md).", no_args_is_help=True)
app.add_typer(tokens_app, name="tokens")
webhooks_app = typer.Typer(
    help="Webhook endpoints that receive alert events.", no_args_is_help=True
)
app.add_typer(webhooks_app, name="webhooks")
alerts_app = typer.Typer(help="Alert events, webhooks and the weekly digest.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
metrics_app = typer.Typer(
    help="A pilot's metrics: rename (label), archive, unarchive.", no_args_is_help=True
)
app.add_typer(metrics_app, name="metrics")

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
        from metrics import atomic

        try:
            # Whole or not at all: a full disk never leaves a cut-short file under
            # the final name (a previous file of that name stays as it was).
            atomic.write_text(output, text)
        except OSError as exc:
            _fail(f"{output}: cannot write: {exc.strerror or exc}; nothing written")
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
    allow_distant_weeks: Annotated[
        bool,
        typer.Option(
            "--allow-distant-weeks",
            help="Accept weeks more than 156 weeks before a pilot's start or 52 after its "
            "decision date (else refused as a likely typo in the year).",
        ),
    ] = False,
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
            allow_distant_weeks=allow_distant_weeks,
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
        if report.ask_distant_weeks:
            typer.echo(
                f"{file}: if those weeks are right, confirm them: --allow-distant-weeks",
                err=True,
            )
        _fail(f"{file}: {report.summary_line()}")
    typer.echo(report.summary_line())


def _finish_report(report, file: Path) -> None:
    if not report.ok:
        for err in report.errors:
            typer.echo(f"{file}: {err}", err=True)
        _fail(f"{file}: {report.summary_line()}")
    for line in getattr(report, "details", []):
        typer.echo(line)
    typer.echo(report.summary_line())


def _definition_write(action) -> object:
    """Run ``action(session)`` in one transaction; a refusal becomes one error line."""
    from metrics.db import session_scope
    from metrics.errors import StoreError

    try:
        with session_scope(_engine()) as s:
            return action(s)
    except StoreError as exc:
        _fail(str(exc))
    raise AssertionError  # unreachable


@pilots_app.command("rename")
def pilots_rename(
    name: Annotated[str, typer.Argument(help="The pilot's current name (any case/spacing).")],
    new_name: Annotated[str, typer.Argument(help="The new name.")],
) -> None:
    """Rename a pilot (audited; its values, decisions and history are kept)."""
    from metrics import store

    def act(s):
        pid = store.pilot_id_by_name(s, name)
        old = s.get(store.Pilot, pid).name
        return old, store.rename_pilot(session=s, actor=_actor(), pilot_id=pid, new_name=new_name)

    old, new = _definition_write(act)
    typer.echo(f"renamed {old!r} to {new!r}" if old != new else f"{old!r} already has that name")


def _set_pilot_archived(name: str, archived: bool) -> None:
    from metrics import store

    def act(s):
        pid = store.pilot_id_by_name(s, name)
        changed = store.set_pilot_archived(
            session=s, actor=_actor(), pilot_id=pid, archived=archived
        )
        return s.get(store.Pilot, pid).name, changed

    stored, changed = _definition_write(act)
    word = "archived" if archived else "unarchived"
    typer.echo(f"{word} {stored!r}" if changed else f"{stored!r} was already {word}")


@pilots_app.command("archive")
def pilots_archive(
    name: Annotated[str, typer.Argument(help="The pilot's name (any case/spacing).")],
) -> None:
    """Archive a pilot: it leaves the Portfolio (a filter shows it); every value is kept."""
    _set_pilot_archived(name, True)


@pilots_app.command("unarchive")
def pilots_unarchive(
    name: Annotated[str, typer.Argument(help="The pilot's name (any case/spacing).")],
) -> None:
    """Bring an archived pilot back to the Portfolio."""
    _set_pilot_archived(name, False)


@metrics_app.command("rename")
def metrics_rename(
    pilot: Annotated[str, typer.Argument(help="The pilot's name.")],
    key: Annotated[str, typer.Argument(help="The metric's key (stays the same).")],
    new_label: Annotated[str, typer.Argument(help="The new label shown on pages and reports.")],
) -> None:
    """Change a metric's label (its key stays: imports use it). Audited."""
    from metrics import store

    def act(s):
        mid = store.metric_id_by_key(s, store.pilot_id_by_name(s, pilot), key)
        old = s.get(store.Metric, mid).label
        return old, store.rename_metric(
            session=s, actor=_actor(), metric_id=mid, new_label=new_label
        )

    old, new = _definition_write(act)
    typer.echo(f"{key}: label {old!r} -> {new!r}" if old != new else f"{key}: label unchanged")


def _set_metric_archived(pilot: str, key: str, archived: bool) -> None:
    from metrics import store

    def act(s):
        mid = store.metric_id_by_key(s, store.pilot_id_by_name(s, pilot), key)
        return store.set_metric_archived(
            session=s, actor=_actor(), metric_id=mid, archived=archived
        )

    changed = _definition_write(act)
    word = "archived" if archived else "unarchived"
    typer.echo(f"{word} metric {key}" if changed else f"metric {key} was already {word}")


@metrics_app.command("archive")
def metrics_archive(
    pilot: Annotated[str, typer.Argument(help="The pilot's name.")],
    key: Annotated[str, typer.Argument(help="The metric's key.")],
) -> None:
    """Archive a metric: it leaves the pages, the summary and the recommendation; its
    weekly values and history are kept."""
    _set_metric_archived(pilot, key, True)


@metrics_app.command("unarchive")
def metrics_unarchive(
    pilot: Annotated[str, typer.Argument(help="The pilot's name.")],
    key: Annotated[str, typer.Argument(help="The metric's key.")],
) -> None:
    """Bring an archived metric back."""
    _set_metric_archived(pilot, key, False)


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
    _export_as_of("summary_export_frame", as_of, output)


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
    _export_as_of("vendors_frame", as_of, output)


def _export_as_of(frame_function: str, as_of: str | None, output: Path | None) -> None:
    """Write ``metrics.service.<frame_function>(session, as_of=day)`` as CSV (formula-safe
    text, plain numbers) to ``output`` or stdout."""
    from metrics import csvio, service
    from metrics.db import session_scope

    day = _parse_date(as_of, "--as-of")
    _check_output(output)
    with session_scope(_engine()) as s:
        frame = getattr(service, frame_function)(s, as_of=day)
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
def report(
    pilot: Annotated[
        str | None, typer.Argument(help="The pilot's name (case and spacing ignored).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="PDF file to write ('-' = stdout).")
    ] = None,
    portfolio: Annotated[
        bool, typer.Option("--portfolio", help="Every pilot on as few pages as needed.")
    ] = False,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Judge as of this date (YYYY-MM-DD); later weeks ignored."),
    ] = None,
) -> None:
    """Write the one-page decision report of a pilot (or the portfolio report) as PDF."""
    from metrics import report as R
    from metrics import service
    from metrics.db import session_scope

    if portfolio == (pilot is not None):
        _fail("give a pilot name or --portfolio (one of them)", 2)
    if output is None:
        _fail("give the PDF file to write with -o FILE.pdf", 2)
    day = _parse_date(as_of, "--as-of")
    _check_output(output)
    try:
        with session_scope(_engine()) as s:
            if portfolio:
                pdf = R.portfolio_report_pdf(service.portfolio_report_inputs(s, as_of=day))
            else:
                pid = service.pilot_id_by_name(s, pilot)
                pdf = R.pilot_report_pdf(service.report_inputs(s, pilot_id=pid, as_of=day))
    except service.ReportError as exc:
        _fail(str(exc))
    if str(output) == "-":
        sys.stdout.buffer.write(pdf)
        sys.stdout.flush()
        return
    try:
        output.write_bytes(pdf)
    except OSError as exc:
        _fail(f"{output}: cannot write: {exc.strerror or exc}")
    typer.echo(f"wrote {output} ({len(pdf)} bytes)", err=True)


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


def _serve_refusal(address: str) -> str | None:
    """Why ``pilotgate serve`` must not start (one line), or None: the listen rule of
    :mod:`metrics.exposure`, and in oidc mode the sign-in cookie secret of the
    secrets file(s) Streamlit will read (``secrets.files``)."""
    from metrics.exposure import cookie_secret_problem, example_placeholders, listen_refusal
    from metrics.settings import REPO_ROOT, get_settings

    settings = get_settings()
    refusal = listen_refusal(
        address,
        door="dashboard",
        auth_mode=settings.auth_mode,
        trusted_proxy=settings.trusted_proxy,
    )
    if refusal is not None or settings.auth_mode != "oidc":
        return refusal
    import tomllib

    # The files `streamlit run` reads by default (~/.streamlit, ./.streamlit, then the
    # app's own folder; later ones win), listed here rather than asked of Streamlit so
    # the core never imports it: the dashboard checks again, with Streamlit's own list
    # (``secrets.files``), when it runs.
    files = [
        str(Path.home() / ".streamlit" / "secrets.toml"),
        str(Path.cwd() / ".streamlit" / "secrets.toml"),
    ]
    beside_app = str(REPO_ROOT / ".streamlit" / "secrets.toml")
    if beside_app not in files:
        files.append(beside_app)
    existing = [f for f in files if Path(f).is_file()]
    secret = None
    for name in existing:
        try:
            data = tomllib.loads(Path(name).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            return f"cannot read {name}: {' '.join(str(exc).split())}"
        secret = data.get("auth", {}).get("cookie_secret", secret)
    return cookie_secret_problem(
        secret,
        file=" or ".join(existing or files[-1:] or [".streamlit/secrets.toml"]),
        placeholders=example_placeholders(),
    )


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8501,
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="Address to listen on (default PILOTGATE_SERVER_ADDRESS or 127.0.0.1: this "
            "machine only). Another address is refused in auth mode none, and in proxy mode "
            "without PILOTGATE_TRUSTED_PROXY (docs/auth.md).",
            show_default=False,
        ),
    ] = None,
    headless: Annotated[bool, typer.Option(help="Do not open a browser.")] = True,
    api_port: Annotated[
        int | None,
        typer.Option(
            "--api-port",
            help="Also run the HTTP API on 127.0.0.1:PORT (`make run` uses 8502); both stop "
            "together.",
            min=1,
            max=65535,
        ),
    ] = None,
) -> None:
    """Run the dashboard (Streamlit) on http://127.0.0.1:PORT (this machine only)."""
    from metrics.settings import REPO_ROOT, get_settings

    address = (address if address is not None else get_settings().server_address).strip()
    if not address:
        _fail("--address is empty: give an address such as 127.0.0.1", code=2)
    refusal = _serve_refusal(address)
    if refusal is not None:
        _fail(refusal, code=2)
    env = dict(os.environ)
    if _state["database_url"]:
        env["PILOTGATE_DATABASE_URL"] = _state["database_url"]
    if api_port is not None:
        raise SystemExit(_serve_with_api(port, address, headless, api_port, env))
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(REPO_ROOT / "streamlit_app.py"),
        "--server.address",
        address,
        "--server.port",
        str(port),
        "--server.headless",
        str(headless).lower(),
    ]
    raise SystemExit(subprocess.call(cmd, env=env))


def _serve_with_api(port: int, address: str, headless: bool, api_port: int, env: dict) -> int:
    """The dashboard and the API as two child processes; when either ends, or on Ctrl-C
    or SIGTERM, both are stopped (each runs in its own process group, so Streamlit and
    uvicorn under them stop too). Returns the exit code."""
    import signal
    import time

    def _terminate(signum, frame):  # SIGTERM (systemd, kill): stop like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    api_cmd = [sys.executable, "-m", "metrics.cli", "api", "--port", str(api_port)]
    dash_cmd = [sys.executable, "-m", "metrics.cli", "serve", "--port", str(port)]
    dash_cmd += ["--address", address]
    if not headless:
        dash_cmd.append("--no-headless")
    procs = [subprocess.Popen(cmd, env=env, start_new_session=True) for cmd in (api_cmd, dash_cmd)]
    code = 0
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        code = next(p.returncode for p in procs if p.returncode is not None)
    except KeyboardInterrupt:
        code = 130
    finally:
        _stop_groups(procs, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _stop_groups([p], signal.SIGKILL)
                p.wait()
    return code


def _stop_groups(procs: list, sig: int) -> None:
    """Send ``sig`` to each child's whole process group (the child and what it started)."""
    import contextlib

    for p in procs:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
            os.killpg(p.pid, sig)


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8502,
) -> None:
    """Run the HTTP API (docs/api.md) on http://HOST:PORT/api/v1 (docs at /api/v1/docs)."""
    from metrics.exposure import listen_refusal
    from metrics.settings import get_settings

    settings = get_settings()
    trusted_proxy = getattr(settings, "trusted_proxy", None)
    refusal = listen_refusal(
        host, door="api", auth_mode=settings.auth_mode, trusted_proxy=trusted_proxy
    )
    if refusal:
        _fail(refusal)
    import uvicorn

    from metrics.api import create_app

    typer.echo(f"PilotGate API on http://{host}:{port}/api/v1 (docs: /api/v1/docs)", err=True)
    uvicorn.run(
        create_app(_engine(), settings, schedule_alerts=True),
        host=host,
        port=port,
        proxy_headers=bool(trusted_proxy),
        forwarded_allow_ips=trusted_proxy or None,
        log_level="info",
    )


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="The token's name, e.g. acme-nightly.")],
    role: Annotated[str, typer.Option("--role", help="editor (push and read) or viewer.")],
    pilot: Annotated[
        list[str] | None,
        typer.Option("--pilot", help="Limit the token to this pilot (repeat for several)."),
    ] = None,
) -> None:
    """Create an API token; the token itself is the last line of stdout, shown only once."""
    from pydantic import ValidationError

    from metrics import store
    from metrics.db import session_scope
    from metrics.errors import StoreError
    from metrics.models import ApiTokenCreate

    try:
        token_in = ApiTokenCreate(name=name, role=role.strip().lower(), pilots=pilot or [])
    except ValidationError as exc:
        _fail(store.validation_message(exc))
    try:
        with session_scope(_engine()) as s:
            secret = store.create_api_token(session=s, actor=_actor(), token_in=token_in)
    except StoreError as exc:
        _fail(str(exc))
    scope = ", ".join(token_in.pilots) if token_in.pilots else "every pilot"
    typer.echo(f"created API token {token_in.name} ({token_in.role.value}; {scope})")
    typer.echo("copy it now: it is shown only this once and stored only as a hash")
    typer.echo(secret)


@tokens_app.command("list")
def tokens_list() -> None:
    """List API tokens (tab-separated: name, role, pilots, created, last used, revoked)."""
    from metrics import store
    from metrics.db import session_scope

    with session_scope(_engine()) as s:
        frame = store.api_tokens_frame(s)
    if frame.empty:
        typer.echo("no API tokens yet: `pilotgate tokens create NAME --role editor`")
        return

    def when(t) -> str:
        return "" if t is None or t != t else t.strftime("%Y-%m-%dT%H:%M:%SZ")  # NaT != NaT

    typer.echo("name\trole\tpilots\tcreated_at\tlast_used_at\trevoked_at")
    for r in frame.itertuples(index=False):
        typer.echo(
            f"{r.name}\t{r.role}\t{r.pilots}\t{when(r.created_at)}\t{when(r.last_used_at)}"
            f"\t{when(r.revoked_at)}"
        )


@tokens_app.command("revoke")
def tokens_revoke(name: Annotated[str, typer.Argument(help="The token's name.")]) -> None:
    """Revoke an API token: every later request with it is refused (401)."""
    from metrics import store
    from metrics.db import session_scope
    from metrics.errors import StoreError

    try:
        with session_scope(_engine()) as s:
            revoked = store.revoke_api_token(session=s, actor=_actor(), name=name)
    except StoreError as exc:
        _fail(str(exc))
    typer.echo(f"revoked {name.strip()}" if revoked else f"{name.strip()} was revoked already")


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


@webhooks_app.command("add")
def webhooks_add(
    url: Annotated[str, typer.Argument(help="The endpoint: http(s)://host/path.")],
    secret: Annotated[
        str | None,
        typer.Option("--secret", help="whsec_<base64> signing secret (default: generated)."),
    ] = None,
    event: Annotated[
        list[str] | None,
        typer.Option("--event", help="Event type to send (repeat; default: every type)."),
    ] = None,
) -> None:
    """Subscribe an endpoint; a generated secret is printed once (last line of stdout)."""
    from metrics import alerts
    from metrics.db import session_scope
    from metrics.errors import StoreError

    try:
        with session_scope(_engine()) as s:
            hook_id, used = alerts.add_webhook(
                session=s, actor=_actor(), url=url, secret=secret, event_types=event or []
            )
    except StoreError as exc:
        _fail(str(exc))
    types = ", ".join(event) if event else "every event type"
    typer.echo(f"webhook {hook_id}: {url.strip()} ({types})")
    if secret is None:
        typer.echo("signing secret (shown once; give it to the receiver):")
        typer.echo(used)


@webhooks_app.command("list")
def webhooks_list() -> None:
    """List endpoints (tab-separated: id, url, events, delivered, pending, last result)."""
    from metrics import alerts
    from metrics.db import session_scope

    with session_scope(_engine()) as s:
        frame = alerts.webhooks_frame(s)
    if frame.empty:
        typer.echo("no webhooks yet: add one with `pilotgate webhooks add URL`")
        return
    typer.echo("id\turl\tevents\tdelivered\tpending\tlast_result")
    for r in frame.to_dict("records"):
        if r["last_attempt_at"] is None or pd_isna(r["last_attempt_at"]):
            last = "never tried"
        else:
            last = r["last_error"] or f"{int(r['last_status_code'])} OK"
        typer.echo(
            f"{r['webhook_id']}\t{r['url']}\t{r['event_types'] or 'all'}\t"
            f"{r['delivered']}\t{r['pending']}\t{last}"
        )


def pd_isna(x) -> bool:
    import pandas as pd

    return bool(pd.isna(x))


@webhooks_app.command("remove")
def webhooks_remove(
    webhook_id: Annotated[int, typer.Argument(help="The id shown by `webhooks list`.")],
) -> None:
    """Unsubscribe an endpoint (its pending deliveries are cancelled; history kept)."""
    from metrics import alerts
    from metrics.db import session_scope
    from metrics.errors import StoreError

    try:
        with session_scope(_engine()) as s:
            url = alerts.remove_webhook(session=s, actor=_actor(), webhook_id=webhook_id)
    except StoreError as exc:
        _fail(str(exc))
    typer.echo(f"removed webhook {webhook_id} ({url})")


@alerts_app.command("run")
def alerts_run(
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Judge as of this date (YYYY-MM-DD; default today)."),
    ] = None,
) -> None:
    """Find alert events, deliver each new one once to every subscribed webhook, retry
    failed deliveries whose backoff has passed, and send the weekly digest when due."""
    from metrics import alerts

    day = _parse_date(as_of, "--as-of")
    rep = alerts.run_alerts(engine=_engine(), as_of=day)
    for o in rep.deliveries:
        if o.status == "failed":
            typer.echo(f"warning: {o.url}: event {o.event_id} not delivered: {o.error}", err=True)
    deferred = [o for o in rep.deliveries if o.status == "deferred"]
    if deferred:
        typer.echo(
            f"warning: {len(deferred)} deliveries to unreachable endpoints wait for a later run",
            err=True,
        )
    typer.echo(rep.summary_line())
    typer.echo(rep.digest)


def main() -> None:
    """Console entry point: run the app, turning user-facing errors into one line.

    Usage errors are printed by Typer/Click (exit 2); :class:`CliError`, a refused
    write (:class:`metrics.errors.StoreError`, e.g. a role refusal) and database errors
    become ``error: ...`` on stderr with exit 1 or 2.
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
    """One line on stderr and exit 1 (a refused write) or 2 (a database or
    configuration error); returns (the caller re-raises) for anything else. Imports the
    error types only now (start-up stays short)."""
    import sqlalchemy as sa
    from pydantic import ValidationError

    from metrics.db import DatabaseError, failure_reason
    from metrics.errors import StoreError

    if isinstance(exc, StoreError):  # a refused write, e.g. a viewer running `seed demo`
        typer.echo(f"error: {' '.join(str(exc).split())}", err=True)
        raise SystemExit(1) from None
    if isinstance(exc, sa.exc.IntegrityError):  # a concurrent write of the same name or week
        reason = " ".join(str(exc.orig).split())
        typer.echo(
            "error: the database refused the write, nothing written (someone else wrote "
            f"the same thing at the same moment; check and try again): {reason}",
            err=True,
        )
        raise SystemExit(1) from None
    if isinstance(exc, DatabaseError):
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    if isinstance(exc, ValidationError):  # a PILOTGATE_* environment variable is invalid
        from metrics.errors import validation_message

        typer.echo(f"error: configuration: {validation_message(exc)}", err=True)
        raise SystemExit(2) from None
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InternalError):  # read-only, full
        from metrics.settings import get_settings

        reason = failure_reason(exc, _state["database_url"] or get_settings().database_url)
        typer.echo(f"error: nothing written: {reason}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
