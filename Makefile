# Two commands do everything on a fresh machine with Python 3.11+:
#   make run    installs into .venv and serves the HTTP API on 127.0.0.1:8000 (SQLite default;
#               CREDITLEDGER_DATABASE_URL=postgresql://... for PostgreSQL)
#   make test   installs into .venv, lints, type-checks and runs the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# mypy cannot follow the editable install's import hook (it maps creditledger.domain to domain/
# and so on, as the wheel does); it reads the same folders through this tree of links instead.
TYPECHECK_ROOT := build/typecheck/creditledger

.PHONY: install run demo test lint pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(TYPECHECK_ROOT):
	mkdir -p $(TYPECHECK_ROOT)
	for layer in domain application infrastructure; do ln -sfn ../../../$$layer $(TYPECHECK_ROOT)/$$layer; done

install: $(STAMP) $(TYPECHECK_ROOT)

run: $(STAMP)
	$(BIN)/creditledger serve

demo: $(STAMP)
	$(BIN)/creditledger demo

lint: $(STAMP) $(TYPECHECK_ROOT)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q -n 2 --dist load --durations=25

test: lint pytest

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build var .mypy_cache .ruff_cache .pytest_cache .hypothesis
