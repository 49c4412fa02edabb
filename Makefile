# opsflow — `make help` lists the targets. The README's two commands are `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PYTHON ?= python3
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

# bpmn-js and dmn-js for the browser render check (and later the web app); no install scripts run.
node_modules/.installed: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund
	touch $@

browser:  ## Debian's chromium and a CJK font (labels are measured as drawn); apt-get, as root
	command -v chromium >/dev/null && fc-list :lang=zh | grep -q . || \
	  (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium fonts-wqy-microhei)

setup: $(VENV)/.installed node_modules/.installed browser  ## venv and pip install -e .[dev], npm ci, chromium

run: setup  ## create/upgrade the SQLite database, load the demo department and processes, serve the web app
	$(BIN)/opsflow init
	$(BIN)/opsflow serve --host 127.0.0.1 --port 5000

test: setup  ## the whole suite on SQLite; on PostgreSQL too when OPSFLOW_TEST_DATABASE_URL is set
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup  ## ruff check, ruff format --check, mypy strict (engine, webapp, tests, bench), import-linter
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: setup  ## ruff --fix and format
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: setup  ## the engine benchmark (ratios and medians)
	$(PY) bench/engine.py

bench-smoke: setup  ## every benchmark on tiny sizes, seconds each (CI): fails when one breaks
	$(PY) bench/engine.py --smoke
	$(PY) bench/http.py --smoke

screenshots: setup  ## the README's screenshots of the inbox, a task page and a case page (docs/img)
	$(PY) docs/screenshots.py

conformance: setup  ## deploy and run ../shared/conformance; writes docs/conformance.md
	$(BIN)/opsflow conformance ../shared/conformance --report docs/conformance.md

.PHONY: help browser setup run test lint fmt bench bench-smoke conformance screenshots
