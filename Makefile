# The two commands a new user needs: `make demo` (a live call center to look at) and
# `make test` (the suite); `make run` is the daemon alone, for a real Asterisk.
# Each does its own set-up: a virtual environment in .venv, the package and its test extras.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
STATE  ?= $(CURDIR)/state

.PHONY: demo run test lint format audit unit e2e fuzz bench bench-sandbox sandbox clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The sandbox Asterisk (root and the package registries: built on first use), the daemon on
# 127.0.0.1:8001 with its state in ./demo-state, simulated operators and callers; Ctrl-C stops
# it all. Without the sandbox it says why and runs the daemon alone. DEMO_RATE: calls a
# minute (6); DEMO_MINUTES: stop after (0: at Ctrl-C); also DEMO_PORT, DEMO_SEED (demo/options.py).
DEMO_RATE ?=
DEMO_MINUTES ?=
demo: $(STAMP)
	DEMO_RATE="$(DEMO_RATE)" DEMO_MINUTES="$(DEMO_MINUTES)" $(BIN)/python -m demo

run: $(STAMP)
	CALLCENTERD_STATE_DIR="$${CALLCENTERD_STATE_DIR:-$(STATE)}" $(BIN)/callcenterd run

test: lint
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Dependencies and code: pip-audit asks the package index's vulnerability data about every
# installed package and fails on a known vulnerability; a package it cannot look up is listed
# as "could not be audited" (on a machine whose index is a local mirror without that data, all
# of them are). Where the data is reachable, `make audit PIP_AUDIT_FLAGS=--strict` also fails
# on an unchecked package. bandit reads [tool.bandit] in pyproject.toml.
AUDIT_STAMP := $(VENV)/.audit-stamp
PIP_AUDIT_FLAGS ?=
$(AUDIT_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,audit]'
	touch $(AUDIT_STAMP)

audit: $(AUDIT_STAMP)
	$(BIN)/pip-audit $(PIP_AUDIT_FLAGS) --skip-editable --progress-spinner off
	$(BIN)/bandit -c pyproject.toml -r callcenterd -q

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
	$(BIN)/python bench/wait_estimate.py

# Benchmarks on the real Asterisk sandbox (root; several minutes).
bench-sandbox: $(STAMP)
	$(BIN)/python bench/routing_sandbox.py --calls 100
	$(BIN)/python bench/soak.py --minutes 3
	$(BIN)/python bench/slow_consumers.py
	$(BIN)/python bench/load_sandbox.py
	$(BIN)/python bench/cost_per_call.py

sandbox: $(STAMP)
	$(BIN)/python -m tests.sandbox up --phones 4

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
