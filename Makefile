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

.PHONY: help install test lint typecheck unit synth diff run bench layer clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

.tools/bin/uv:
	$(PYTHON) -m venv .tools && .tools/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON) --all-groups
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed node_modules/.installed  ## Install the locked Python env and the CDK CLI

lint: install  ## ruff (lint + format check)
	$(RUN)/ruff check .
	$(RUN)/ruff format --check .

typecheck: install  ## mypy with the pydantic plugin
	$(RUN)/mypy

test: install lint typecheck  ## THE test command: lint, typecheck, the whole pytest suite (incl. CDK synth, cdk-nag, cfn-lint)
	$(RUN)/pytest -n 2 --dist loadgroup

unit: install  ## Only the fast unit tests
	$(RUN)/pytest tests/unit

run: install  ## THE main job: the whole pipeline locally, v5 (example) and v6 (dev) side by side; ENV=x runs only x
	$(RUN)/mm-processor local run $(if $(filter command line environment,$(origin ENV)),--env $(ENV),--env example --env dev) --report reports/local-run.json $(ARGS)

synth: install  ## Synthesize every stack of ENV with the pinned CDK CLI (offline)
	npx cdk synth --quiet -c env=$(ENV)

diff: install  ## cdk diff against the account in your AWS credentials
	npx cdk diff -c env=$(ENV)

bench: install  ## Benchmarks: print figures (never asserted)
	$(RUN)/python -m benchmarks.run_all

clean:  ## Remove build outputs
	rm -rf build cdk.out reports .mypy_cache .ruff_cache
