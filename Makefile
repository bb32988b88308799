# Two commands for a new machine: `make serve` and `make test`. Each installs
# what it needs into .venv first (once; again when the pins change).
# `make help` lists every target.
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=
PYTEST_ARGS ?=
# Two pytest workers, a module at a time each, each worker's engines on a
# core of their own: a CPU engine computes on one core, and the other idles
# in a single process. WORKERS= runs the suite in one process.
WORKERS ?= -n 2 --dist loadscope

.PHONY: help install browser serve test test-fast results bench-overhead bench-accuracy \
	bench-fairness bench-soak bench-scale lint-docker docker-test

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  ARGS='...' passes options to ponder (serve, bench); PYTEST_ARGS='...' to pytest."

$(STAMP): pyproject.toml requirements/cpu-constraints.txt scripts/install.sh
	python3 -m venv $(VENV)
	. $(BIN)/activate && scripts/install.sh --engine cpu --extras embedded,bench,test --editable
	touch $(STAMP)

install: $(STAMP) ## install ponder, vLLM (CPU) and the test tools into .venv

serve: install ## serve the embedded model on 127.0.0.1:8000 (ARGS: ponder serve options)
	$(BIN)/ponder serve $(ARGS)

test: install ## every test: unit, engine, fleet and page tests (PYTEST_ARGS narrows)
	$(BIN)/python -m pytest $(WORKERS) $(PYTEST_ARGS)

test-fast: install ## the tests that need no engine (tests/unit), for the edit-test loop
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

browser: install ## optional: a Chromium for the page tests where none is found
	VENV=$(VENV) scripts/install-browser.sh

results: install ## regenerate docs/results.md and the README's results from bench/results
	$(BIN)/ponder bench report

bench-overhead: install ## ponder against vLLM's own server (ARGS: ponder bench overhead options)
	$(BIN)/ponder bench overhead $(ARGS)

bench-accuracy: install ## accuracy against tokens per strategy (ARGS: --runs, --problems, ...)
	$(BIN)/ponder bench accuracy $(ARGS)

bench-fairness: install ## small requests beside heavy ones
	$(BIN)/ponder bench fairness $(ARGS)

bench-soak: install ## a long run of mixed traffic; memory, descriptors, tasks
	$(BIN)/ponder bench soak $(ARGS)

# Two vLLM replicas, the router and ponder: it needs two cores of its own,
# e.g. `taskset -c 0,1 make bench-scale`, or their list in PONDER_FLEET_CORES.
bench-scale: install ## embedded engine against a remote one and two replicas (two cores)
	$(BIN)/ponder bench scale $(ARGS)

# Docker (docker/): lint the Dockerfiles and compose file; build the CPU image
# on a local base, run it, call it with the openai client, stop it
# (scripts/docker-test.sh says what it installs and starts).
lint-docker: install ## hadolint and `docker compose config` on docker/
	VENV=$(VENV) scripts/docker-lint.sh

docker-test: install ## build, run, call and stop the CPU image (installs Docker; root)
	VENV=$(VENV) scripts/docker-test.sh

# The GPU image (docker/Dockerfile) built on a local stand-in for vLLM's
# official image: PyPI's CUDA vllm at the pinned release (several GB; see
# scripts/docker-gpu-build.sh and docs/gpu.md). No GPU needed.
.PHONY: docker-gpu-build
docker-gpu-build: install
	VENV=$(VENV) scripts/docker-gpu-build.sh

# The GPU smoke test (docs/gpu.md), on a machine with an NVIDIA GPU: once,
# with network, `make gpu-install` (PyPI's CUDA vllm and ponder in
# $(GPU_VENV)); then `make gpu-smoke`, offline. Without a GPU it says so in
# one line and stops.
GPU_VENV ?= .venv-gpu
.PHONY: gpu-install gpu-smoke

gpu-install:
	python3 -m venv $(GPU_VENV)
	. $(GPU_VENV)/bin/activate && scripts/install.sh --engine gpu --extras embedded,bench,test --editable
	$(GPU_VENV)/bin/ponder prepare-model

gpu-smoke:
	@if [ -x $(GPU_VENV)/bin/ponder ]; then $(GPU_VENV)/bin/ponder bench gpu $(ARGS); \
	else $(MAKE) --no-print-directory install > /dev/null && $(BIN)/ponder bench gpu $(ARGS); fi
