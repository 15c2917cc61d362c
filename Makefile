# WhatsApp AI assistant: every entry point. `make demo` and `make test` do their own set-up.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Python 3.13 (the Lambda runtime): the first that really runs, from PATH, then pyenv's versions
# (a pyenv shim on PATH may exist without 3.13 being selected).
PYTHON313 ?= $(shell for p in "$$(command -v python3.13)" $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.13*/bin/python3.13 2>/dev/null | sort -V -r); do \
  [ -n "$$p" ] && "$$p" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null && { echo "$$p"; break; }; done)
ifeq ($(strip $(PYTHON313)),)
$(error Python 3.13 not found: put python3.13 on PATH or install it with `pyenv install 3.13`)
endif
PY313_BIN := $(dir $(PYTHON313))

VENV := .venv
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
UV_VENV := .venv-uv
UV := $(UV_VENV)/bin/uv
PY := $(VENV)/bin/python
SAM := PATH="$(PY313_BIN):$$PATH" SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: help test lint typecheck unit e2e validate security build demo local chat doctor conversations sam-local bench lock clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# ----------------------------------------------------------------- environments
$(UV):
	$(PYTHON313) -m venv $(UV_VENV)
	$(UV_VENV)/bin/pip install --quiet 'uv==0.13.9'

$(VENV)/.synced: requirements/dev.lock | $(UV)
	$(UV) venv --quiet --allow-existing -p $(PYTHON313) $(VENV)
	$(UV) pip sync --quiet -p $(PY) requirements/dev.lock
	touch $@

$(SAM_VENV)/.synced: requirements/sam.lock | $(UV)
	$(UV) venv --quiet --allow-existing -p $(PYTHON313) $(SAM_VENV)
	$(UV) pip sync --quiet -p $(SAM_VENV)/bin/python requirements/sam.lock
	touch $@

$(CHECKOV_VENV)/.synced: requirements/checkov.lock | $(UV)
	$(UV) venv --quiet --allow-existing -p $(PYTHON313) $(CHECKOV_VENV)
	$(UV) pip sync --quiet -p $(CHECKOV_VENV)/bin/python requirements/checkov.lock
	touch $@

# In the Lambda Python runtime already (the X-Ray SDK pulls botocore in): never bundled in the layer.
RUNTIME_PROVIDED := boto3 botocore s3transfer urllib3 python-dateutil six

lock: | $(UV) ## re-resolve every lock file (layer requirements included)
	$(UV) pip compile --quiet --python-version 3.13 $(RUNTIME_PROVIDED:%=--no-emit-package %) \
	  requirements/runtime.in -o requirements/runtime.lock
	cp requirements/runtime.lock layers/wa_assistant/requirements.txt
	$(UV) pip compile --quiet --python-version 3.13 requirements/dev.in -o requirements/dev.lock
	$(UV) pip compile --quiet --python-version 3.13 requirements/sam.in -o requirements/sam.lock
	$(UV) pip compile --quiet --python-version 3.13 requirements/checkov.in -o requirements/checkov.lock

# ----------------------------------------------------------------- checks
test: lint typecheck validate security unit e2e ## everything CI runs: lint, types, template checks, scans, unit and end-to-end tests

lint: $(VENV)/.synced ## ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(VENV)/.synced ## mypy (strict); each function's app.py on its own, as Lambda loads it
	$(VENV)/bin/mypy layers/wa_assistant/wa_assistant local_stack ops scripts tests benchmarks
	for fn in functions/*/; do $(VENV)/bin/mypy $$fn/app.py; done

unit: $(VENV)/.synced ## unit and handler tests (moto in-process, respx)
	$(PY) -m pytest -m "not e2e" -q

e2e: $(VENV)/.synced ## end-to-end, fault and load tests on the local stack
	$(PY) -m pytest -m e2e -q

validate: $(VENV)/.synced $(SAM_VENV)/.synced ## cfn-lint and sam validate --lint
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM) validate --lint
	$(SAM_VENV)/bin/python scripts/check_transformed_template.py

security: $(VENV)/.synced $(CHECKOV_VENV)/.synced ## checkov on the template, pip-audit on the locked dependencies
	$(CHECKOV_VENV)/bin/checkov --quiet --compact --skip-download --framework cloudformation -f template.yaml
	$(PY) scripts/audit.py

build: $(SAM_VENV)/.synced ## sam build (Python 3.13 on PATH)
	$(SAM) build

# ----------------------------------------------------------------- local stack
demo: $(VENV)/.synced ## a scripted WhatsApp conversation through the local stack
	$(PY) -m local_stack.demo

local: $(VENV)/.synced ## the local stack in the foreground until Ctrl-C
	$(PY) -m local_stack

chat: $(VENV)/.synced ## type messages as a WhatsApp user against a running `make local`
	$(PY) -m local_stack.chat

# ----------------------------------------------------------------- operators
# The region of a deployed stack is the user's (AWS_REGION, AWS_DEFAULT_REGION, samconfig.toml,
# the profile), not the us-east-1 this Makefile sets for the local tools when none is set.
doctor: $(VENV)/.synced ## check every link from Meta to the model: STACK_NAME=<stack> [PHONE_NUMBER_ID= WABA_ID= REGION=], else `make local`
	$(if $(filter file,$(origin AWS_DEFAULT_REGION)),env -u AWS_DEFAULT_REGION) $(PY) -m ops.doctor \
	  $(if $(STACK_NAME),--stack-name '$(STACK_NAME)') $(if $(REGION),--region '$(REGION)') \
	  $(if $(PHONE_NUMBER_ID),--phone-number-id '$(PHONE_NUMBER_ID)') $(if $(WABA_ID),--waba-id '$(WABA_ID)')

conversations: $(VENV)/.synced ## paused/opted-out conversations: [STACK_NAME=<stack> REGION=] ARGS='list|pause <id>|resume <id>'
	$(if $(filter file,$(origin AWS_DEFAULT_REGION)),env -u AWS_DEFAULT_REGION) $(PY) -m ops.conversations \
	  $(if $(STACK_NAME),--stack-name '$(STACK_NAME)') $(if $(REGION),--region '$(REGION)') $(or $(ARGS),list)

sam-local: $(VENV)/.synced $(SAM_VENV)/.synced ## sam build + sam local invoke of every function in SAM's emulator
	$(PY) scripts/sam_local_check.py

bench: $(VENV)/.synced $(SAM_VENV)/.synced ## benchmarks -> docs/benchmarks.md
	$(SAM) build
	$(PY) -m benchmarks

clean: ## remove environments and build output
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) $(UV_VENV) .aws-sam .local-stack
