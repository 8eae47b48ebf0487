# Hotline: `make run` and `make test` do all set-up on a fresh Debian 12 machine (as root,
# Python 3.11): apt packages, a .venv, the package and its extras. A second call is quick:
# each step is skipped when its stamp is newer than what it depends on.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMPS := .make

# System packages: speech (espeak-ng, sox), SIP test clients, browser tests, PostgreSQL for
# storage tests, Kamailio and Redis for the multi-node tests (tests/scale), graphviz for
# `hotline flows graph`, a CJK font so graphs, charts and page
# screenshots show Chinese (not boxes), Python venv/headers for builds.
APT_PACKAGES := python3-venv python3-dev build-essential espeak-ng libespeak-ng1 sox \
	sip-tester baresip chromium chromium-driver postgresql graphviz fonts-noto-cjk \
	ca-certificates kamailio redis-server

.PHONY: run test lint setup clean

# `run` pulls the configured Vosk models when missing and the network answers (checksum-
# verified, atomic); without them it says so in one line and calls are keypad-only.
# `test` never downloads anything.
run: setup
	@$(BIN)/hotline models ensure
	$(BIN)/hotline serve

test: setup
	$(BIN)/ruff check app tests bench
	$(BIN)/lint-imports --no-logo .importlinter
	$(BIN)/mypy
	@# The multi-node suite (`-m scale`: Kamailio, Redis, PostgreSQL, several nodes; ~6 min,
	@# mostly waiting on timers) runs beside the rest, in its own pytest and temp folder.
	@export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1; scale_log=$$(mktemp); \
	$(BIN)/pytest -q -ra -m scale --basetemp=$$(mktemp -d)/scale tests/scale >$$scale_log 2>&1 & \
	scale=$$!; \
	echo "pytest -q -ra -m 'not scale'   (and beside it: pytest -m scale tests/scale)"; \
	$(BIN)/pytest -q -ra -m "not scale"; rest=$$?; \
	wait $$scale; scaled=$$?; \
	echo "--- the multi-node suite (pytest -m scale tests/scale), run beside the rest:"; \
	cat $$scale_log; rm -f $$scale_log; \
	test $$rest = 0 && test $$scaled = 0

lint: setup
	$(BIN)/ruff check app tests bench
	$(BIN)/lint-imports --no-logo .importlinter
	$(BIN)/mypy

setup: $(STAMPS)/apt $(STAMPS)/venv

$(STAMPS)/apt: Makefile
	@mkdir -p $(STAMPS)
	@missing=$$(for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "apt: installing $$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "need root to install: $$missing" >&2; exit 1; fi; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@touch $@

$(STAMPS)/venv: pyproject.toml $(STAMPS)/apt
	@mkdir -p $(STAMPS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip wheel setuptools
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

clean:
	rm -rf $(STAMPS) $(VENV) .mypy_cache .ruff_cache .import_linter_cache .grimp_cache
