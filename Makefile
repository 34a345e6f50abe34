# Steward: `make run` starts the demo, `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint browser-deps bench-deps clean

$(STAMP): requirements.txt requirements-dev.txt sdk/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt -e ./sdk
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/python manage.py steward_run

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

browser-deps:
	sh scripts/ensure-chromium.sh

test: install browser-deps lint
	SECRET_KEY=$${SECRET_KEY:-test-only-secret-key} $(BIN)/pytest

bench-deps: install
	$(BIN)/python -m pip install -q -r requirements-bench.txt

clean:
	rm -rf $(VENV) var
