# The two commands: `make run` (serve the embedded deployment) and `make test` (the whole suite).
PYTHON ?= python3
VENV   ?= .venv
HOME_DIR ?= ./var
HOST ?= 127.0.0.1
PORT ?= 8080
BIN := $(VENV)/bin

.PHONY: run test soak bench lint clean verifier demo screenshots

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

# Long runs outside `make test` (figures in docs/benchmarks.md): the crash test at 100 SIGKILLs
# and schemathesis at 10,000 requests on each database.
soak: $(VENV)/.installed-test
	CUSTOS_CRASH_CYCLES=100 $(BIN)/python -m pytest -n 0 -s \
		tests/test_crash_recovery.py $(PYTEST_ARGS)
	CUSTOS_SCHEMATHESIS_REQUESTS=10000 $(BIN)/python -m pytest -n 0 -s \
		"tests/service/test_schemathesis.py::test_every_operation_answers_as_documented" $(PYTEST_ARGS)

bench: $(VENV)/.installed-bench
	$(BIN)/python bench/bench_ledger.py && $(BIN)/python bench/bench_ingest.py \
		&& $(BIN)/python bench/bench_orders.py && $(BIN)/python bench/bench_verify.py \
		&& $(BIN)/python bench/bench_scrub.py && $(BIN)/python bench/bench_load.py \
		&& $(BIN)/python bench/bench_startup.py

# A seeded demonstration deployment in var/demo (made anew each time), served on HOST:PORT;
# it prints a sign-in link for each role first.
DEMO_HOME ?= ./var/demo
demo: $(VENV)/.installed
	rm -rf $(DEMO_HOME)
	$(BIN)/python tools/demo.py --home $(DEMO_HOME) --public-url http://$(HOST):$(PORT)
	$(BIN)/custos --home $(DEMO_HOME) serve --host $(HOST) --port $(PORT)

# The README's screenshots, taken by the browser journeys (Chromium) into docs/screenshots.
screenshots: $(VENV)/.installed-test
	CUSTOS_SCREENSHOTS=docs/screenshots $(BIN)/python -m pytest -n 0 -q \
		tests/service/pages/test_journeys.py tests/service/pages/test_examiner_journeys.py \
		tests/service/pages/test_admin_journeys.py

# The offline verifier as one file a court runs with only Python and cryptography installed.
verifier:
	$(PYTHON) tools/build_verifier.py -o dist/custos-verify.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
