# The two commands a new user needs: `make run` (the daemon) and `make test` (the suite).
# Each does its own set-up: a virtual environment in .venv, the package and its test extras.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
STATE  ?= $(CURDIR)/state

.PHONY: run test lint format unit e2e fuzz bench bench-sandbox sandbox clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	CALLCENTERD_STATE_DIR="$${CALLCENTERD_STATE_DIR:-$(STATE)}" $(BIN)/callcenterd run

test: lint
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

unit: $(STAMP)
	$(BIN)/python -m pytest -m "not e2e"

# schemathesis with all checks, as each role; FUZZ_EXAMPLES examples per operation.
fuzz: $(STAMP)
	FUZZ_EXAMPLES="$${FUZZ_EXAMPLES:-50}" $(BIN)/python -m pytest tests/api/test_fuzz.py -s

e2e: $(STAMP)
	$(BIN)/python -m pytest -m e2e

bench: $(STAMP)
	$(BIN)/python bench/auth_api.py
	$(BIN)/python bench/routing_engine.py
	$(BIN)/python bench/ws_fanout.py
	$(BIN)/python bench/dashboards.py

# Benchmarks on the real Asterisk sandbox (root; several minutes).
bench-sandbox: $(STAMP)
	$(BIN)/python bench/routing_sandbox.py --calls 100
	$(BIN)/python bench/soak.py --minutes 3
	$(BIN)/python bench/slow_consumers.py

sandbox: $(STAMP)
	$(BIN)/python -m tests.sandbox up --phones 4

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
