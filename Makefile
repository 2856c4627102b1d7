# The two commands: `make run` (serve the embedded deployment) and `make test` (the whole suite).
PYTHON ?= python3
VENV   ?= .venv
HOME_DIR ?= ./var
HOST ?= 127.0.0.1
PORT ?= 8080
BIN := $(VENV)/bin

.PHONY: run test bench lint clean verifier

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/custos --home $(HOME_DIR) init
	$(BIN)/custos --home $(HOME_DIR) serve --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

bench: $(VENV)/.installed-bench
	$(BIN)/python bench/bench_ledger.py && $(BIN)/python bench/bench_ingest.py \
		&& $(BIN)/python bench/bench_orders.py && $(BIN)/python bench/bench_verify.py \
		&& $(BIN)/python bench/bench_scrub.py && $(BIN)/python bench/bench_load.py \
		&& $(BIN)/python bench/bench_startup.py

# The offline verifier as one file a court runs with only Python and cryptography installed.
verifier:
	$(PYTHON) tools/build_verifier.py -o dist/custos-verify.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
