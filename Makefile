# Developer and CI entry points. Every target is idempotent and quick when already done.

PYTHON ?= python3
VENV := .venv
# Touched after a successful install; rebuilt when the package metadata changes.
STAMP := $(VENV)/.installed
LINT_PATHS := service tasks cache sql devservers run.py

# Debian packages for the throwaway test servers; only installed when their binaries are
# missing (and the matching TEST_*_URL is not set).
PG_INITDB = $(shell command -v initdb 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | head -n1)

.PHONY: venv deps test run lint clean bench

venv: $(STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(VENV)/bin/python setup.cfg pyproject.toml
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

deps:
	@missing=""; \
	if [ -z "$${TEST_DATABASE_URL:-}" ] && [ -z "$(PG_INITDB)" ]; then missing="$$missing postgresql"; fi; \
	if [ -z "$${TEST_REDIS_URL:-}" ] && ! command -v redis-server >/dev/null 2>&1; then \
		missing="$$missing redis-server"; fi; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "Please install:$$missing (not a Debian/Ubuntu system, apt-get not found)" >&2; exit 1; fi; \
	sudo=""; if [ "$$(id -u)" -ne 0 ]; then sudo="sudo"; fi; \
	echo "Installing Debian packages:$$missing"; \
	$$sudo apt-get update && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing

test: deps venv
	@$(VENV)/bin/pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; fi; \
	exit $$rc

run: deps venv
	$(VENV)/bin/python run.py serve

# The quick benchmark (under 3 minutes once hireme_bench is seeded); BENCH_ARGS= for the full one.
BENCH_ARGS ?= --quick
bench: deps venv
	$(VENV)/bin/python -m bench $(BENCH_ARGS)

lint: venv
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/mypy $(LINT_PATHS)

clean:
	rm -rf $(VENV) *.egg-info build .mypy_cache .ruff_cache .pytest_cache
