"""Safe by default (issue 9): who can reach PilotGate, what its messages reveal, and how
it fails when the database or the disk does.

- listening: 127.0.0.1 by default; a non-loopback address refused in auth mode none,
  and in proxy mode without a stated trusted proxy (``pilotgate serve`` and the
  dashboard itself);
- the OIDC sign-in cookie secret: missing, placeholder or weak refused;
- the last admin on SQLite and PostgreSQL under a threaded and a two-process race;
- database URLs in messages: one ``safe_url``, never a password;
- the real cause (read-only, disk full) instead of "busy, try again";
- partial files (exports, backups) never under the final name;
- a PostgreSQL host that never answers: a bounded wait, one line.
"""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from metrics import users
from metrics.db import make_engine
from metrics.errors import StoreError
from metrics.models import AppUser
from metrics.settings import get_settings
from tests.factories import make_user

# ============================================================ item 2: the last admin


def _widen_the_race(engine: sa.Engine, pause_s: float = 0.15) -> None:
    """Pause after every read of ``app_user``, so two concurrent ``set_role`` calls
    both read before either writes unless the write lock is taken before reading (the
    pause only widens a window that exists without it; no timing is asserted)."""

    @sa.event.listens_for(engine, "after_cursor_execute")
    def _pause(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "app_user" in statement:
            time.sleep(pause_s)


def _two_admins(engine: sa.Engine) -> None:
    with Session(engine) as s:
        make_user(s, "ada", role="admin", bootstrap=True, actor="ada")
        make_user(s, "bob", role="admin", actor="ada")
        s.commit()


def _demote(url: str, actor: str, target: str, barrier, results) -> None:
    """One admin demoting the other to editor, in its own engine and session (used by
    threads and by spawned processes); puts ("ok" | "refused: ...") into ``results``."""
    engine = make_engine(url)
    _widen_the_race(engine)
    try:
        barrier.wait(timeout=30)
        with Session(engine) as s:
            users.set_role(session=s, actor=actor, name=target, role="editor")
            s.commit()
        results.put((actor, "ok"))
    except StoreError as exc:
        results.put((actor, f"refused: {exc}"))
    except Exception as exc:  # a lock timeout would also leave the admins as they were
        results.put((actor, f"error: {type(exc).__name__}: {exc}"))
    finally:
        engine.dispose()


def _admins(engine: sa.Engine) -> list[str]:
    with Session(engine) as s:
        return sorted(
            s.execute(sa.select(AppUser.name).where(AppUser.role == "admin")).scalars().all()
        )


def _outcomes(results, n: int = 2) -> dict[str, str]:
    return dict(results.get(timeout=60) for _ in range(n))


def _check_one_admin_left(engine: sa.Engine, outcomes: dict[str, str]) -> None:
    left = _admins(engine)
    assert len(left) == 1, (left, outcomes)
    winner = left[0]  # the one who demoted the other first
    loser = "bob" if winner == "ada" else "ada"
    assert outcomes[winner] == "ok"
    # the second demotion sees the first: its actor is no admin any more
    assert outcomes[loser].startswith("refused: "), outcomes
    assert "changing a role needs the admin role" in outcomes[loser]


def _url(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


@pytest.mark.parametrize("trial", range(3))
def test_two_admins_demoting_each_other_in_threads_leave_one_admin(engine, trial):
    import queue

    _two_admins(engine)
    barrier, results = threading.Barrier(2), queue.Queue()
    threads = [
        threading.Thread(target=_demote, args=(_url(engine), a, t, barrier, results))
        for a, t in (("ada", "bob"), ("bob", "ada"))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    _check_one_admin_left(engine, _outcomes(results))


def test_two_admins_demoting_each_other_in_two_processes_leave_one_admin(engine):
    _two_admins(engine)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_demote, args=(_url(engine), a, t, barrier, results))
        for a, t in (("ada", "bob"), ("bob", "ada"))
    ]
    for p in procs:
        p.start()
    outcomes = _outcomes(results)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    _check_one_admin_left(engine, outcomes)


def test_set_role_inside_a_session_that_already_wrote(sqlite_engine):
    """The lock is also taken when the session's transaction is already open."""
    _two_admins(sqlite_engine)
    with Session(sqlite_engine) as s:
        make_user(s, "cleo", role="viewer", actor="ada")  # opens the write transaction
        assert users.set_role(session=s, actor="ada", name="bob", role="editor")
        with pytest.raises(StoreError, match="ada is the last admin"):
            users.set_role(session=s, actor="ada", name="ada", role="viewer")
        s.commit()
    assert _admins(sqlite_engine) == ["ada"]


def _settings_reset():
    get_settings.cache_clear()


# ============================================================ item 1: listening

STRONG_SECRET = "3f9a0c7e5b1d8f2a6c4e0b9d7f3a1c5e8b2d6f0a4c9e7b1d3f5a8c0e2b4d6f9a"


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """Run ``pilotgate ARGS`` in-process with a scratch SQLite database; ``serve``
    never starts Streamlit (its command line is recorded in ``started``).
    Returns (exit code, stdout, stderr, started)."""
    import sys

    from metrics import cli as cli_module

    monkeypatch.setenv("PILOTGATE_DATABASE_URL", f"sqlite:///{tmp_path / 'doors.db'}")
    for var in ("AUTH_MODE", "PROXY_USER_HEADER", "TRUSTED_PROXY", "SERVER_ADDRESS"):
        monkeypatch.delenv(f"PILOTGATE_{var}", raising=False)
    get_settings.cache_clear()
    started: list[list[str]] = []

    def fake_call(cmd, env=None):
        started.append(cmd)
        return 0

    monkeypatch.setattr(cli_module.subprocess, "call", fake_call)

    def _run(*args: str):
        monkeypatch.setattr(sys, "argv", ["pilotgate", *args])
        get_settings.cache_clear()
        try:
            cli_module.main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err, started

    yield _run
    get_settings.cache_clear()


def _address_of(cmd: list[str]) -> str:
    return cmd[cmd.index("--server.address") + 1]


def test_serve_listens_on_loopback_by_default(cli):
    code, _, err, started = cli("serve", "--port", "8599")
    assert code == 0, err
    assert _address_of(started[0]) == "127.0.0.1"
    assert started[0][started[0].index("--server.port") + 1] == "8599"


def test_serve_address_comes_from_the_setting(cli, monkeypatch):
    monkeypatch.setenv("PILOTGATE_SERVER_ADDRESS", "::1")
    code, _, err, started = cli("serve")
    assert code == 0, err
    assert _address_of(started[0]) == "::1"


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "192.168.1.20", "pilotgate.example.com"])
def test_serve_refuses_every_interface_in_mode_none(cli, address):
    code, _, err, started = cli("serve", "--address", address)
    assert code == 2
    assert started == []  # Streamlit never started
    assert err == (
        f"error: refusing to listen on {address}: auth mode 'none' makes everyone who "
        "reaches the port an admin; listen on 127.0.0.1, or set PILOTGATE_AUTH_MODE=oidc or "
        "proxy (docs/auth.md)\n"
    )


def test_serve_refuses_proxy_mode_without_a_trusted_proxy(cli, monkeypatch):
    monkeypatch.setenv("PILOTGATE_AUTH_MODE", "proxy")
    monkeypatch.setenv("PILOTGATE_PROXY_USER_HEADER", "X-Forwarded-Email")
    code, _, err, started = cli("serve", "--address", "0.0.0.0")
    assert code == 2 and started == []
    assert err.startswith("error: refusing to listen on 0.0.0.0: auth mode 'proxy' trusts")
    assert "PILOTGATE_TRUSTED_PROXY" in err and len(err.splitlines()) == 1
    # stating the proxy makes the same address allowed
    monkeypatch.setenv("PILOTGATE_TRUSTED_PROXY", "10.0.0.5")
    code, _, err, started = cli("serve", "--address", "0.0.0.0")
    assert code == 0, err
    assert _address_of(started[0]) == "0.0.0.0"


def test_make_run_and_the_streamlit_config_bind_loopback():
    from metrics.settings import REPO_ROOT

    run_recipe = (REPO_ROOT / "Makefile").read_text().split("\nrun:", 1)[1].split("\n\n")[0]
    assert "pilotgate serve --address 127.0.0.1 --port $(PORT)" in run_recipe
    import tomllib

    config = tomllib.loads((REPO_ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"


def test_listen_rule_table():
    from metrics.exposure import effective_address, listen_refusal

    def ok(address, door="dashboard", mode="none", proxy=None):
        return listen_refusal(address, door=door, auth_mode=mode, trusted_proxy=proxy) is None

    assert effective_address(None) == "0.0.0.0" and effective_address(" ") == "0.0.0.0"
    for loop in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "unix:///run/pg.sock"):
        assert ok(loop) and ok(loop, door="api")
    assert not ok("") and not ok("0.0.0.0") and not ok("10.1.2.3")
    assert ok("0.0.0.0", mode="oidc")
    assert not ok("0.0.0.0", mode="proxy") and ok("0.0.0.0", mode="proxy", proxy="10.0.0.5")
    assert not ok("0.0.0.0", door="api", mode="oidc")
    assert ok("0.0.0.0", door="api", mode="oidc", proxy="10.0.0.5")


@pytest.fixture
def app_env(tmp_path, monkeypatch):
    """A migrated scratch database for the dashboard; Streamlit options restored."""
    from streamlit import config as st_config

    from metrics.db import init_db
    from tests.apptest_helpers import clear_caches

    url = f"sqlite:///{tmp_path / 'app.db'}"
    engine = make_engine(url)
    init_db(engine)
    engine.dispose()
    monkeypatch.setenv("PILOTGATE_DATABASE_URL", url)
    for var in ("AUTH_MODE", "PROXY_USER_HEADER", "TRUSTED_PROXY", "ACTOR"):
        monkeypatch.delenv(f"PILOTGATE_{var}", raising=False)
    before = st_config.get_option("server.address")
    clear_caches()
    yield st_config
    st_config.set_option("server.address", before)
    clear_caches()


def _run_app(secrets: dict | None = None, user: dict | None = None):
    from streamlit.testing.v1 import AppTest

    from tests.apptest_helpers import APP

    at = AppTest.from_file(APP, default_timeout=30)
    if secrets is not None:
        at.secrets["auth"] = secrets
    if user is not None:
        at.user = user
    at.run(timeout=30)
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_dashboard_started_directly_on_every_interface_serves_nothing(app_env):
    """`streamlit run streamlit_app.py --server.address 0.0.0.0` in mode none."""
    app_env.set_option("server.address", "0.0.0.0")
    at = _run_app()
    assert [e.value for e in at.error] == [
        "PilotGate is not serving: refusing to listen on 0.0.0.0: auth mode 'none' makes "
        "everyone who reaches the port an admin; listen on 127.0.0.1, or set "
        "PILOTGATE_AUTH_MODE=oidc or proxy (docs/auth.md)."
    ]
    assert not at.dataframe and not at.sidebar.caption  # no page ran, nobody signed in


def test_dashboard_on_loopback_serves(app_env):
    app_env.set_option("server.address", "127.0.0.1")
    at = _run_app()
    assert not at.error
    assert "Signed in as local" in at.sidebar.caption[0].value


# ============================================================ item 6: cookie secret

OIDC_SECRETS = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "client_id": "pilotgate",
    "client_secret": "a-client-secret-for-tests-only",
    "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
}


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        (None, "no sign-in cookie secret"),
        ("", "no sign-in cookie secret"),
        ("replace-with-64-random-hex-characters", "the example's placeholder"),
        ("0123456789abcdef0123456789abcdef", "too weak (about 128 bits of entropy"),
        ("a" * 64, "too weak (about 0 bits of entropy"),
        ("cookie-secret-never-logged-0815", "too weak (about 186 bits of entropy"),
    ],
)
def test_cookie_secret_rule(secret, reason):
    from metrics.exposure import cookie_secret_problem, example_placeholders

    problem = cookie_secret_problem(
        secret, file=".streamlit/secrets.toml", placeholders=example_placeholders()
    )
    assert problem is not None and reason in problem
    assert problem.startswith("refusing to start in oidc mode: ")
    assert "set [auth] cookie_secret in .streamlit/secrets.toml" in problem
    assert "secrets.token_hex(32)" in problem


def test_cookie_secret_rule_accepts_32_random_bytes():
    import secrets as pysecrets

    from metrics.exposure import cookie_secret_problem, example_placeholders

    for secret in (STRONG_SECRET, pysecrets.token_hex(32), pysecrets.token_urlsafe(32)):
        assert cookie_secret_problem(secret, file="x", placeholders=example_placeholders()) is None


def test_every_value_of_the_example_secrets_file_is_a_placeholder():
    from metrics.exposure import example_placeholders

    assert "replace-with-64-random-hex-characters" in example_placeholders()


def _oidc_files(tmp_path, monkeypatch, cookie_secret: str | None):
    """Run from a folder whose .streamlit/secrets.toml holds ``cookie_secret``; the
    user's own ~/.streamlit is out of the way."""
    from metrics import settings as settings_module

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    work = tmp_path / "work"
    (work / ".streamlit").mkdir(parents=True)
    lines = ["[auth]"] + [f'{k} = "{v}"' for k, v in OIDC_SECRETS.items()]
    if cookie_secret is not None:
        lines.append(f'cookie_secret = "{cookie_secret}"')
    (work / ".streamlit" / "secrets.toml").write_text("\n".join(lines) + "\n")
    monkeypatch.chdir(work)
    monkeypatch.setattr(settings_module, "REPO_ROOT", tmp_path / "app")  # no secrets beside it
    monkeypatch.setenv("PILOTGATE_AUTH_MODE", "oidc")
    return work / ".streamlit" / "secrets.toml"


@pytest.mark.parametrize(
    "secret", [None, "replace-with-64-random-hex-characters", "short-secret-1234"]
)
def test_serve_in_oidc_mode_refuses_a_weak_cookie_secret(cli, tmp_path, monkeypatch, secret):
    path = _oidc_files(tmp_path, monkeypatch, secret)
    code, _, err, started = cli("serve")
    assert code == 2 and started == []
    assert err.startswith("error: refusing to start in oidc mode: ")
    assert f"set [auth] cookie_secret in {path} to a new random value" in err
    assert len(err.splitlines()) == 1
    if secret:
        assert secret not in err  # the message never repeats the secret


def test_serve_in_oidc_mode_starts_with_a_strong_cookie_secret(cli, tmp_path, monkeypatch):
    _oidc_files(tmp_path, monkeypatch, STRONG_SECRET)
    code, _, err, started = cli("serve")
    assert code == 0, err
    assert len(started) == 1


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ("replace-with-64-random-hex-characters", "the example's placeholder"),
        ("a-cookie-secret-for-tests-only", "too weak"),
        (None, "no sign-in cookie secret"),
    ],
)
def test_dashboard_in_oidc_mode_refuses_a_weak_cookie_secret(app_env, monkeypatch, secret, reason):
    monkeypatch.setenv("PILOTGATE_AUTH_MODE", "oidc")
    get_settings.cache_clear()
    secrets = dict(OIDC_SECRETS) | ({"cookie_secret": secret} if secret else {})
    at = _run_app(secrets=secrets, user={"is_logged_in": False})
    assert len(at.error) == 1
    text = at.error[0].value
    assert text.startswith("PilotGate is not serving: refusing to start in oidc mode: ")
    assert reason in text and "set [auth] cookie_secret in" in text
    assert not at.button  # no Log in button


def test_dashboard_in_oidc_mode_with_a_strong_secret_offers_log_in(app_env, monkeypatch):
    monkeypatch.setenv("PILOTGATE_AUTH_MODE", "oidc")
    get_settings.cache_clear()
    at = _run_app(
        secrets=dict(OIDC_SECRETS, cookie_secret=STRONG_SECRET), user={"is_logged_in": False}
    )
    assert not at.error
    assert [b.label for b in at.button] == ["Log in"]


# ============================================================ item 3: secrets in messages

#: Every piece of every secret below; none may appear in any output.
SECRET_PARTS = ("Qz9pass", "Qz9left", "Qz9right", "Qz9query", "Qz9ssl", "Qz9colon")


def _url_variants(host: str = "127.0.0.1", port: int = 1) -> dict[str, str]:
    """Database URLs carrying secrets in every way a person writes them; ``port`` 1
    refuses connections at once."""
    base = f"postgresql+psycopg://pilot:Qz9pass@{host}:{port}/pilotgate"
    return {
        "password": base,
        "query-password": f"postgresql+psycopg://pilot@{host}:{port}/pilotgate?password=Qz9query",
        "sslpassword": f"{base}?sslmode=require&sslpassword=Qz9ssl&password=Qz9query",
        "unencoded-at": f"postgresql+psycopg://pilot:Qz9left@Qz9right@{host}:{port}/pilotgate",
        "at-and-colon": f"postgresql+psycopg://pilot:Qz9left@Qz9colon:x@{host}:{port}/pilotgate",
        "bad-port": f"postgresql+psycopg://pilot:Qz9pass@{host}:port{port}/pilotgate",
        "sqlite-query": "sqlite:///{tmp}/x.db?password=Qz9query",
    }


def _assert_no_secret(text: str) -> None:
    for part in SECRET_PARTS:
        assert part not in text, text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://u:Qz9pass@h:5432/d", "postgresql+psycopg://u:***@h:5432/d"),
        (
            "postgresql+psycopg://u@h/d?password=Qz9query&sslmode=require",
            "postgresql+psycopg://u@h/d?password=***&sslmode=require",
        ),
        ("postgresql+psycopg://u:Qz9left@Qz9right@h/d", "postgresql+psycopg://u:***@h/d"),
        ("postgresql+psycopg://u:Qz9left@Qz9right/x@h/d", "postgresql+psycopg://u:***@h/d"),
        ("postgresql+psycopg://u:Qz9pass@h:port/d", "postgresql+psycopg://u:***@h:port/d"),
        (
            "postgresql://u@h/d?passfile=/Qz9pass/.pgpass&sslpassword=Qz9ssl&Qz9left",
            "postgresql://u@h/d?passfile=***&sslpassword=***",
        ),
        ("sqlite:////data/pilotgate.db", "sqlite:////data/pilotgate.db"),
        ("not a url Qz9pass", "<unparseable database URL>"),
    ],
)
def test_safe_url_shapes(url, shown):
    from metrics.db import safe_url

    assert safe_url(url) == shown
    assert safe_url(sa.make_url("postgresql+psycopg://u@h/d?password=x")) == (
        "postgresql+psycopg://u@h/d?password=***"
    )


@pytest.mark.parametrize("variant", list(_url_variants()))
def test_cli_init_never_prints_a_secret(cli, tmp_path, variant):
    url = _url_variants()[variant].replace("{tmp}", str(tmp_path))
    code, out, err, _ = cli("--database-url", url, "init")
    _assert_no_secret(out + err)
    assert "Traceback" not in err
    if variant == "sqlite-query":
        assert code == 0
        assert out.startswith(f"database sqlite:///{tmp_path}/x.db?password=*** at schema")
    else:
        assert code == 2 and len(err.splitlines()) == 1, err
        assert "pilot:***@127.0.0.1" in err or "pilot@127.0.0.1" in err


@pytest.mark.skipif(not __import__("os").environ.get("PILOTGATE_TEST_POSTGRES_URL"), reason="PG")
def test_cli_init_on_postgresql_masks_a_query_password(cli):
    """The line `pilotgate init` prints on every start."""
    import os

    url = sa.make_url(os.environ["PILOTGATE_TEST_POSTGRES_URL"])
    schema = f"pilotgate_doors_{os.getpid()}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
    try:
        with_secret = url.update_query_dict(
            {"options": f"-csearch_path={schema}", "password": "Qz9query"}
        ).render_as_string(hide_password=False)
        code, out, err, _ = cli("--database-url", with_secret, "init")
        assert code == 0, err
        assert "password=***" in out and "at schema revision 0005" in out
        _assert_no_secret(out + err)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def a_backup(tmp_path):
    """A real SQLite backup (file and manifest) to restore and check."""
    from scripts.backup_tools import backup

    src = tmp_path / "src.db"
    engine = make_engine(f"sqlite:///{src}")
    from metrics.db import init_db

    init_db(engine)
    engine.dispose()
    path, _ = backup(f"sqlite:///{src}", tmp_path / "src-backup.db")
    return path


@pytest.mark.parametrize("variant", list(_url_variants()))
@pytest.mark.parametrize("script", ["backup", "restore", "check"])
def test_backup_scripts_never_print_a_secret(tmp_path, capsys, a_backup, variant, script):
    from scripts import backup_tools

    url = _url_variants()[variant].replace("{tmp}", str(tmp_path))
    if script == "backup":
        code = backup_tools.main_backup(["--database-url", url, str(tmp_path / "out.dump")])
    elif script == "restore":
        code = backup_tools.main_restore([str(a_backup), "--database-url", url])
    else:
        code = backup_tools.main_check([str(a_backup), "--into", url])
    out, err = capsys.readouterr()
    _assert_no_secret(out + err)
    assert "Traceback" not in err
    if variant != "sqlite-query":
        assert code == 1 and len(err.splitlines()) == 1, (out, err)


@pytest.mark.parametrize("variant", [v for v in _url_variants() if v != "sqlite-query"])
def test_dashboard_database_error_never_shows_a_secret(app_env, monkeypatch, variant):
    monkeypatch.setenv("PILOTGATE_DATABASE_URL", _url_variants()[variant])
    get_settings.cache_clear()
    at = _run_app()
    assert len(at.error) == 1
    text = at.error[0].value
    assert text.startswith("The database cannot be opened: cannot ")
    _assert_no_secret(text)


def test_scrub_removes_password_and_secret_parameters():
    from metrics.db import scrub

    url = "postgresql+psycopg://u:Qz9pass@h/d?sslpassword=Qz9ssl"
    assert scrub("auth failed for Qz9pass and Qz9ssl", url) == "auth failed for *** and ***"


# ============================================================ item 8 (part): one line


def test_init_with_a_bad_port_is_one_line(cli):
    code, _, err, _ = cli("--database-url", "postgresql+psycopg://u@db.internal:54x2/d", "init")
    assert code == 2
    assert err == (
        "error: cannot parse database URL postgresql+psycopg://u@db.internal:54x2/d: the port "
        "is not a number (a password with @, :, / or ? must be percent-encoded, e.g. @ as %40)\n"
    )


def test_init_with_a_port_out_of_range_is_one_line(cli):
    code, _, err, _ = cli("--database-url", "postgresql+psycopg://u@db.internal:99999/d", "init")
    assert code == 2
    assert err == (
        "error: cannot use database URL postgresql+psycopg://u@db.internal:99999/d: port "
        "99999 is not from 1 to 65535\n"
    )


def test_dashboard_with_a_bad_port_is_one_line(app_env, monkeypatch):
    monkeypatch.setenv("PILOTGATE_DATABASE_URL", "postgresql+psycopg://u:pw@h:54x2/d")
    get_settings.cache_clear()
    at = _run_app()
    assert [e.value for e in at.error] == [
        "The database cannot be opened: cannot parse database URL "
        "postgresql+psycopg://u:***@h:54x2/d: the port is not a number (a password with @, "
        ":, / or ? must be percent-encoded, e.g. @ as %40)"
    ]


def _read_only_folder(tmp_path):
    """A folder nobody may write to: /sys (read-only for everyone, root included), or
    a chmod 555 folder when not running as root."""
    import os

    if os.geteuid() != 0:
        folder = tmp_path / "ro"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    from pathlib import Path

    if not Path("/sys").is_dir():  # sysfs: nobody can create files in it
        pytest.skip("no read-only folder available")
    return Path("/sys")


def test_init_in_a_read_only_folder_is_one_line(cli, tmp_path):
    folder = _read_only_folder(tmp_path)
    code, _, err, _ = cli("--database-url", f"sqlite:///{folder}/pilotgate.db", "init")
    assert code == 2
    assert err.startswith(
        f"error: cannot open database sqlite:///{folder}/pilotgate.db: cannot write "
        f"{folder}/pilotgate.db.migrate-lock: "
    )
    assert err.endswith("(the database's folder must be writable)\n")
    assert len(err.splitlines()) == 1


def test_dashboard_in_a_read_only_folder_is_one_line(app_env, monkeypatch, tmp_path):
    folder = _read_only_folder(tmp_path)
    monkeypatch.setenv("PILOTGATE_DATABASE_URL", f"sqlite:///{folder}/pilotgate.db")
    get_settings.cache_clear()
    at = _run_app()
    assert len(at.error) == 1
    assert at.error[0].value.startswith(
        f"The database cannot be opened: cannot open database sqlite:///{folder}/pilotgate.db: "
        f"cannot write {folder}/pilotgate.db.migrate-lock"
    )


# ============================================================ item 9: the real cause


def _sqlite_error(message: str) -> sa.exc.OperationalError:
    import sqlite3

    return sa.exc.OperationalError("INSERT ...", {}, sqlite3.OperationalError(message))


@pytest.mark.parametrize(
    ("exc", "cause"),
    [
        (_sqlite_error("attempt to write a readonly database"), "the database is read-only"),
        (_sqlite_error("database or disk is full"), "the disk holding the database is full"),
        (_sqlite_error("database is locked"), "the database is busy"),
        (OSError(28, "No space left on device"), "the disk holding the database is full"),
        (OSError(30, "Read-only file system"), "the database is read-only"),
        (OSError(13, "Permission denied"), "the database is read-only"),
        (_sqlite_error("unable to open database file"), "the database file cannot be opened"),
    ],
)
def test_failure_reason_names_the_cause(exc, cause):
    from metrics.db import failure_reason

    text = failure_reason(exc, "sqlite:///x.db")
    assert text.startswith(cause)
    if "busy" not in cause:
        assert "busy" not in text and "try again in a moment" not in text


def test_failure_reason_knows_postgresql_disk_full():
    from metrics.db import failure_reason

    class DiskFull(Exception):
        sqlstate = "53100"

    exc = sa.exc.OperationalError("INSERT", {}, DiskFull("could not extend file"))
    assert failure_reason(exc, "postgresql://u@h/d").startswith(
        "the disk holding the database is full: free space, then try again (could not extend"
    )


def _make_read_only(engine: sa.Engine):
    """Every connection ``engine`` hands out refuses writes as a read-only database
    does (SQLite ``query_only``; PostgreSQL read-only transactions)."""
    if engine.dialect.name == "sqlite":
        sql = "PRAGMA query_only = ON"
    else:
        sql = "SET default_transaction_read_only = on"

    @sa.event.listens_for(engine, "checkout")
    def _ro(dbapi_conn, record, proxy):
        cur = dbapi_conn.cursor()
        cur.execute(sql)
        cur.close()
        if engine.dialect.name != "sqlite":
            dbapi_conn.commit()

    engine.dispose()  # new connections from now on


def _a_pilot_file(weeks: int = 3) -> str:
    from datetime import date, timedelta

    return "pilot,metric,week,value\n" + "".join(
        f"Helpdesk triage assistant,resolution_time,{date(2010, 1, 4) + timedelta(weeks=i)},5\n"
        for i in range(weeks)
    )


def test_import_into_a_read_only_database_says_read_only(engine):
    from metrics import csvio
    from metrics.db import session_scope
    from tests.factories import make_pilot

    with session_scope(engine) as s:
        make_pilot(s)
    _make_read_only(engine)
    with session_scope(engine) as s:
        report = csvio.import_measurements(session=s, actor="t", data=_a_pilot_file(), source="a")
    assert len(report.errors) == 1
    reason = report.errors[0].reason
    assert reason.startswith(
        "nothing written: the database is read-only: make its file and folder writable ("
    )
    assert "busy" not in reason


def test_import_onto_a_full_disk_says_disk_full(sqlite_engine):
    from metrics import csvio
    from metrics.db import session_scope
    from tests.factories import make_pilot

    with session_scope(sqlite_engine) as s:
        make_pilot(s)

    @sa.event.listens_for(sqlite_engine, "checkout")
    def _full(dbapi_conn, record, proxy):  # the file may not grow by a single page
        pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
        dbapi_conn.execute(f"PRAGMA max_page_count = {pages}")

    sqlite_engine.dispose()
    with session_scope(sqlite_engine) as s:
        report = csvio.import_measurements(
            session=s, actor="t", data=_a_pilot_file(400), source="a", allow_distant_weeks=True
        )
    assert [e.reason for e in report.errors] == [
        "nothing written: the disk holding the database is full: free space, then try again "
        "(database or disk is full)"
    ]


def test_cli_write_to_a_read_only_database_says_read_only(cli, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'doors.db'}"
    assert cli("--database-url", url, "init")[0] == 0

    @sa.event.listens_for(sa.engine.Engine, "connect")
    def _ro(dbapi_conn, record):
        dbapi_conn.execute("PRAGMA query_only = ON")

    try:
        code, _, err, _ = cli("--database-url", url, "users", "add", "ada", "--role", "admin")
    finally:
        sa.event.remove(sa.engine.Engine, "connect", _ro)
    assert code == 2
    assert err == (
        "error: nothing written: the database is read-only: make its file and folder "
        "writable (attempt to write a readonly database)\n"
    )


# ============================================================ item 11: connect timeout


def test_init_against_a_host_that_never_answers_fails_in_bounded_time(tmp_path):
    """A socket that accepts TCP connections (the kernel's backlog) and never replies.
    The subprocess timeout guards against a hang; no speed is asserted."""
    import os
    import socket
    import subprocess
    import sys

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    try:
        env = dict(os.environ, PILOTGATE_CONNECT_TIMEOUT_S="1")
        url = f"postgresql+psycopg://pilot:Qz9pass@127.0.0.1:{port}/pilotgate"
        proc = subprocess.run(
            [sys.executable, "-m", "metrics.cli", "--database-url", url, "init"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    finally:
        silent.close()
    assert proc.returncode == 2
    assert proc.stderr == (
        f"error: cannot open database postgresql+psycopg://pilot:***@127.0.0.1:{port}/pilotgate: "
        "connection timeout expired (no answer within 2 s; PILOTGATE_CONNECT_TIMEOUT_S)\n"
    )


def test_connect_timeout_reaches_the_driver(monkeypatch):
    """The setting becomes libpq's connect_timeout (whole seconds, rounded up), unless
    the URL names its own."""
    monkeypatch.setenv("PILOTGATE_CONNECT_TIMEOUT_S", "7.5")
    get_settings.cache_clear()
    seen = []
    try:
        for url in ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d?connect_timeout=3"):
            engine = make_engine(url)

            @sa.event.listens_for(engine, "do_connect")
            def _capture(dialect, record, cargs, cparams):
                seen.append(cparams.get("connect_timeout"))
                raise ConnectionAbortedError("captured")

            with pytest.raises(ConnectionAbortedError):
                engine.connect()
            engine.dispose()
    finally:
        get_settings.cache_clear()
    assert seen == [8, "3"]
    monkeypatch.delenv("PILOTGATE_CONNECT_TIMEOUT_S")
    assert get_settings().connect_timeout_s == 10.0  # the default


# ============================================================ item 10: partial files


@pytest.fixture
def filled_db(tmp_path) -> str:
    """A SQLite database of 800 weekly values (the measurements export is ~50 KB)."""
    from datetime import date

    from metrics.db import init_db, session_scope
    from tests.factories import add_weeks, make_pilot, metric_id

    url = f"sqlite:///{tmp_path / 'filled.db'}"
    engine = make_engine(url)
    init_db(engine)
    with session_scope(engine) as s:
        make_pilot(s)
        mid = metric_id(s, "Helpdesk triage assistant", "resolution_time")
        add_weeks(s, mid, date(1995, 1, 2), [60.0 + i / 8 for i in range(800)])
    engine.dispose()
    return url


def _run_with_file_size_limit(args: list[str], limit: int, cwd):
    """Run ``python -m metrics.cli ARGS`` where no file may grow beyond ``limit`` bytes:
    writes past it fail (EFBIG) as they would on a full disk (Python ignores SIGXFSZ)."""
    import resource
    import subprocess
    import sys

    def _limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "metrics.cli", *args],
        capture_output=True,
        text=True,
        preexec_fn=_limit,
        cwd=cwd,
        timeout=120,
    )


def test_an_export_cut_short_leaves_no_file_under_its_name(filled_db, tmp_path):
    from metrics.settings import REPO_ROOT

    out_dir = tmp_path / "exports"
    out_dir.mkdir()
    target = out_dir / "measurements.csv"
    target.write_text("the previous export\n")
    proc = _run_with_file_size_limit(
        ["--database-url", filled_db, "export", "measurements", "-o", str(target)],
        limit=40_000,  # above SQLite's 32 KB shared-memory file, below the export
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 1, proc.stderr
    assert target.read_text() == "the previous export\n"  # untouched, not cut short
    assert sorted(p.name for p in out_dir.iterdir()) == ["measurements.csv"]  # no leftovers
    assert proc.stderr == f"error: {target}: cannot write: File too large; nothing written\n"


def test_an_export_that_fits_is_written_whole(filled_db, tmp_path):
    from metrics.settings import REPO_ROOT

    target = tmp_path / "m.csv"
    proc = _run_with_file_size_limit(
        ["--database-url", filled_db, "export", "measurements", "-o", str(target)],
        limit=1 << 20,
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    lines = target.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 801  # header + 800 weeks
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


_KILLED_BACKUP = """
import os, signal, sys
sys.path[:0] = [{scripts!r}, {repo!r}]
import backup_tools

real_copy = backup_tools._sqlite_copy

def copy_then_die(src, dst, **kw):
    real_copy(src, dst, **kw)  # the partial file is complete on disk ...
    os.kill(os.getpid(), signal.SIGKILL)  # ... when the process is killed

backup_tools._sqlite_copy = copy_then_die
backup_tools.main_backup(["--database-url", {url!r}, {out!r}])
"""


def test_a_killed_backup_leaves_a_partial_file_the_next_backup_removes(filled_db, tmp_path):
    import subprocess
    import sys

    from metrics.settings import REPO_ROOT
    from scripts import backup_tools

    folder = tmp_path / "backups"
    folder.mkdir()
    script = _KILLED_BACKUP.format(
        scripts=str(REPO_ROOT / "scripts"),
        repo=str(REPO_ROOT),
        url=filled_db,
        out=str(folder / "first.db"),
    )
    proc = subprocess.run([sys.executable, "-c", script], timeout=120, cwd=REPO_ROOT)
    assert proc.returncode == -9
    left = sorted(p.name for p in folder.iterdir())
    assert len(left) == 1 and left[0].startswith(".first.db.partial-"), left  # hidden, stale
    _, manifest = backup_tools.backup(filled_db, folder / "second.db")
    assert sorted(p.name for p in folder.iterdir()) == ["second.db", "second.db.json"]
    assert manifest.tables["measurement"] == 800


def test_partial_files_of_running_processes_are_kept(tmp_path):
    import os
    import subprocess
    import sys

    from metrics import atomic

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(gone.stdout)
    mine = tmp_path / f".a.csv.partial-{os.getpid()}"
    stale = tmp_path / f".b.csv.partial-{dead_pid}"
    other = tmp_path / ".notes.partial-x"
    for p in (mine, stale, other):
        p.write_text("x")
    assert atomic.remove_stale_partials(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, other.name])


def test_an_export_to_a_named_pipe_writes_into_it(cli, tmp_path):
    """Not a regular file (like /dev/stdout): written to, never renamed over."""
    import os
    import stat

    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(pipe.read_bytes()))
    reader.start()
    code, _, err, _ = cli("export", "revisions", "-o", str(pipe))
    reader.join(timeout=60)
    assert code == 0, err
    assert stat.S_ISFIFO(os.stat(pipe).st_mode)
    assert got and got[0].decode("utf-8-sig").startswith("pilot,")


def test_an_export_through_a_symlink_replaces_the_file_and_keeps_the_link(cli, tmp_path):
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    real.chmod(0o640)
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    code, _, err, _ = cli("export", "revisions", "-o", str(link))
    assert code == 0, err
    assert link.is_symlink() and link.resolve() == real
    assert real.read_text(encoding="utf-8-sig").startswith("pilot,")
    assert oct(real.stat().st_mode & 0o777) == "0o640"
