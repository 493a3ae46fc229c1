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
