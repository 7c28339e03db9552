# posttrain — the commands the README names. Everything runs from the project's own venv.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# State lives under .posttrain/ (gitignored); override POSTTRAIN_HOME to put it elsewhere.
export POSTTRAIN_HOME ?= $(CURDIR)/.posttrain
# Dagster reads the root dagster.yaml; its storage goes under $POSTTRAIN_HOME/dagster.
export DAGSTER_HOME := $(CURDIR)
export POSTTRAIN_DAGSTER_STORAGE ?= $(POSTTRAIN_HOME)/dagster
export RAY_USAGE_STATS_ENABLED := 0
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM ?= true

.PHONY: help install demo demo-capture demo-scale test test-fast ui bench lint typecheck data clean

help:  ## Show the commands.
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml setup.py $(wildcard csrc/*)
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or: make PYTHON=python3 ...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

install: $(STAMP)  ## Create .venv and install the pinned dependencies (requirements.lock).

demo: install  ## Materialize the whole asset graph on the shipped sample data.
	$(BIN)/python -m posttrain.demo

demo-capture: install  ## Capture demo: an agent through the proxy, late rewards, a new version.
	$(BIN)/python -m posttrain.demo_capture

demo-scale: install  ## The demo on local Postgres + S3 server + Ray cluster (started, then stopped).
	$(BIN)/python -m posttrain.demo_scale

# Test files run in parallel worker processes (pytest-xdist), a file's tests in one worker
# so module fixtures are built once. TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= 2

test: install  ## Run the test suite.
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

test-fast: install  ## Run the tests that start neither Ray nor Dagster runs.
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow"

ui: install  ## Open the Dagster UI on http://127.0.0.1:3000
	@mkdir -p $(POSTTRAIN_DAGSTER_STORAGE)
	$(BIN)/python -m posttrain.instance
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000

bench: install  ## Run the benchmarks (prints ratios against peer tools).
	$(BIN)/python bench/dedup.py
	$(BIN)/python bench/dedup.py --cli
	$(BIN)/python bench/tokenization.py
	$(BIN)/python bench/decontam.py
	$(BIN)/python bench/loader.py
	$(BIN)/python bench/show_memory.py
	$(BIN)/python bench/versions.py
	$(BIN)/python bench/proxy_overhead.py
	$(BIN)/python bench/scale.py

lint: install  ## ruff + mypy.
	$(BIN)/ruff check posttrain tests bench scripts
	$(BIN)/ruff format --check posttrain tests bench scripts
	$(BIN)/mypy

data: install  ## Regenerate the sample data in data/ (deterministic).
	$(BIN)/python scripts/make_sample_data.py

clean:  ## Delete the warehouse, Dagster storage and caches (keeps .venv).
	rm -rf .posttrain .pytest_cache .mypy_cache .ruff_cache
