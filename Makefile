# Ghaf's developer entry points. Every target creates .venv when it is missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# pyproject.toml declares ranges; constraints.txt pins the exact versions dev and CI use.
CONSTRAINTS := constraints.txt
# Named by pyproject.toml's checksum; a newer constraints.txt also reinstalls (by mtime).
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# torch==2.13.0 (pinned) is the CPU build that lies on these machines (no multi-GB download).
EXTRAS := dev,all,docs
BENCH_SIZE ?= full

.PHONY: demo server test lint unit pytest prepare bench bench-smoke bench-gpu audit clean services

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) -e '.[$(EXTRAS)]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/ghaf demo

# The governed control plane on the embedded defaults (docs/team.md): 127.0.0.1:8700.
server: $(STAMP)
	$(BIN)/ghaf init
	$(BIN)/ghaf server

# The README's test command: what CI runs (.ci/run adds only CI=true and the smoke benches).
test: lint prepare pytest

prepare: $(STAMP)
	@bash scripts/prepare_tests.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks deploy
	$(BIN)/ruff format --check src tests benchmarks deploy
	$(BIN)/hadolint deploy/docker/*.Dockerfile
	$(BIN)/mypy
	$(BIN)/bandit -q -c pyproject.toml -r src
	@bash scripts/check_unsafe_calls.sh

pytest: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=40

bench: $(STAMP)
	$(BIN)/python -m benchmarks --size $(BENCH_SIZE)

bench-smoke: $(STAMP)
	$(BIN)/python -m benchmarks --size smoke

bench-gpu: $(STAMP)
	$(BIN)/python -m pytest -m gpu -v
	$(BIN)/python -m benchmarks --size full --only gpu --only training

audit: $(STAMP)
	$(BIN)/python -m pip install -q pip-audit
	$(BIN)/pip-audit --strict

# The documentation site (mkdocs.yml) into site/, strict: a warning or a broken link fails.
# Its hooks generate the reference pages and render docs/reports/ (scripts/docs_reports.py).
.PHONY: docs
docs: $(STAMP)
	@$(BIN)/python -c "import mkdocs, material, mkdocstrings" 2>/dev/null || \
		$(BIN)/python -m pip install -q -c $(CONSTRAINTS) -e '.[docs]'
	$(BIN)/python -m mkdocs build --strict

services:
	bash scripts/start_services.sh

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
