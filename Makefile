# The two jobs of the README. Run them inside a virtual environment (python3 -m venv .venv && . .venv/bin/activate).
PYTHON ?= python3
# wait for another apt (a second install, unattended upgrades) instead of failing on its lock
APT_WAIT := -o DPkg::Lock::Timeout=600
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: brownie demo install install-dev lint test

## Install daisee and run the main job on the embedded chain.
demo: install
	daisee demo

install:
	$(PYTHON) -m pip install --quiet .

## Install the development toolchain (npm: solc-js, OpenZeppelin, anvil, ganache; pip: daisee[dev];
## Debian: the mosquitto broker the gateway tests start on loopback, chromium for the pages, PostgreSQL
## for the régie's store; the tests start their own clusters on loopback).
install-dev: brownie
	(command -v mosquitto || test -x /usr/sbin/mosquitto) >/dev/null && command -v chromium >/dev/null && \
		(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb) >/dev/null 2>&1 || \
		($(SUDO) apt-get $(APT_WAIT) update -qq && \
		 $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get $(APT_WAIT) install -y -qq mosquitto chromium postgresql)
	npm ci --no-audit --no-fund --loglevel=error
	$(PYTHON) -m pip install --quiet -e '.[dev]'

## Brownie for contract development, in its own virtual environment (eth-brownie pins exact versions,
## web3 7.16 among them), with daisee installed next to it for the scripts in scripts/.
BROWNIE_VENV := .venv-brownie

brownie: $(BROWNIE_VENV)/bin/brownie

$(BROWNIE_VENV)/bin/brownie: pyproject.toml
	$(PYTHON) -m venv $(BROWNIE_VENV)
	$(BROWNIE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BROWNIE_VENV)/bin/python -m pip install --quiet eth-brownie==1.22.2 -e .
	touch $@

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy

## Install the toolchain, lint, type-check and run the whole test suite.
test: install-dev lint
	$(PYTHON) -m pytest
