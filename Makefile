# make test   creates .venv when missing, installs the project with its test extras, runs lint, then pytest
# make lint   ruff (lint and format check) and mypy, as pyproject.toml configures them
# make serve  runs the datastore (uWSGI + writer) on 127.0.0.1:8080 with the embedded default config
#             (SERVE_ARGS='--port 8081 --var DIR' to change where)
# make bench  runs the benchmarks (upload endpoint and writer)
# make bench-capacity  ramps up stations against uWSGI and the writer together (about an hour;
#             CAPACITY_ARGS='--kinds windows --apps project' for less)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: test lint serve bench bench-capacity clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel

$(INSTALLED): setup.py pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test,serve]'
	touch $@

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

serve: $(INSTALLED)
	$(BIN)/hisparc-datastore serve $(SERVE_ARGS)

bench: $(INSTALLED)
	$(BIN)/python -m benchmarks

bench-capacity: $(INSTALLED)
	$(BIN)/python -m benchmarks.capacity $(CAPACITY_ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
