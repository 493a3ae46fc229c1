#!/usr/bin/env python3
"""Restore drill for a PilotGate backup:
``python scripts/check_backup.py BACKUP [--into URL --create-database]``.

Restores the backup into a fresh database (SQLite: a temporary file) and compares every
table's row count with its manifest; exit code 1 on any difference. See
docs/operations.md.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # backup_tools, and metrics/ of this checkout

from backup_tools import main_check  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main_check())
