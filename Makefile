# One command surface for people and CI alike. `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help setup system-deps run test test-unit lint bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

# Strict editable mode links every module under its import name (relay_shared
# is shared/, ...), so mypy and editors resolve them. A folder's time changes
# when a module is added, renamed or removed in it: then the links are made again.
PACKAGE_DIRS := $(shell find shared services -type d -not -name __pycache__)

$(STAMP): pyproject.toml $(PACKAGE_DIRS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]' --config-settings editable_mode=strict
	touch $(STAMP)

setup: $(STAMP) ## Create .venv and install the relay with its test tools

system-deps: ## Install Orthanc, its DICOMweb plugin, dcmtk and gdcm tools if missing (Debian, root)
	bash tests/support/install-system-deps.sh

run: setup ## Run the whole relay on embedded defaults (SQLite, in-process bus, ./var/outbox)
	$(BIN)/relay up

test: setup system-deps ## Run every test: unit, integration (RabbitMQ, PostgreSQL, Orthanc, dcmtk) and e2e
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-unit: setup ## Only the tests that need nothing running
	$(BIN)/pytest -q -m "not rabbitmq and not postgres and not orthanc and not dcmtk and not e2e and not gcs and not s3 and not podman and not cluster and not oidc and not rsyslog"

lint: setup ## Ruff and mypy
	$(BIN)/ruff check shared services tests
	# By import name: as files, shared/settings.py would be a second module beside relay_shared.settings.
	$(BIN)/mypy -p relay_shared -p relay_ingest -p relay_deid -p relay_sender -p relay_api -p relay_cli

bench: setup system-deps ## De-identification throughput against pydicom and gdcmanon
	$(BIN)/python bench/deid_bench.py

clean: ## Remove the virtualenv and the local data folder
	rm -rf $(VENV) var
