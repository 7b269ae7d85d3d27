# heatsync: `make demo` on a fresh clone, `make test` for the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SANDBOX_PORT ?= 8765
AMOCRM_PORT ?= 8766
UI_PORT ?= 3000
SANDBOX_STATE := .heatsync/sandbox/hubspot.json
AMOCRM_STATE := .heatsync/sandbox/amocrm.json
DEMO_ARGS = --port $(SANDBOX_PORT) --state $(SANDBOX_STATE) --amocrm-port $(AMOCRM_PORT) --amocrm-state $(AMOCRM_STATE)
export DAGSTER_HOME ?= $(CURDIR)/.heatsync/dagster

.PHONY: help install demo ui sandbox sandbox-amocrm test lint format clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install heatsync with its dev tools (pinned by constraints.txt)

demo: $(STAMP)  ## run the whole pipeline once on the bundled sandbox portals (HubSpot and amoCRM)
	$(PY) -m sandbox.demo $(DEMO_ARGS)

ui: $(STAMP)  ## open the Dagster UI (port UI_PORT, default 3000) on both sandbox portals and the demo's run history
	$(PY) -m sandbox.demo $(DEMO_ARGS) --ui --ui-port $(UI_PORT)

sandbox: $(STAMP)  ## serve the sandbox HubSpot alone (prints base URL and token)
	$(PY) -m sandbox.hubspot serve --port $(SANDBOX_PORT) --state $(SANDBOX_STATE)

sandbox-amocrm: $(STAMP)  ## serve the sandbox amoCRM alone (prints base URL and credentials)
	$(PY) -m sandbox.amocrm serve --port $(AMOCRM_PORT) --state $(AMOCRM_STATE)

test: $(STAMP) lint  ## lint, type-check and run the whole test suite
	$(PY) -m pytest -q

lint: $(STAMP)  ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)  ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:  ## remove the virtualenv and all local state (.heatsync: store, sandbox portal, run history)
	rm -rf $(VENV) .heatsync
