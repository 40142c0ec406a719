# Two commands do all the set-up on a fresh machine with Python 3.11+ and make:
#   make run    the whole system with a demo tenant
#   make test   every test against real PostgreSQL, Redis, SMTP and HTTP servers
SHELL := /bin/bash
.DEFAULT_GOAL := help
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
RUN := $(UV) run --frozen --no-sync
# PostgreSQL and Redis from the environment, else localhost, else embedded under .data/
INFRA = eval "$$($(RUN) python -m rcm_kit.devinfra env --start)"

.PHONY: help install run stop test test-only lint format bench migrate clean

help:
	@echo "make run      start every process with a demo tenant (Ctrl-C stops all)"
	@echo "make test     lint, then the whole test suite (test-only skips lint)"
	@echo "make lint     ruff, import-linter, mypy"
	@echo "make bench    benchmarks (report in bench/results/)"
	@echo "make migrate  upgrade the master database and every tenant"
	@echo "make stop     stop embedded servers and processes left by a crash"

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: $(UV) uv.lock pyproject.toml $(wildcard services/*/pyproject.toml gateway/pyproject.toml)
	$(UV) sync --frozen --all-packages
	@touch $@

install: .venv/.synced

run: install
	@$(RUN) python -m rcm_kit.devrun

stop: install
	-@$(RUN) python -m rcm_kit.devrun --stop
	-@$(RUN) python -m rcm_kit.devinfra stop

test: lint
	@$(INFRA) && $(RUN) pytest -p no:cacheprovider $(PYTEST_ARGS)

test-only: install
	@$(INFRA) && $(RUN) pytest -p no:cacheprovider $(PYTEST_ARGS)

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) lint-imports
	$(RUN) mypy services/kit/src services/reference/src services/eligibility-sweeps/src services/contract-registry/src services/clearinghouse-sandbox/src gateway/src bench

format: install
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

bench: install
	@$(INFRA) && $(RUN) python -m bench $(BENCH)

migrate: install
	@$(INFRA) && $(RUN) rcm migrate

clean: stop
	rm -rf .venv .tools
