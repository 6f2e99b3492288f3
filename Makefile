# Two commands: `make serve` sets up and starts the server; `make test` installs what the tests
# need and runs them all. Both work on a fresh Debian machine with Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# What the end-to-end tests drive besides the Python tools: real R (with a compiler for the
# package with C code, and remotes for install_version) and curl.
TEST_PACKAGES := r-base-core r-base-dev r-cran-remotes curl
TEST_COMMANDS := Rscript cc curl

.PHONY: serve test lint venv test-deps system-deps system-test-deps clean

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

# apt-get runs only when a command is missing, and `apt-get update` once before it.
system-test-deps:
	@missing=""; for c in $(TEST_COMMANDS); do command -v $$c >/dev/null || missing=1; done; \
	 Rscript -e 'quit(status = !requireNamespace("remotes", quietly = TRUE))' 2>/dev/null || missing=1; \
	 if [ -n "$$missing" ]; then \
	   $(SUDO) apt-get update && \
	   DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends $(TEST_PACKAGES); \
	 fi

$(VENV)/.test-deps: setup.cfg | venv system-test-deps
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
