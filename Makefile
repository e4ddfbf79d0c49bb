# midaz-reconciliation — two commands do all set-up on a fresh Debian/Ubuntu machine (Python >= 3.11):
#   make demo   seed a demo Midaz ledger on throwaway servers, run the DAG once, show the report
#   make test   run the whole test suite against real throwaway servers
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AIRFLOW__CORE__LOAD_EXAMPLES := False

.PHONY: demo test lint ui venv system-deps bench clean

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@bash scripts/setup.sh "$(PY)" "$(VENV)"
	@touch $(STAMP)

venv: $(STAMP)

system-deps:
	@bash scripts/system-deps.sh

test: system-deps $(STAMP)
	@$(BIN)/ruff check dags include tests benchmarks plugins
	@$(BIN)/python -m pytest -m "not mongo_real" $(PYTEST_ARGS)

demo: system-deps $(STAMP)
	@$(BIN)/python -m reconciliation.demo.run $(DEMO_ARGS)

ui: system-deps $(STAMP)
	@$(BIN)/python -m reconciliation.demo.ui $(UI_ARGS)

lint: $(STAMP)
	@$(BIN)/ruff check dags include tests benchmarks plugins

bench: system-deps $(STAMP)
	@$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .demo .pytest_cache .ruff_cache
