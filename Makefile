# Two commands for a fresh machine: `make demo` (set up, then sync a Drive end to end on the
# emulator) and `make test` (set up, then lint and run the whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test lint dev deploy-check deploy-lock

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

demo: setup
	$(BIN)/monolyth-connectors demo

lint: setup
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest -q -rs

# The Dagster UI and daemon on the local instance (http://127.0.0.1:3000).
dev: setup
	mkdir -p .monolyth/dagster && cp dagster.yaml .monolyth/dagster/dagster.yaml
	DAGSTER_HOME=$(CURDIR)/.monolyth/dagster $(BIN)/monolyth-connectors db upgrade
	# Each provider's pool limit: its run cap in dagster.yaml (the pools' default is the smallest).
	DAGSTER_HOME=$(CURDIR)/.monolyth/dagster $(BIN)/dagster instance concurrency set google_drive 4
	DAGSTER_HOME=$(CURDIR)/.monolyth/dagster $(BIN)/dagster instance concurrency set gmail 2
	DAGSTER_HOME=$(CURDIR)/.monolyth/dagster $(BIN)/dagster dev -w workspace.yaml

# The production topology of deploy/ on Docker, end to end (deploy/check.py; docs/operations.md):
# installs the engine if absent, builds the image offline, runs the scenario, tears down.
deploy-check: setup
	$(BIN)/python deploy/check.py

# deploy/requirements.lock again, after a dependency change in pyproject.toml.
deploy-lock: setup
	$(BIN)/python deploy/lock.py
