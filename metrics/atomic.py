"""Files that appear whole or not at all: exports and backups (issue 9, item 10).

A file is written as a hidden temporary file beside its final name,
``.<name>.partial-<pid>``, and renamed to the final name only once complete
(``os.replace`` is atomic within one folder). A full disk or any other error removes
the temporary file; the final name is never a cut-short file. A process killed
mid-way (``kill -9``) cannot clean up after itself, so the next writer into the same
folder removes partial files whose process is gone (:func:`remove_stale_partials`).

Own code, not a library: the standard library has the pieces (``os.replace``,
``os.kill(pid, 0)``), and the clean-up of files left by dead processes is specific to
PilotGate's naming.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_PARTIAL_RE = re.compile(r"^\..+\.partial-(?P<pid>\d+)$")


def partial_path(target: Path) -> Path:
    """The temporary name ``target`` is written under by this process."""
    return target.with_name(f".{target.name}.partial-{os.getpid()}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale_partials(folder: Path) -> list[Path]:
    """Remove the partial files in ``folder`` left by processes that no longer run
    (a killed export, backup or restore); returns the files removed. Partial files of
    running processes are left alone."""
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for path in entries:
        match = _PARTIAL_RE.match(path.name)
        if match and not _alive(int(match["pid"])) and path.is_file():
            try:
                path.unlink()
            except OSError:
                continue
            removed.append(path)
    return removed


@contextmanager
def partial_file(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; when the block succeeds it is renamed
    to ``target``, on any error (or ``KeyboardInterrupt``) it is removed.

    Stale partial files of dead processes in the same folder are removed first.
    """
    remove_stale_partials(target.parent)
    tmp = partial_path(target)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(target: Path, text: str, *, encoding: str = "utf-8", newline: str = "") -> None:
    """Write ``text`` to ``target`` whole or not at all (flushed to disk before the
    rename, so a full disk fails here and leaves ``target`` as it was). A symbolic
    link's file is replaced (the link stays); a target that is no regular file (a
    device such as ``/dev/stdout`` or ``/dev/full``, a named pipe) is written to
    directly: renaming over it would replace the device with a plain file.

    Raises:
        OSError: the folder is not writable, the disk is full, ... ``target`` is
            unchanged and no temporary file is left.
    """
    if target.is_symlink() and target.exists():
        target = target.resolve()  # replace the file it points to, keep the link
    if target.exists() and not target.is_file():
        with open(target, "w", encoding=encoding, newline=newline) as fh:
            fh.write(text)
        return
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else None
    with partial_file(target) as tmp:
        with open(tmp, "w", encoding=encoding, newline=newline) as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)  # a replaced export keeps its permissions


__all__ = ["partial_file", "partial_path", "remove_stale_partials", "write_text"]
