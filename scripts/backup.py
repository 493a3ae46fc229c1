#!/usr/bin/env python3
"""Back up the PilotGate database: ``python scripts/backup.py [--check] OUTPUT``.

SQLite: an online copy (SQLite's backup API, safe while the dashboard writes).
PostgreSQL: ``pg_dump --format=custom`` of the database's schema. Writes OUTPUT.json
with every table's row count and the file's SHA-256. See docs/operations.md.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # backup_tools, and metrics/ of this checkout

from backup_tools import main_backup  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main_backup())
