# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

WEB_DEPS := web/node_modules/.installed

.PHONY: run test lint typecheck migrations-check fmt clean browser-deps

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## The web app's front-end files (htmx, Pico CSS) from the npm registry, as the lockfile pins them.
$(WEB_DEPS): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $(WEB_DEPS)

## The browser tests' Debian chromium and CJK font (apt-get, once; nothing when present).
browser-deps:
	sh tests/browser-deps.sh

## Run the product: Temporal dev server + UI, worker, API with the demo catalog. Ctrl-C stops it.
run: $(STAMP) $(WEB_DEPS)
	$(BIN)/python -m devrun

## The whole suite: format, lint, types, tests (real Temporal dev server, SQLite, PostgreSQL).
test: $(STAMP) $(WEB_DEPS) browser-deps lint typecheck migrations-check
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy .

## The migrations and the tables' models agree: `alembic check` on a SQLite file at head
## (tests/test_migrations.py checks PostgreSQL too).
migrations-check: $(STAMP)
	dir=$$(mktemp -d) && trap 'rm -rf "$$dir"' EXIT && \
	export DATABASE_URL="sqlite+aiosqlite:///$$dir/check.db" && \
	$(BIN)/alembic upgrade head && $(BIN)/alembic check

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .data .mypy_cache .ruff_cache .pytest_cache web/node_modules .artifacts

## Benchmarks (bench/README.md): the full suite (15-30 min: 10,000 open orders) and a short one (under 3 minutes).
.PHONY: bench bench-quick bench-web bench-web-quick
bench: $(STAMP)
	$(BIN)/python -m bench --out bench/results/full.json

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick --out bench/results/quick.json

## The web app's pages with 10,000 open orders and its live updates (bench/README.md; --quick: 300).
bench-web: $(STAMP) $(WEB_DEPS)
	$(BIN)/python -m bench --web --out bench/results/web.json

bench-web-quick: $(STAMP) $(WEB_DEPS)
	$(BIN)/python -m bench --web --quick --out bench/results/web-quick.json
