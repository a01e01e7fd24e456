# mipa: one command to set up and run everything on a fresh machine.
#   make run    install what the run needs, generate synthetic feeds when none are given, build,
#               estimate, report
#   make test   install that plus the test tools (the dev extra), then every test (pytest incl. a
#               full synthetic build, dbt tests, sqlfluff)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

export MIPA_PROJECT_DIR := $(CURDIR)
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DBT_PROFILES_DIR := $(CURDIR)
export GX_ANALYTICS_ENABLED := false
# the estimators do many small dense products; two BLAS threads on two cores only stall
export OPENBLAS_NUM_THREADS := 1

.PHONY: install install-dev run build simulate report validate browser test test-fast lint bench montecarlo clean

# what the run needs (the package and its dependencies)
install: $(STAMP)

# plus the dev extra: pytest, hypothesis, sqlfluff, ruff, playwright and the reference
# implementations the tests compare against
install-dev: $(DEV_STAMP)

# constraints.txt pins every package to a version set known to work together
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e .
	touch $(STAMP)

# rebuilt whenever the run's install is (a changed pyproject.toml or constraints.txt)
$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(DEV_STAMP)

run: install
	$(BIN)/mipa run

simulate: install
	$(BIN)/mipa simulate

build: install
	$(BIN)/mipa build

# headless Chromium for the report's browser test (Debian package; needs root or sudo)
browser:
	@test -x /usr/bin/chromium || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends chromium; }

report: install
	$(BIN)/mipa report

validate: install
	$(BIN)/mipa validate

test: install-dev browser
	$(BIN)/python -m pytest --durations=15
	$(MAKE) --no-print-directory lint

test-fast: install-dev
	$(BIN)/python -m pytest -m "not slow"

lint: install-dev
	$(BIN)/ruff check src tests scripts python_models
	@mkdir -p target
	# the dbt templater opens a connection: give it a scratch database, not the warehouse
	MIPA_DB_PATH=$(CURDIR)/target/sqlfluff.duckdb $(BIN)/sqlfluff lint models tests/singular analysis

bench: install-dev
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,bench]"
	$(BIN)/python scripts/benchmark.py

# the full Monte Carlo behind montecarlo/inference_coverage.csv (~9 min on 2 cores) and the design
# study behind montecarlo/estimator_designs.csv (~75 min on 2 cores); both resume from reports/montecarlo/
montecarlo: install
	$(BIN)/python scripts/montecarlo.py --reps 500 --write-results
	$(BIN)/python scripts/design_study.py --reps 500 --write-results

clean:
	rm -rf target logs data/*.building.duckdb data/*.failed.duckdb
