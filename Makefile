# Everything a fresh machine needs is installed by these targets; nothing by hand.
#   make run    the poller's main job on the local stack (no AWS account, no Docker)
#   make test   the whole test suite (what CI runs through .ci/run)
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
BIN := $(VENV)/bin
# The Lambda runs python3.13, so the dev venv does too when it is on the machine
# (pyenv's shim for python3.13 fails outside its version, hence the direct path first).
PY313 := $(firstword $(wildcard $(HOME)/.pyenv/versions/3.13*/bin/python3.13) $(shell command -v python3.13 2>/dev/null))
PYTHON ?= $(or $(PY313),python3)

.PHONY: help venv run serve test test-unit test-fast lint format bench clean

help:
	@echo "make run        drain the sample messages into the local Airtable emulator (no AWS, no Docker)"
	@echo "make test       lint + the whole test suite (unit, integration, template, build)"
	@echo "make test-unit  the unit tests only (tests/unit, no socket): under a minute"
	@echo "make test-fast  every test not marked slow: pytest -m 'not slow' (no lint, no sam build, no checkov)"
	@echo "make serve      keep the local stack up (moto SQS on :9324, Airtable emulator on :8787),"
	@echo "                and write local.json, which the poller CLI reads by default"
	@echo "make docs       build the documentation site (MkDocs, --strict) into site/;"
	@echo "                make docs-serve serves it at http://127.0.0.1:8000"
	@echo "make bench      throughput / memory / cold-start benchmark (bench/README.md)"
	@echo "make mutants    mutation testing of the core with mutmut (MUTANTS='poller.mirror*' to pick)"
	@echo "make venv       only create .venv/ with every tool (each other target installs what it needs)"
	@echo "make validate build build-host invoke-built scan   SAM checks (docs/deploy.md)"
	@echo "make deploy     sam build && sam deploy (needs AWS; SAM_ENV_NAME=default|dev|prod)"

# Each target installs what it needs and no more (pyproject.toml's extras): make run and
# make serve only the poller and moto; make test the test tools (the SAM CLI, cfn-lint,
# pytest, ruff, matplotlib for the bench smoke test); make docs the site's theme.
# setuptools prints an "Editable installation" banner (a BuildBackendWarning) on every
# editable install: ignore that one warning by its text; errors and other warnings show.
PIP_INSTALL := PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install -q \
	--disable-pip-version-check

$(VENV)/.created:
	@echo "creating $(VENV) with $(PYTHON)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	touch $@

$(VENV)/.installed-local: $(VENV)/.created pyproject.toml src/poller/requirements.txt
	@echo "installing the poller and the local stack (moto) into $(VENV): about 145 MB, under a minute the first time"
	$(PIP_INSTALL) -e '.[local]'
	touch $@

$(VENV)/.installed: $(VENV)/.installed-local
	@echo "installing the test tools into $(VENV) (the SAM CLI, cfn-lint, pytest, ruff, matplotlib): about 430 MB more, a minute or two the first time"
	$(PIP_INSTALL) -e '.[test]'
	touch $@

venv: $(VENV)/.installed $(VENV)/.installed-docs

run: $(VENV)/.installed-local
	$(BIN)/python -m devstack run

serve: $(VENV)/.installed-local
	$(BIN)/python -m devstack serve

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test-unit: $(VENV)/.installed
	$(BIN)/pytest -m unit tests/unit

test-fast: $(VENV)/.installed
	$(BIN)/pytest -m "not slow"

test: $(VENV)/.installed lint
	$(BIN)/pytest

$(VENV)/.installed-bench: $(VENV)/.installed-local
	@echo "installing matplotlib into $(VENV) for the benchmark's plots"
	$(PIP_INSTALL) -e '.[bench]'
	touch $@

bench: $(VENV)/.installed-bench
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(VENV)-* .aws-sam .pytest_cache .ruff_cache $(DOCS_SITE_DIR)

-include mk/*.mk
