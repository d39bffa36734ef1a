# Everything bootstraps itself: uv is installed into .tools/ when it is not on PATH,
# and the locked dependencies into .venv/.
PYTHON ?= python3.11
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)

.PHONY: run test demo services install lint typecheck check clean bench wrk

run: install ## Run the service on the embedded default (SQLite, in-process bus and cache)
	$(UV) run --frozen coffeeshop serve --host $${HOST:-127.0.0.1} --port $${PORT:-8000}

test: install services ## Run the whole test suite with coverage (needs MariaDB and Redis)
	$(UV) run --frozen pytest --cov=coffeeshop --cov-report=term --cov-fail-under=80 $(PYTEST_ARGS)

demo: install ## Load a demo café (a month of orders) into the embedded database
	$(UV) run --frozen coffeeshop demo --orders $${ORDERS:-2000}

install: .venv/.synced

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	@touch $@

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv==0.13.9"

services: ## Start MariaDB and Redis on loopback if they are installed but not running
	@scripts/ensure-services

bench: install services wrk ## Every benchmark in turn (MariaDB, Redis and wrk on loopback; ~20 min)
	$(UV) run --frozen python bench/http_api.py $(HTTP_BENCH_ARGS)
	$(UV) run --frozen python bench/pipeline.py
	$(UV) run --frozen python bench/read_side.py
	$(UV) run --frozen python bench/replay.py

wrk: ## The HTTP load generator the benchmarks drive (installed with apt-get when root)
	@command -v wrk >/dev/null && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }; \
	else \
	  echo "the benchmarks need wrk: sudo apt-get install -y wrk (or your system's package)" >&2; \
	  exit 1; \
	fi

lint: install
	$(UV) run --frozen ruff check coffeeshop tests bench
	$(UV) run --frozen ruff format --check coffeeshop tests bench

typecheck: install
	$(UV) run --frozen mypy

check: lint typecheck test

clean:
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
