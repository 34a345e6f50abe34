# Steward: `make run` starts the demo, `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install lock run test lint browser-deps bench-deps bench-evidently mlflow2-client clean docs token password migrate seed-demo verify-audit-log

# Every package comes from requirements-dev.lock: the whole tree pinned with hashes, pip and
# setuptools included. The SDK is this repository's own code, built with that setuptools (no
# isolated build that would fetch an unpinned one).
$(STAMP): requirements-dev.lock sdk/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e ./sdk
	touch $(STAMP)

# Front-end packages (uPlot), pinned with integrity hashes in package-lock.json.
ASSETS := node_modules/.package-lock.json
$(ASSETS): package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed for the front-end packages: apt-get install npm" >&2; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $(ASSETS)

install: $(STAMP) $(ASSETS)

# Edit the pins in requirements.txt / requirements-dev.txt, then `make lock`. Versions already in
# the lock files are kept unless a pin asks for another. requirements.lock (the Docker image's:
# the runtime alone) takes every version from requirements-dev.lock.
LOCK_FLAGS := --generate-hashes --python-version 3.11 --universal --quiet
lock: install
	$(BIN)/uv pip compile requirements-dev.txt -o requirements-dev.lock $(LOCK_FLAGS)
	$(BIN)/uv pip compile requirements.txt -c requirements-dev.lock -o requirements.lock $(LOCK_FLAGS)

# Without SECRET_KEY in the environment, a random key is made once in var/secret_key (mode 0600),
# which settings.py reads. HOST and PORT choose where the web server listens (127.0.0.1:8000).
run: install
	@$(BIN)/python scripts/ensure_secret_key.py
	$(BIN)/python manage.py steward_run

# manage.py commands through the project's virtualenv, so they work pasted into any shell.
MANAGE := $(BIN)/python manage.py
define need_user
	@test "$(origin USER)" = "command line" || { echo "Name the account: make $@ USER=<username>" >&2; exit 2; }
endef

token: install  ## make token USER=alice: print a new API token for alice
	$(need_user)
	@$(BIN)/python scripts/ensure_secret_key.py
	@$(MANAGE) create_token "$(USER)"

password: install  ## make password USER=alice: set a new password for alice
	$(need_user)
	@$(BIN)/python scripts/ensure_secret_key.py
	@$(MANAGE) changepassword "$(USER)"

migrate: install
	@$(BIN)/python scripts/ensure_secret_key.py
	$(MANAGE) migrate

seed-demo: install
	@$(BIN)/python scripts/ensure_secret_key.py
	$(MANAGE) seed_demo

verify-audit-log: install  ## exits 1 naming the first broken link of the audit log's hash chain
	@$(BIN)/python scripts/ensure_secret_key.py
	$(MANAGE) verify_audit_log

# The documentation site (docs/ and the SDK's docstrings) in site/; warnings are errors.
docs: install
	$(BIN)/mkdocs build --strict --quiet --site-dir site

lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

browser-deps:
	sh scripts/ensure-chromium.sh

# An MLflow 2.x client of its own, for the MLflow-compatibility tests' second client version.
MLFLOW2 := .venv-mlflow2
$(MLFLOW2)/.installed-stamp: requirements-mlflow2.txt
	test -x $(MLFLOW2)/bin/python || $(PYTHON) -m venv $(MLFLOW2)
	$(MLFLOW2)/bin/python -m pip install -q -r requirements-mlflow2.txt
	touch $@

mlflow2-client: $(MLFLOW2)/.installed-stamp

test: install browser-deps mlflow2-client lint docs
	SECRET_KEY=$${SECRET_KEY:-test-only-secret-key} $(BIN)/pytest

# MLflow, the peer the benchmarks compare against, lives in its own environment.
bench-deps: install
	test -x .venv-bench/bin/python || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install -q -r requirements-bench.txt -e ./sdk

# Evidently, the drift benchmark's peer, needs pandas < 3: an environment of its own.
bench-evidently:
	test -x .venv-evidently/bin/python || $(PYTHON) -m venv .venv-evidently
	.venv-evidently/bin/python -m pip install -q -r requirements-evidently.txt

clean:
	rm -rf $(VENV) .venv-bench .venv-evidently $(MLFLOW2) var site node_modules
