# leadscore: `make demo` runs the main job on the embedded default; `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LS := $(VENV)/bin/leadscore
DEMO ?= demo
DEMO_LEADS ?= 5000

.PHONY: install demo demo-data demo-serve test lint typecheck pytest bench browser clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,spark]'
	touch $@

## demo: build a demo world, score it from files (top leads on screen), then load it into
## the service and open the dashboard at http://127.0.0.1:8000/ (Ctrl-C stops it)
demo: demo-data demo-serve

demo-data: install
	$(LS) demo-data --leads $(DEMO_LEADS) --seed 42 --out $(DEMO)
	$(LS) init $(DEMO)/model.yaml --force
	$(LS) score --model $(DEMO)/model.yaml --leads $(DEMO)/leads.csv --events $(DEMO)/events.csv \
		--as-of 2026-11-01T00:00:00Z --output $(DEMO)/scored.csv --explain --top 10
	@echo "scored leads: $(DEMO)/scored.csv"

demo-serve: install
	rm -f $(DEMO)/demo.db $(DEMO)/demo.db-wal $(DEMO)/demo.db-shm
	$(LS) import --leads $(DEMO)/leads.csv --events $(DEMO)/events.csv --db sqlite:///$(DEMO)/demo.db
	$(LS) outcomes $(DEMO)/outcomes.csv --db sqlite:///$(DEMO)/demo.db
	@echo "Sign in to the dashboard with this admin key (the last line):"
	$(LS) keys create --name demo --scope admin --db sqlite:///$(DEMO)/demo.db
	@echo "Dashboard and API: http://127.0.0.1:8000/  (API docs: /docs; Ctrl-C to stop)"
	$(LS) serve --db sqlite:///$(DEMO)/demo.db

## test: lint, type-check and the whole test suite
test: install browser lint typecheck pytest

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

## browser: Debian's Chromium for the browser tests (Playwright drives /usr/bin/chromium, never downloads one)
browser:
	@test -x /usr/bin/chromium || { \
		SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
		$$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }
	@/usr/bin/chromium --version
