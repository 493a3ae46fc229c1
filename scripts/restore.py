#!/usr/bin/env python3
"""Restore a PilotGate backup into a fresh database:
``python scripts/restore.py BACKUP --database-url URL``.

Refuses a target that already has tables; checks every table's row count against the
backup's manifest afterwards. See docs/operations.md.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # backup_tools, and metrics/ of this checkout

from backup_tools import main_restore  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main_restore())
