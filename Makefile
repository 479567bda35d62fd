# make test   creates .venv when missing, installs the project with its test extras, runs pytest
# make serve  runs the datastore (uWSGI + writer) on 127.0.0.1:8080 with the embedded default config
#             (SERVE_ARGS='--port 8081 --var DIR' to change where)
# make bench  runs the benchmarks (upload endpoint and writer)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: test serve bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel

$(INSTALLED): setup.py | $(BIN)/python
	$(BIN)/pip install -q -e '.[test,serve]'
	touch $@

test: $(INSTALLED)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

serve: $(INSTALLED)
	$(BIN)/hisparc-datastore serve $(SERVE_ARGS)

bench: $(INSTALLED)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
