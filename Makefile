# One entry point for people and CI. Every target sets up what it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
NODE_BIN := $(CURDIR)/node_modules/.bin
# The CDK CLI and the jsii runtime both run on the pinned Node 22 from package.json.
export PATH := $(NODE_BIN):$(PATH)
export JSII_NODE := $(NODE_BIN)/node
export PYTHONDONTWRITEBYTECODE := 1
ENV ?=
CDK_ENV_ARG := $(if $(ENV),--context env=$(ENV),)

.PHONY: help setup synth demo twin test test-fast lint bench clean

help:
	@echo "make demo   - set up, synthesize every environment, run the local ML twin"
	@echo "make test   - set up and run the whole test suite"
	@echo "make synth  - synthesize all environments (ENV=prod for one)"
	@echo "make lint   - ruff + mypy"
	@echo "make bench  - benchmarks, results under build/bench/"

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

synth: setup
	cdk synth --quiet $(CDK_ENV_ARG)

demo: synth
	$(PY) -m infra.assembly_summary cdk.out
	$(MAKE) --no-print-directory twin

twin: setup
	$(PY) -m twin run

test: setup
	$(PY) -m pytest -n 2 --dist loadgroup

lint: setup
	$(PY) -m ruff check .
	$(PY) -m mypy app.py infra stacks lambdas training_jobs

bench: setup
	$(PY) benchmarks/bench_synth.py
	@for b in benchmarks/bench_etl.py benchmarks/bench_ml.py; do \
		if [ -f $$b ]; then $(PY) $$b || exit 1; fi; done

clean:
	rm -rf cdk.out build .pytest_cache .mypy_cache .ruff_cache
