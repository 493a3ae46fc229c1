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

# =========================================================================== item 2: the last admin


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


# =========================================================================== item 1: listening

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


# =========================================================================== item 6: cookie secret

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
    from metrics import cli as cli_module

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
    monkeypatch.setattr(cli_module, "REPO_ROOT", tmp_path / "app")  # no secrets beside it
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
