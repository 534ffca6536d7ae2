# The two set-up commands are `make run` and `make test`; both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8787
STATE_DIR ?= ./var

.PHONY: run test bench lint clean venv vendor

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	@HOST=$(HOST) PORT=$(PORT) STATE_DIR=$(STATE_DIR) bash scripts/run.sh

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/replay.py
	$(BIN)/python bench/fanout.py
	$(BIN)/python bench/idle_conns.py
	$(BIN)/python bench/estop_latency.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/cli_stop.py
	$(BIN)/python bench/dashboard.py

# The dashboard's libraries, fetched again with npm into signalosd/web/static/vendor/ (see
# docs/dashboard.md); the committed files are what ships, so this runs only to change them.
vendor:
	$(PYTHON) scripts/vendor.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
