# make run  -- install into .venv (when pyproject.toml changed) and run a cluster in the foreground
# make test -- install the same way and run the whole test suite
# make conformance -- pg_regress + sqllogictest from ../shared/conformance on a temp cluster; scoreboard
# make bench -- the same workloads on a scratch PostgreSQL 15 and a scratch cluster (BENCH_ARGS=--quick)

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench conformance

run: $(STAMP)
	$(VENV)/bin/borealis up

test: $(STAMP)
	$(PY) -m pytest -p no:cacheprovider

conformance: $(STAMP)
	$(PY) -m conformance all ../shared/conformance --json-dir conformance/results

$(PY):
	python3 -m venv $(VENV)

bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)
