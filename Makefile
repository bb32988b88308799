# Two commands for a new machine: `make serve` and `make test`. Each installs
# what it needs into .venv first (once; again when the pins change).
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=
PYTEST_ARGS ?=

.PHONY: install browser serve test test-fast bench-overhead bench-accuracy bench-fairness bench-soak bench-scale lint docker-test

$(STAMP): pyproject.toml requirements/cpu-constraints.txt scripts/install.sh
	python3 -m venv $(VENV)
	. $(BIN)/activate && scripts/install.sh --engine cpu --extras embedded,bench,test --editable
	touch $(STAMP)

install: $(STAMP)

serve: install
	$(BIN)/ponder serve $(ARGS)

# The page tests drive Debian's chromium (scripts/install-browser.sh).
browser:
	scripts/install-browser.sh

test: install browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The edit-test loop: everything that needs no engine (tests/unit), in seconds.
test-fast: install
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

bench-overhead: install
	$(BIN)/ponder bench overhead $(ARGS)

bench-accuracy: install
	$(BIN)/ponder bench accuracy $(ARGS)

bench-fairness: install
	$(BIN)/ponder bench fairness $(ARGS)

bench-soak: install
	$(BIN)/ponder bench soak $(ARGS)

# Two vLLM replicas, the router and ponder: on a shared machine, inside
# /work/tools/engine-slot --both (or any wrapper that gives it two cores).
bench-scale: install
	$(BIN)/ponder bench scale $(ARGS)

# Docker (docker/): lint the Dockerfiles and compose file; build the CPU image
# on a local base, run it, call it with the openai client, stop it
# (scripts/docker-test.sh says what it installs and starts).
.PHONY: lint-docker

lint-docker: install
	VENV=$(VENV) scripts/docker-lint.sh

docker-test: install
	VENV=$(VENV) scripts/docker-test.sh
