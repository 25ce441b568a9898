# benchfleet developer entry points. `make help` lists them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.benchfleet-installed
DEMO_ARGS ?=
PYTEST_ARGS ?=
# Debian package = a file it installs (present means installed). Why each: docs/dependencies.md.
SYSTEM_DEPS := mosquitto=/usr/sbin/mosquitto chromium=/usr/bin/chromium \
	victoria-metrics=/usr/bin/victoria-metrics fonts-dejavu-core=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf \
	faketime=/usr/bin/faketime

.PHONY: help venv install deps-system test lint fmt typecheck pytest demo bench clean distclean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "} {printf "  make %-12s %s\n", $$1, $$2}'
	@echo "  variables: PYTHON=$(PYTHON) DEMO_ARGS='--stations 3 --fresh' PYTEST_ARGS='-m \"not slow\"'"

venv: $(STAMP) ## create .venv and install benchfleet with its test tools (reruns when pyproject.toml changes)
install: $(STAMP) ## same as venv

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; benchfleet needs Python >= 3.11 (make PYTHON=python3.11 ...)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
		echo "error: $(PYTHON) is Python $$($(PYTHON) -c 'import platform; print(platform.python_version())'); benchfleet needs Python >= 3.11 (make PYTHON=python3.11 ...)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

deps-system: ## install the Debian packages tests and demo use (apt-get as root or with passwordless sudo)
	@missing=""; \
	for pair in $(SYSTEM_DEPS); do \
		pkg=$${pair%%=*}; path=$${pair#*=}; \
		test -e "$$path" || missing="$$missing $$pkg"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	echo "installing Debian packages:$$missing"; \
	if [ "$$(id -u)" = 0 ]; then SUDO=""; \
	elif sudo -n true 2>/dev/null; then SUDO="sudo"; \
	else \
		echo "error: missing Debian packages:$$missing, and I cannot install them without a password."; \
		echo "       Run: sudo apt-get install -y$$missing   and then this command again."; \
		exit 1; \
	fi; \
	$$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing

test: deps-system install ## everything CI runs: lint, format check, mypy, pytest (junit in test-artifacts/)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	@mkdir -p test-artifacts
	$(BIN)/pytest --junitxml=test-artifacts/junit.xml $(PYTEST_ARGS)

lint: install ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: install ## format and auto-fix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install ## mypy --strict over the packages listed in pyproject.toml
	$(BIN)/mypy

pytest: deps-system install ## only the tests (PYTEST_ARGS passed on)
	@mkdir -p test-artifacts
	$(BIN)/pytest --junitxml=test-artifacts/junit.xml $(PYTEST_ARGS)

demo: deps-system install ## private mosquitto + hub + simulated stations until Ctrl-C (DEMO_ARGS passed on)
	$(BIN)/benchfleet demo $(DEMO_ARGS)

bench: install ## benchmarks (results belong in docs/benchmarks.md)
	@if [ -f bench/__main__.py ]; then \
		$(BIN)/python -m bench; \
	else \
		echo "no benchmarks yet: they arrive with later issues (bench/__main__.py)"; \
	fi

clean: ## remove caches and test artifacts (keeps .venv and var/)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis test-artifacts build
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -print0 | xargs -0 rm -rf

distclean: clean ## also remove .venv and the demo data in var/
	rm -rf $(VENV) var
