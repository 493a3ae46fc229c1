# PilotGate: `make run` serves the dashboard, `make test` runs every test.
# Both create the virtual environment and install pinned dependencies on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8501
# Two test processes (pytest-xdist): each has its own SQLite files and PostgreSQL schema.
PYTEST_ARGS ?= -n 2
API_PORT ?= 8502

.PHONY: run test install lint format bench screenshot clean-db backup restore

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "PilotGate needs Python 3.11 or newer (found " + sys.version.split()[0] + ")")'
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

## run: migrate (and on first run seed) the SQLite database, then serve the dashboard on
## http://127.0.0.1:8501 and the HTTP API on http://127.0.0.1:8502/api/v1 (Ctrl-C stops both;
## this machine only: docs/operations.md says how to expose them behind a TLS proxy)
run: install
	$(BIN)/pilotgate init --seed-if-empty
	$(BIN)/pilotgate serve --address 127.0.0.1 --port $(PORT) --api-port $(API_PORT)

## test: the whole suite (PostgreSQL too when PILOTGATE_TEST_POSTGRES_URL is set)
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## bench: speed ratios against raw pandas/SQL (PostgreSQL too when
## PILOTGATE_TEST_POSTGRES_URL is set); bench_scale.py is the 832,000-value portfolio
bench: install
	$(BIN)/python benchmarks/bench_import.py
	$(BIN)/python benchmarks/bench_portfolio_page.py
	$(BIN)/python benchmarks/bench_api.py
	$(BIN)/python benchmarks/bench_report.py
	$(BIN)/python benchmarks/bench_scale.py

## screenshot: refresh docs/pilot-page.png (the README image) through the browser test,
## and the report previews docs/report-*.png (pdftoppm, from poppler-utils)
screenshot: install
	PILOTGATE_SCREENSHOT_DIR=docs $(BIN)/python -m pytest tests/test_browser.py -q
	PILOTGATE_SCREENSHOT_DIR=docs $(BIN)/python -m pytest tests/test_report.py -q -k png

clean-db:
	rm -f pilotgate.db pilotgate.db-wal pilotgate.db-shm

## backup: back up the database (PILOTGATE_DATABASE_URL, default pilotgate.db) into
## backups/ and check it by restoring it into a scratch database (docs/operations.md)
backup: install
	@mkdir -p backups
	$(BIN)/python scripts/backup.py --check backups

## restore: make restore BACKUP=backups/FILE restores into PILOTGATE_DATABASE_URL,
## which must name a fresh, empty database (a database with tables is refused)
restore: install
	@test -n "$(BACKUP)" || { echo "usage: make restore BACKUP=backups/pilotgate-....db" >&2; exit 2; }
	$(BIN)/python scripts/restore.py "$(BACKUP)"
