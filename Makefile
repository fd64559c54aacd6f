# One entry point for people and CI. Every target sets up what it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
LOCK := requirements-dev.lock
NODE_BIN := $(CURDIR)/node_modules/.bin
# The CDK CLI and the jsii runtime both run on the pinned Node 22 from package.json.
export PATH := $(NODE_BIN):$(PATH)
export JSII_NODE := $(NODE_BIN)/node
# Python caches the repository's modules in __pycache__ (git ignores it; no code asset ships it) even where the
# environment turns that off: without it every test worker and every subprocess compiles them from source again.
unexport PYTHONDONTWRITEBYTECODE

# The lock pins torch to PyTorch's CPU build (2.13.0+cpu), which PyPI does not carry. uv does not read pip's
# configuration: where pip is pointed at a directory holding that wheel (PIP_FIND_LINKS, space-separated), hand
# the same locations to uv (UV_FIND_LINKS, comma-separated); otherwise uv takes torch from PyTorch's CPU index.
comma := ,
space := $() $()
ifdef PIP_FIND_LINKS
export UV_FIND_LINKS ?= $(subst $(space),$(comma),$(strip $(PIP_FIND_LINKS)))
endif
ifndef UV_FIND_LINKS
export UV_TORCH_BACKEND ?= cpu
endif

ENV ?=
CDK_ENV_ARG := $(if $(ENV),--context env=$(ENV),)
# deploy/destroy/preflight refuse before doing anything unless ENV names a config/<env>.yaml.
ifneq ($(filter deploy destroy preflight,$(MAKECMDGOALS)),)
ifeq ($(ENV),)
$(error ENV is required: make $(firstword $(filter deploy destroy preflight,$(MAKECMDGOALS))) ENV=dev (a config/<env>.yaml name))
endif
ifeq ($(wildcard config/$(ENV).yaml),)
$(error no config/$(ENV).yaml: ENV names an environment file in config/)
endif
endif
# The stage of one environment, named like EnvironmentConfig.stage_name: sandbox-eu -> SandboxEu.
STAGE = $(shell $(PYTHON) -c 'import sys; print("".join(p.capitalize() for p in sys.argv[1].split("-")))' '$(ENV)')

PYTEST := $(PY) -m pytest -n 2 --dist loadgroup
MYPY_PATHS := app.py infra stacks lambdas dataset etl training_jobs serving twin scripts

# infra/ is also a folder: every target must be phony.
.PHONY: help setup lock synth demo twin test unit infra e2e lint bench cost docs diagram preflight deploy destroy clean

help:
	@echo "make setup   - install the locked Python environment (.venv) and the pinned Node/CDK CLI"
	@echo "make demo    - set up, synthesize every environment, run the local ML twin"
	@echo "make test    - the whole test suite; 'make unit', 'make infra', 'make e2e' run one part"
	@echo "make lint    - ruff, mypy, import contracts (import-linter), dependency check (deptry), actionlint"
	@echo "make synth   - synthesize all environments (ENV=prod for one)"
	@echo "make preflight ENV=dev - check that environment's AWS account (roles, quotas, bootstrap) before deploying"
	@echo "make deploy ENV=dev / make destroy ENV=dev - cdk deploy/destroy that environment's stacks"
	@echo "make lock    - re-resolve requirements*.txt into $(LOCK) (UPGRADE=1 to move unpinned packages)"
	@echo "make bench   - benchmarks, results under build/bench/"
	@echo "make cost    - synthesize, then the monthly cost per environment, idle and under load (ENV=prod for one)"
	@echo "make docs    - synthesize every environment, regenerate the generated docs: acknowledgement table, cost tables, diagrams"
	@echo "make diagram - architecture diagrams per layer from the synthesized prod templates (docs/diagrams/)"
	@echo "make clean   - remove build outputs and caches (keeps .venv and node_modules)"

# Also writes Spark's class-data archive (etl/spark_session.py) once, in a process of its own; the JVM's log4j
# lines go to build/spark-cds.log, shown only if that fails.
setup: $(VENV)/.installed node_modules/.installed $(VENV)/.optimized-bytecode
	@mkdir -p build && $(PY) -m etl.spark_session 2>build/spark-cds.log || { cat build/spark-cds.log >&2; exit 1; }

# cdk.json runs the app as `python -O` (docs/decisions/synth-without-runtime-type-checks.md), and uv writes the
# libraries' bytecode for plain python only: this writes the -O bytecode of everything the app imports, once per
# install (about 10 s), so that no synth compiles aws_cdk from source again (about 6 s each time, wherever
# PYTHONDONTWRITEBYTECODE is set).
$(VENV)/.optimized-bytecode: $(VENV)/.installed node_modules/.installed
	$(PY) -O -c "import app"
	@touch $@

# Bootstraps uv itself: the version and hashes pinned in the lock, installed with the venv's pip.
$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
		|| { echo "this project needs Python 3.11: make setup PYTHON=python3.11"; exit 1; }
	@echo "==> bootstrapping uv into $(VENV) (version and hashes from $(LOCK))"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip --version >/dev/null 2>&1 || $(PY) -m ensurepip --default-pip >/dev/null
	@awk '/^uv==/ {p = 1} p {print} p && !/\\$$/ {exit}' $(LOCK) \
		| $(PY) -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r /dev/stdin

# `uv pip sync` makes .venv exactly the lock (it also removes what the lock does not list). --compile-bytecode
# writes every package's .pyc once here, so no process compiles the libraries it imports from source (importing
# aws_cdk, torch, pandas, pyspark, moto and boto3 took 5.0 s without it, 2.5 s with it).
$(VENV)/.installed: $(LOCK) requirements.txt requirements-dev.txt | $(UV)
	@$(PYTHON) tools/check_lock.py requirements-dev.txt $(LOCK)
	@echo "==> installing $(LOCK) into $(VENV) (about a minute and a half from an empty cache)"
	$(UV) pip sync --python $(PY) --require-hashes --compile-bytecode $(LOCK)
	@touch $@

node_modules/.installed: package.json package-lock.json
	@echo "==> installing Node 22 and the CDK CLI into node_modules (package-lock.json)"
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Re-resolves with the current pins as preferences, so only what requirements*.txt changed moves (UPGRADE=1
# moves everything). The lock targets Linux x86_64 / CPython 3.11 wherever it is made, and replaces the old one
# only if torch resolved to the CPU build. torch's hash is that of the CPU wheel file it resolved: PyTorch
# publishes one file per version and platform, so an unmodified copy of it (a find-links directory) and PyTorch's
# CPU index give the same hash; any other file fails `make setup` with a hash mismatch instead of being installed.
lock: | $(UV)
	@mkdir -p build
	@cp $(LOCK) build/$(LOCK) 2>/dev/null || true
	$(UV) pip compile requirements-dev.txt --generate-hashes --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --custom-compile-command "make lock" \
		--output-file build/$(LOCK) $(if $(UPGRADE),--upgrade) >/dev/null
	@grep -q '^torch==[^ ]*+cpu ' build/$(LOCK) || { echo "torch did not resolve to the CPU build" \
		"(+cpu): set UV_FIND_LINKS to a location holding it, see README.md 'CPU torch'"; exit 1; }
	@cmp -s build/$(LOCK) $(LOCK) && echo "$(LOCK) unchanged" || mv build/$(LOCK) $(LOCK)

synth: setup
	cdk synth --quiet $(CDK_ENV_ARG)

demo: synth
	$(PY) -m infra.assembly_summary cdk.out
	$(MAKE) --no-print-directory twin

twin: setup
	$(PY) -m twin run

test: setup
	$(PYTEST) $(PYTEST_ARGS)

unit: setup
	$(PYTEST) tests/unit $(PYTEST_ARGS)

infra: setup
	$(PYTEST) tests/infra $(PYTEST_ARGS)

e2e: setup
	$(PYTEST) tests/e2e $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff check .
	$(PY) -m mypy $(MYPY_PATHS)
	$(VENV)/bin/lint-imports --no-logo
	$(PY) -m deptry . --config tools/deptry.toml
	$(VENV)/bin/actionlint

# Synthesizes ENV (the bootstrap version its stacks require is read from cdk.out), then checks its account with
# the caller's credentials: scripts/preflight.py, docs/deploy.md.
preflight: synth
	$(PY) -m scripts.preflight $(ENV)

# The estimate reads the templates just synthesized; load assumptions go in COST_ARGS, e.g.
# make cost COST_ARGS="--predictions-per-day 1000000" (python -m infra.cost --help lists them).
cost: synth
	$(PY) -m infra.cost --cdk-out cdk.out $(if $(ENV),--env $(ENV),) $(COST_ARGS)

deploy: setup
	cdk deploy --context env=$(ENV) "$(STAGE)/*" $(CDK_ARGS)

destroy: setup
	cdk destroy --context env=$(ENV) "$(STAGE)/*" $(CDK_ARGS)

bench: setup
	$(PY) benchmarks/bench_synth.py
	@for b in benchmarks/bench_etl.py benchmarks/bench_ml.py benchmarks/bench_drift.py; do \
		if [ -f $$b ]; then $(PY) $$b || exit 1; fi; done
	$(PY) benchmarks/bench_serving.py
	$(PY) benchmarks/bench_preprocess.py

# Synthesizes the environment the diagrams show (prod: infra/diagram/layers.py says why), writes one DOT file
# per layer and renders each to SVG with Graphviz compiled to WebAssembly (no system Graphviz needed).
# tests/infra/test_diagrams.py fails when the committed DOT no longer matches the templates.
diagram: setup
	cdk synth --quiet --context env=prod
	$(PY) -m infra.diagram cdk.out docs/diagrams --stage Prod
	$(NODE_BIN)/node tools/render_svg.mjs docs/diagrams/*.dot

# Every generated part of the docs from one synth of every environment and the delivery pipeline: the
# acknowledgement table (condensed across environments), the cost tables (README.md, docs/cost.md) and the
# diagrams (prod: all-environment and prod-only synths give the same DOT). Tests fail when a copy is stale.
docs: setup
	cdk synth --quiet --context delivery=pipeline
	$(PY) -m infra.compliance_table cdk.out docs/security-acknowledgements.md
	$(PY) -m infra.cost --cdk-out cdk.out --write-docs .
	$(PY) -m infra.diagram cdk.out docs/diagrams --stage Prod
	$(NODE_BIN)/node tools/render_svg.mjs docs/diagrams/*.dot

clean:
	rm -rf cdk.out build .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
