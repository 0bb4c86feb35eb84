# Self-bootstrapping targets: every target creates .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch goes in first so pip never resolves a multi-GB CUDA build; GPU users override it,
# e.g. make run TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu124"
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= test,onnx
# Every install is pinned to the tested tree (torch excepted); `make lock` rewrites the file.
CONSTRAINTS ?= constraints.txt
LOCK_EXTRAS ?= test,onnx,dev,s3,torchserve
PYTEST_ARGS ?=

# Ray settings for the platform process tree (see docs/architecture.md, "Ingress").
# FAST_INGRESS=1 turns on Ray Serve's HAProxy ingress with throughput-optimized handles.
FAST_INGRESS ?= 1
export RAY_USAGE_STATS_ENABLED ?= 0
export RAY_AUTH_MODE ?= disabled
export RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S ?= 2
ifeq ($(FAST_INGRESS),1)
export RAY_SERVE_ENABLE_HA_PROXY ?= 1
export RAY_SERVE_THROUGHPUT_OPTIMIZED ?= 1
# Replay a request whose replica closed the connection without answering (SIGKILLed) on another
# replica, besides connect failures; the second line (Ray writes this value into its HAProxy
# config as it is) makes HAProxy hold each request whole before it picks a replica, which a
# replay needs (docs/architecture.md, "Ingress mode"; tests/conftest.py::HAPROXY_RETRY_ON has the same value).
define HAPROXY_RETRY_ON
conn-failure empty-response
    option http-buffer-request
endef
export RAY_SERVE_HAPROXY_RETRY_ON ?= $(HAPROXY_RETRY_ON)
endif

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  %-12s %s\n", $$1, $$2}'

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS) | $(BIN)/activate
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e ".[$(EXTRAS)]"
	touch $@

venv: $(VENV)/.installed ## Create .venv and install the platform with test extras

lock: | $(BIN)/activate ## Rewrite constraints.txt from $(VENV) after a dependency change
	$(BIN)/pip install -q $(TORCH_SPEC)
	$(BIN)/pip install -q -e ".[$(LOCK_EXTRAS)]"
	$(BIN)/pip check
	$(BIN)/python scripts/lock_constraints.py --extras $(LOCK_EXTRAS) --out constraints.txt

run: venv ## Start the platform: serve run serve_config.yaml (http://127.0.0.1:8080)
	PYTHONPATH=$(CURDIR) $(BIN)/serve run serve_config.yaml

test: venv ## Run the whole test suite (unit, integration, Ray Serve, real clients)
	PYTHONPATH=$(CURDIR) $(BIN)/python scripts/run_tests.py $(PYTEST_ARGS)

drills: venv ## Drill-platform tests: SIGKILLs, PostgreSQL restart, other-mode deletes, README curls
	PLATFORM_DRILLS=1 PYTHONPATH=$(CURDIR) $(BIN)/python -m pytest -q -rP tests/reliability \
		tests/compat/test_readme_curls.py $(PYTEST_ARGS)

test-unit: venv ## Unit tier only (no Ray, no network)
	PYTHONPATH=$(CURDIR) $(BIN)/python -m pytest -q tests/unit $(PYTEST_ARGS)

FUZZ_MINUTES ?= 10
fuzz: venv ## Fuzz the whole OpenAPI document longer than make test does (FUZZ_MINUTES=10)
	PYTHONPATH=$(CURDIR) $(BIN)/python -m tests.fuzz --minutes $(FUZZ_MINUTES) $(FUZZ_ARGS)
.PHONY: fuzz

bench: venv ## Run the benchmarks and print ratio tables
	PYTHONPATH=$(CURDIR) $(BIN)/python -m bench $(BENCH_ARGS)

lint: venv ## ruff, mypy and import-linter
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e ".[dev]"
	$(BIN)/ruff check control_plane deployments tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy

clean: ## Remove the virtualenv and local state
	rm -rf $(VENV) var

.PHONY: help venv lock run test drills test-unit bench lint clean
