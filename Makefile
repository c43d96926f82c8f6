# The two jobs of the README. Run them inside a virtual environment (python3 -m venv .venv && . .venv/bin/activate).
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo install install-dev lint test

## Install daisee and run the main job on the embedded chain.
demo: install
	daisee demo

install:
	$(PYTHON) -m pip install --quiet .

## Install the development toolchain (npm: solc-js, OpenZeppelin, anvil, ganache; pip: daisee[dev];
## Debian: the mosquitto broker the gateway tests start on loopback, chromium for the report's page).
install-dev:
	(command -v mosquitto || test -x /usr/sbin/mosquitto) >/dev/null && command -v chromium >/dev/null || \
		($(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto chromium)
	npm ci --no-audit --no-fund --loglevel=error
	$(PYTHON) -m pip install --quiet -e '.[dev]'

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy

## Install the toolchain, lint, type-check and run the whole test suite.
test: install-dev lint
	$(PYTHON) -m pytest
