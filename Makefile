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

.PHONY: help install demo ui serve sandbox sandbox-amocrm report-screenshot test lint format clean

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

serve: $(STAMP)  ## Dagster webserver + daemon on PostgreSQL (deploy/dagster.yaml, HEATSYNC_POSTGRES_URL), UI on UI_PORT; Ctrl-C stops both
	$(PY) -m deploy.serve --port $(UI_PORT)

sandbox: $(STAMP)  ## serve the sandbox HubSpot alone (prints base URL and token)
	$(PY) -m sandbox.hubspot serve --port $(SANDBOX_PORT) --state $(SANDBOX_STATE)

sandbox-amocrm: $(STAMP)  ## serve the sandbox amoCRM alone (prints base URL and credentials)
	$(PY) -m sandbox.amocrm serve --port $(AMOCRM_PORT) --state $(AMOCRM_STATE)

REPORT_PORTAL ?= hubspot-sandbox
REPORT_HTML := .heatsync/demo/manager-report-$(REPORT_PORTAL).html
CHROMIUM ?= chromium
report-screenshot: $(STAMP)  ## `heatsync report` on the demo's store (run `make demo` first), shot in headless Chromium to docs/img/manager-report.png
	@test -f .heatsync/demo/portals.yaml || { echo "no demo store: run make demo first" >&2; exit 2; }
	@command -v $(CHROMIUM) >/dev/null || { echo "needs Chromium: apt-get install -y chromium" >&2; exit 2; }
	HEATSYNC_HOME=.heatsync/demo HEATSYNC_PORTALS=.heatsync/demo/portals.yaml \
		$(VENV)/bin/heatsync report --portal $(REPORT_PORTAL) --out $(REPORT_HTML)
	@mkdir -p docs/img
	profile=$$(mktemp -d) && $(CHROMIUM) --headless --no-sandbox --disable-gpu \
		--disable-background-networking --disable-component-update --disable-sync --no-first-run \
		--user-data-dir=$$profile --screenshot=$(CURDIR)/docs/img/manager-report.png \
		--window-size=1200,1800 file://$(CURDIR)/$(REPORT_HTML) 2>/dev/null; \
		status=$$?; rm -rf $$profile; exit $$status

test: $(STAMP) lint  ## lint, type-check and run the whole test suite (4 processes)
	$(PY) -m pytest -q -n 4

lint: $(STAMP)  ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)  ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:  ## remove the virtualenv and all local state (.heatsync: store, sandbox portal, run history)
	rm -rf $(VENV) .heatsync
