# The two set-up commands are `make run` and `make test`; both create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8787
STATE_DIR ?= ./var

.PHONY: run test bench lint clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	@mkdir -p $(STATE_DIR)
	@echo "signalosd: listening on http://$(HOST):$(PORT), state in $(STATE_DIR)"
	@echo "signalosd: admin token in $(STATE_DIR)/admin.token (created on first start); try:"
	@echo "  curl -s -H \"Authorization: Bearer \$$(cat $(STATE_DIR)/admin.token)\" http://$(HOST):$(PORT)/api/trading/state"
	$(BIN)/signalosd --host $(HOST) --port $(PORT) --state-dir $(STATE_DIR)

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/replay.py
	$(BIN)/python bench/fanout.py
	$(BIN)/python bench/idle_conns.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
