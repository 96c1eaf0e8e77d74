# bankpipe — the two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

.PHONY: demo test test-fast test-long screenshots lint bench faults install install-test install-airflow airflow clean lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Every install comes from a lock with hashes (requirements/README.md): pip refuses any file whose hash differs.
# --no-deps because the lock is the whole tree (pip's resolver would otherwise refuse a locked package that another
# one names with an extra, pypa/pip#9644); bankpipe goes in the same way, its build backend locked too.
PIP_LOCKED    := $(PIP) install --quiet --require-hashes --no-deps -r
PIP_EDITABLE  := $(PIP) install --quiet --no-deps --no-build-isolation -e . && $(PIP) check --quiet

install: $(BIN)/python
	$(PIP_LOCKED) requirements/runtime.txt
	$(PIP_EDITABLE)

install-test: $(BIN)/python
	$(PIP_LOCKED) requirements/test.txt
	$(PIP_EDITABLE)

## lock: re-resolve requirements/*.txt from pyproject.toml, keeping every pin that still fits (uv, in build/uv);
## LOCK_ARGS=--upgrade moves to the newest versions within the bounds, LOCK_ARGS="--upgrade-package duckdb" one
UV_VERSION ?= 0.13.9
UV         := build/uv/bin/uv
UV_COMPILE := $(UV) pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock" $(LOCK_ARGS) pyproject.toml requirements/build.in

$(UV):
	$(PYTHON) -m venv build/uv
	build/uv/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

# test.txt is resolved first: runtime.txt and airflow.txt are constrained to it, so every version they name
# is one the tests ran on.
lock: $(UV)
	$(UV_COMPILE) --extra test -o requirements/test.txt
	$(UV_COMPILE) --extra airflow -c requirements/test.txt -o requirements/airflow.txt
	$(UV_COMPILE) -c requirements/test.txt -o requirements/runtime.txt

## demo: create .venv, install, run the whole pipeline on the embedded defaults
demo: install
	$(BIN)/bankpipe run --demo

## test: install test extras and run every test but the long trials; the test PostgreSQL is BANKPIPE_TEST_PG_URL,
## else 127.0.0.1:5432 if it answers, else an embedded server started for the run (CONTRIBUTING.md)
test: install-test
	$(BIN)/ruff check src tests bench airflow
	$(BIN)/python -m pytest -m "not long" $(PYTEST_ARGS)

## test-fast: the unit tests and the core ingest integration tests (source, batch, stream, FX; ~1.5 min), no slow ones
FAST_TESTS := tests/unit tests/data tests/integration/test_source.py tests/integration/test_ingest_postgres.py \
	tests/integration/test_ingest_stream.py tests/integration/test_stream_robust.py \
	tests/integration/test_seed_dataset.py tests/integration/test_fx_http.py
test-fast: install-test
	$(BIN)/python -m pytest -m "not slow and not long" $(FAST_TESTS) $(PYTEST_ARGS)

## screenshots: the browser test writing the tracked docs/screenshots/*.png (other runs write build/screenshots/)
screenshots: install-test
	@test -x /usr/bin/chromium || { echo "screenshots need Debian's chromium: apt-get install -y chromium" >&2; exit 1; }
	BANKPIPE_WRITE_SCREENSHOTS=1 $(BIN)/python -m pytest tests/dashboard/test_e2e.py $(PYTEST_ARGS)

## test-long: the trials of several minutes (fault injection over every step, interrupted and resumed runs);
## BANKPIPE_FAULT_TRIALS=N bounds the fault sample (.ci/run uses 3); `make faults` is the full 100+ trials
test-long: install-test
	$(BIN)/python -m pytest -m long $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check src tests bench airflow
	$(BIN)/ruff format --check src tests bench airflow

bench: install-test
	$(BIN)/python bench/bench_generate.py
	$(BIN)/python bench/bench_ingest.py
	$(BIN)/python bench/bench_transform.py

## bench-scale: generate then `bankpipe run` from cold on the embedded defaults, every step's wall time and peak
## RSS as a Markdown table (build/bench_scale_$(SCALE).md); SCALE=small (CI, < 3 min) | 1m | 10m (issue 17)
SCALE ?= small
.PHONY: bench-scale
bench-scale: install-test
	$(BIN)/python bench/bench_scale.py --scale $(SCALE)

## faults: SIGKILL each long step at random points (105 trials), re-run, compare bronze/silver/gold with a clean run
## (needs PostgreSQL on 127.0.0.1:5432; e.g. FAULTS_ARGS="--trials 20 --budget 600"; the table lands in build/faults.md)
faults: install-test
	$(BIN)/python -m tests.faults $(FAULTS_ARGS)

AIRFLOW_PORT  ?= 8080
AIRFLOW_STATE := $(abspath $(or $(BANKPIPE_STATE_DIR),.bankpipe))
AIRFLOW_ENV   := PATH="$(abspath $(BIN)):$$PATH" \
	BANKPIPE_STATE_DIR="$(AIRFLOW_STATE)" \
	AIRFLOW_HOME="$(AIRFLOW_STATE)/airflow" \
	AIRFLOW__CORE__DAGS_FOLDER="$(CURDIR)/airflow/dags" \
	AIRFLOW__CORE__LOAD_EXAMPLES=False \
	AIRFLOW__CORE__PARALLELISM=4 \
	AIRFLOW__API__HOST=127.0.0.1 \
	AIRFLOW__API__PORT=$(AIRFLOW_PORT) \
	AIRFLOW__API__BASE_URL=http://127.0.0.1:$(AIRFLOW_PORT) \
	AIRFLOW__API_AUTH__JWT_ISSUER=bankpipe-local

install-airflow: $(BIN)/python
	$(PIP_LOCKED) requirements/airflow.txt
	$(PIP_EDITABLE)

## airflow: Airflow 3 standalone on http://127.0.0.1:8080 running airflow/dags (state in .bankpipe/airflow)
airflow: install-airflow
	$(AIRFLOW_ENV) airflow db migrate
	$(AIRFLOW_ENV) airflow pools set bankpipe_warehouse 1 "DuckDB has one writer: warehouse tasks take turns"
	$(AIRFLOW_ENV) airflow variables import --action-on-existing-key skip airflow/variables.json
	$(AIRFLOW_ENV) airflow standalone

clean:
	-$(BIN)/bankpipe source down
	rm -rf .bankpipe
