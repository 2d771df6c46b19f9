# Two set-up commands on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench clean

$(STAMP): pyproject.toml requirements.lock
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c requirements.lock -e '.[test,bench]'
	touch $(STAMP)

install: $(STAMP)

# Runs the quickstart scenario on the embedded defaults: local Dask, ./landing, Prefect without a server.
run: $(STAMP)
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/mhhs-pipeline run configs/quickstart.yaml --out ./landing

test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check mhhs_pipeline flows tests benchmarks
	# Two processes (-n 2), each test file on one (module fixtures start servers once).
	PREFECT_SERVER_ANALYTICS_ENABLED=false $(BIN)/pytest -q -n 2 --dist loadfile

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run --profile

clean:
	rm -rf $(VENV) landing
