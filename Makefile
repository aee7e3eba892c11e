# leadscore: `make demo` runs the main job on the embedded default; `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LS := $(VENV)/bin/leadscore
DEMO ?= demo
DEMO_LEADS ?= 5000

.PHONY: install demo test lint typecheck pytest bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,spark]'
	touch $@

## demo: make a demo world, score it with the starter model, show the top leads
demo: install
	$(LS) demo-data --leads $(DEMO_LEADS) --seed 42 --out $(DEMO)
	$(LS) init $(DEMO)/model.yaml --force
	$(LS) score --model $(DEMO)/model.yaml --leads $(DEMO)/leads.csv --events $(DEMO)/events.csv \
		--as-of 2026-11-01T00:00:00Z --output $(DEMO)/scored.csv --explain --top 10

## test: lint, type-check and the whole test suite
test: install lint typecheck pytest

lint: install
	$(VENV)/bin/ruff check src tests bench

typecheck: install
	$(VENV)/bin/mypy

pytest: install
	$(PY) -m pytest -q -n 2 --dist loadfile

bench: install
	$(PY) bench/score_files.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .mypy_cache .ruff_cache
