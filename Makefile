# Two commands: `make serve` sets up and starts the server; `make test` installs what the tests
# need and runs them all. Both work on a fresh Debian machine with Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: serve test lint venv test-deps system-deps clean

# Debian ships venv and ensurepip in python3-venv; install it only when it is missing.
system-deps:
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  $(SUDO) apt-get update && $(SUDO) apt-get install -y python3-venv; }

$(BIN)/repo: setup.cfg pyproject.toml | system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

venv: $(BIN)/repo

serve: venv
	$(BIN)/repo serve

$(VENV)/.test-deps: setup.cfg | venv
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

test-deps: $(VENV)/.test-deps

test: test-deps lint
	$(BIN)/python -m pytest

lint: test-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) *.egg-info
