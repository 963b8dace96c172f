# Waymark: `make run` (set up and serve on http://127.0.0.1:8000) and `make test`.
PYTHON ?= python3
TOOLS  := .tools
UV     := $(TOOLS)/bin/uv
VENV   := .venv
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: run test test-cluster setup setup-dev assets lint check-layers clean upgrade

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv

setup: $(UV)
	$(UV) sync --frozen --no-dev
	@$(MAKE) --no-print-directory assets

setup-dev: $(UV)
	$(UV) sync --frozen
	@$(MAKE) --no-print-directory assets

assets:
	@if [ -f package.json ]; then npm ci --no-audit --no-fund --loglevel=error && npm run --silent build; fi

run: setup
	$(VENV)/bin/waymark serve

test: setup-dev
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# Refresh uv.lock and package-lock.json within the declared ranges, print what changed, run
# the audits and the tests (tools/upgrade.sh; docs/operations/maintenance.md).
upgrade: $(UV)
	tools/upgrade.sh

# the multi-node cluster under faults (Patroni, etcd, Sentinel, SeaweedFS, HAProxy)
test-cluster: setup-dev
	$(VENV)/bin/python -m pytest -s tests/cluster $(PYTEST_ARGS)

lint: setup-dev
	$(UV) run --frozen ruff check src tests
	@$(MAKE) --no-print-directory check-layers

# the layering (docs/decisions/0020-layering-checks.md): import-linter contracts and mypy
# (strict on the domain), both configured in pyproject.toml
check-layers: setup-dev
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) $(TOOLS) node_modules src/waymark/static/dist
