# bankpipe — the two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

.PHONY: demo test lint bench install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

install: $(BIN)/python
	$(PIP) install --quiet -e .

install-test: $(BIN)/python
	$(PIP) install --quiet -e ".[test]"

## demo: create .venv, install, run the whole pipeline on the embedded defaults
demo: install
	$(BIN)/bankpipe run --demo

## test: install test extras and run every test (needs PostgreSQL on 127.0.0.1:5432 for some)
test: install-test
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

bench: install-test
	$(BIN)/python bench/bench_generate.py
	$(BIN)/python bench/bench_ingest.py

clean:
	-$(BIN)/bankpipe source down
	rm -rf .bankpipe
