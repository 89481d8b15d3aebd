# The project's verbs. Every target installs what it needs on a fresh machine:
# uv (bootstrapped into .tools/ from PyPI when not on PATH), the locked Python environment (.venv/),
# and the pinned CDK CLI from npm (node_modules/).
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3.11
UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
RUN := $(VENV)/bin
ENV ?= example
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export CDK_DISABLE_VERSION_CHECK := 1

.PHONY: help install test lint format typecheck imports unit integration e2e infra synth diff run bench bench-long layer clean

help:  ## List the targets
	@grep -E '^[a-z0-9-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

.tools/bin/uv:
	$(PYTHON) -m venv .tools && .tools/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON) --all-groups
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed node_modules/.installed  ## Install the locked Python env and the CDK CLI

lint: install  ## ruff (lint + format check) and the import contracts
	$(RUN)/ruff check .
	$(RUN)/ruff format --check .
	$(RUN)/lint-imports --no-logo

format: install  ## Rewrite the tree in the house style: ruff format, then ruff check --fix
	$(RUN)/ruff format .
	$(RUN)/ruff check --fix .

imports: install  ## Only the import contracts (pyproject.toml [tool.importlinter], decision 104)
	$(RUN)/lint-imports --no-logo

typecheck: install  ## mypy with the pydantic plugin
	$(RUN)/mypy

# Coverage of the project packages ([tool.coverage.run] in pyproject.toml) is printed, never gated.
COVERAGE := --cov --cov-report=term:skip-covered

test: install lint typecheck  ## THE test command: lint, typecheck, the whole pytest suite (incl. CDK synth, cdk-nag, cfn-lint), coverage printed
	$(RUN)/pytest -n 2 --dist loadgroup $(COVERAGE)

unit: install  ## Only the fast unit tests and the stage contracts
	$(RUN)/pytest tests/unit tests/contract

integration: install  ## Only the integration tests (handlers against moto)
	$(RUN)/pytest -n 2 --dist loadgroup tests/integration

e2e: install  ## Only the local pipeline: the harness's own tests and the end-to-end tests through it
	$(RUN)/pytest -n 2 --dist loadgroup $(wildcard tests/local_pipeline) tests/e2e

infra: install  ## Only the infrastructure tests (CDK synth, cdk-nag, cfn-lint, IAM)
	$(RUN)/pytest -n 2 --dist loadgroup tests/infrastructure

run: install  ## THE main job: the whole pipeline locally, v5 (example) and v6 (dev) side by side; ENV=x runs only x
	$(RUN)/mm-processor local run $(if $(filter command line environment,$(origin ENV)),--env $(ENV),--env example --env dev) --report reports/local-run.json $(ARGS)

synth: install  ## Synthesize every stack of ENV with the pinned CDK CLI (offline)
	npx cdk synth --quiet -c env=$(ENV)

diff: install  ## cdk diff against the account in your AWS credentials
	npx cdk diff -c env=$(ENV)

bench: install  ## The issue-13 figures beside their floors, a few minutes (never asserted); README block: run_all --update-readme
	$(RUN)/python -m benchmarks.run_all

bench-long: install  ## The long benchmarks (10-30 min each): fault matrix, burst, capacity burst, fuzz
	$(RUN)/python -m benchmarks.run_all --long

clean:  ## Remove build outputs
	rm -rf build cdk.out reports .mypy_cache .ruff_cache
