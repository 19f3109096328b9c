# SAM targets, included by the Makefile (which defines VENV, BIN, PY313, PYTHON and the
# $(VENV)/.installed target). What each one checks is explained in docs/deploy.md and
# docs/template.md.
#
#   make validate      sam validate --lint, then the template tests (translation, least
#                      privilege, schedule, queues, alarms, samconfig), no AWS account
#   make scan          checkov on the template, before and after the SAM transform
#   make build         sam build for Lambda (arm64) into .aws-sam/build
#   make build-host    the same template built for this machine's architecture into
#                      .aws-sam/build-host (the arm64 build's native wheels cannot load here);
#                      it never writes .aws-sam/build, which a plain `sam deploy` ships
#   make invoke-built  the stand-in for `sam local invoke` (which needs Docker): the host
#                      build's handler (the template's Handler) invoked once with
#                      events/scheduled-event.json on python3.13 with only the built
#                      dependencies plus boto3, against the local stack (`make serve`'s, or
#                      one of its own with the sample messages); prints the run summary
#   make deploy        sam build && sam deploy --config-env $(SAM_ENV_NAME) (needs AWS)

SAM := $(BIN)/sam
# sam build for python3.13 needs a real python3.13 first on PATH (pyenv's shim fails SAM's
# binary validation).
SAM_RUN := SAM_CLI_TELEMETRY=0 $(if $(PY313),PATH="$(dir $(PY313)):$$PATH")
SAM_BUILD_DIR := .aws-sam/build
SAM_HOST_BUILD_DIR := .aws-sam/build-host
HOST_ARCH := $(if $(filter aarch64 arm64,$(shell uname -m)),arm64,x86_64)
SAM_ENV_NAME ?= default

# checkov pins an older boto3 than the dev tools, so it gets a venv of its own.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := $(VENV)-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov

# What the Lambda runtime provides: python3.13 with boto3 (the dev venv's version) and
# nothing else, so that the built function can only import what it packages.
LAMBDA_VENV := $(VENV)-lambda

.PHONY: validate scan checkov sam-requirements build build-host invoke-built deploy

$(CHECKOV_VENV)/.installed: mk/sam.mk
	@echo "installing checkov into $(CHECKOV_VENV) for the template scan: about 270 MB, a minute the first time"
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install -q "checkov==$(CHECKOV_VERSION)"
	touch $@

checkov: $(CHECKOV_VENV)/.installed

# `make test` runs tests/template/test_template_checkov.py too, so it installs checkov first.
test: $(CHECKOV_VENV)/.installed

validate: $(VENV)/.installed
	$(SAM_RUN) $(SAM) validate --lint --template-file template.yaml
	$(BIN)/pytest -q tests/template --ignore=tests/template/test_template_checkov.py

scan: $(VENV)/.installed $(CHECKOV_VENV)/.installed
	$(CHECKOV) --file template.yaml --framework cloudformation --skip-download --compact --quiet
	CHECKOV=$(CHECKOV) $(BIN)/pytest -q tests/template/test_template_checkov.py

# sam build installs the requirements.txt at the root of CodeUri (src/poller/) and, without one,
# silently packages no dependencies.
SAM_REQUIREMENTS := src/poller/requirements.txt

sam-requirements:
	@test -f $(SAM_REQUIREMENTS) || { echo "$(SAM_REQUIREMENTS) is missing: sam build would package no dependencies"; exit 1; }

build: $(VENV)/.installed sam-requirements
	$(SAM_RUN) $(SAM) build --template-file template.yaml --build-dir $(SAM_BUILD_DIR)

build-host: $(VENV)/.installed sam-requirements
	$(SAM_RUN) $(SAM) build --template-file template.yaml --build-dir $(SAM_HOST_BUILD_DIR) \
		--parameter-overrides Architecture=$(HOST_ARCH)

$(LAMBDA_VENV)/.installed: $(VENV)/.installed
	@test -n "$(PY313)" || { echo "no python3.13 on this machine: the Lambda runtime is python3.13"; exit 1; }
	@echo "creating $(LAMBDA_VENV): python3.13 with only boto3, as the Lambda runtime provides it"
	$(PY313) -m venv $(LAMBDA_VENV)
	$(LAMBDA_VENV)/bin/python -m pip install -q --disable-pip-version-check \
		"boto3==$$($(BIN)/python -c 'import importlib.metadata as m; print(m.version("boto3"))')"
	touch $@

invoke-built: build-host $(LAMBDA_VENV)/.installed
	$(BIN)/python -m devstack.built --build-dir $(SAM_HOST_BUILD_DIR) --python $(LAMBDA_VENV)/bin/python

deploy: build
	$(SAM_RUN) $(SAM) deploy --config-env $(SAM_ENV_NAME) --template-file $(SAM_BUILD_DIR)/template.yaml
