# Two commands: `make serve` sets up and starts the server; `make test` installs what the tests
# need and runs them all. Both work on a fresh Debian machine with Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# What the end-to-end tests drive besides the Python tools: real R (with a compiler for the
# package with C code, and remotes for install_version), curl, Debian's Chromium for the
# browser tests (Playwright drives it; it never downloads a browser of its own), and what the
# benchmark needs, which its smoke run in the tests needs too: nginx, wrk and htpasswd
# (apache2-utils). nginx lives in /usr/sbin, outside a non-root user's PATH. The scale stack
# (pytest --stack=scale, and test_postgres.py on either) starts PostgreSQL's server binaries,
# which Debian keeps outside PATH, in /usr/lib/postgresql/<version>/bin. `file` tells the
# binary's test what dist/repo is.
BENCH_PACKAGES := nginx wrk apache2-utils
BENCH_COMMANDS := nginx wrk htpasswd
TEST_PACKAGES := r-base-core r-base-dev r-cran-remotes curl chromium fonts-dejavu-core \
  postgresql file $(BENCH_PACKAGES)
TEST_COMMANDS := Rscript cc curl chromium file $(BENCH_COMMANDS)

.PHONY: serve test lint venv test-deps system-deps system-test-deps dist binary clean

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
	@missing=""; for c in $(TEST_COMMANDS); do PATH="$$PATH:/usr/sbin" command -v $$c >/dev/null || missing=1; done; \
	 Rscript -e 'quit(status = !requireNamespace("remotes", quietly = TRUE))' 2>/dev/null || missing=1; \
	 ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing=1; \
	 if [ -n "$$missing" ]; then \
	   $(SUDO) apt-get update && \
	   DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends $(TEST_PACKAGES); \
	 fi

$(VENV)/.test-deps: setup.cfg | venv system-test-deps
	$(BIN)/python -m pip install --quiet -e '.[test,scale]'
	touch $@

test-deps: $(VENV)/.test-deps

# Every test on the embedded default (SQLite and a blob folder), and beside it the e2e suite
# again on the scale stack (a throwaway PostgreSQL and an S3 server, started by the tests):
# the two run at once, each mostly waiting on its servers and clients, and the second's output
# follows the first's. The unit tests of PostgreSQL and S3 themselves (test_postgres.py,
# test_s3blobs.py) run in the first; the whole unit suite on the scale stack is
# `pytest --stack=scale tests/unit`, left out here for time (each of its tests starts an app).
SCALE_LOG := test-artifacts/scale-e2e.log

test: test-deps lint dist binary
	@mkdir -p test-artifacts
	@$(BIN)/python -m pytest -p no:cacheprovider --stack=scale tests/e2e > $(SCALE_LOG) 2>&1 & \
	  scale=$$!; $(BIN)/python -m pytest; embedded=$$?; wait $$scale; status=$$?; \
	  echo "--- the e2e suite on PostgreSQL + S3 (pytest --stack=scale tests/e2e) ---"; \
	  cat $(SCALE_LOG); [ $$embedded = 0 ] && [ $$status = 0 ]

lint: test-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# What the zipapp and the binary are made of.
APP_SOURCES := setup.cfg pyproject.toml app.py $(wildcard schema*.sql) \
  $(shell find repo templates static -type f -not -path '*/__pycache__/*')

# One self-contained executable: `python3 dist/repo.pyz serve` on a machine with only Python.
# The staged tree puts the schemas, templates/ and static/ inside the package.
dist/repo.pyz: $(APP_SOURCES) | venv
	rm -rf build/dist dist/repo.pyz && mkdir -p build/dist dist
	cp -r repo setup.cfg pyproject.toml README.md build/dist/
	cp -r schema.sql schema-postgres.sql templates static build/dist/repo/
	find build/dist -name __pycache__ -prune -exec rm -rf {} +
	$(BIN)/python -m pip install --quiet shiv
	$(BIN)/shiv --quiet --reproducible -c repo -p '/usr/bin/env python3' -o $@ ./build/dist

dist: dist/repo.pyz

# PyInstaller, and the extras the binary carries besides the app.
$(VENV)/.binary-deps: setup.cfg | venv
	$(BIN)/python -m pip install --quiet -e '.[scale,keyring]' pyinstaller
	touch $@

# One executable with Python inside: `dist/repo serve` on a machine with no Python at all
# (PyInstaller, one-file mode; freeze/repo.spec says what goes in and why). Frozen from a
# staged copy, like the zipapp: the schemas, templates/ and static/ inside the package.
# PYTHONHASHSEED fixes the order of sets frozen into the bytecode (PyInstaller's advice for
# reproducible builds).
dist/repo: $(APP_SOURCES) freeze/repo.spec freeze/main.py | $(VENV)/.binary-deps
	rm -rf build/binary dist/repo && mkdir -p build/binary/src dist
	cp -r repo build/binary/src/
	cp -r schema*.sql templates static build/binary/src/repo/
	find build/binary/src -name __pycache__ -prune -exec rm -rf {} +
	PYTHONHASHSEED=0 $(BIN)/pyinstaller --noconfirm --log-level WARN --distpath dist \
	  --workpath build/binary/work freeze/repo.spec -- --source build/binary/src

binary: dist/repo

clean:
	rm -rf $(VENV) *.egg-info build dist

# `make bench` (bench/README.md): repo against pypiserver, devpi and a static nginx, one table.
# Its Debian tools come with the test tools (BENCH_PACKAGES above); `make bench
# BENCH_ARGS=--quick` is a small run for iterating.
BENCH_ARGS ?=

.PHONY: bench

bench: test-deps
	PATH="$$PATH:/usr/sbin" $(BIN)/python -m bench $(BENCH_ARGS)
