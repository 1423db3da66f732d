# Two entry points for a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: demo test lint venv install install-test bench clean-demo

$(PY):
	@$(PYTHON) -m venv $(VENV) || { echo "cannot create $(VENV): on Debian, apt-get install python3-venv" >&2; exit 1; }
	@$(PY) -m pip install --quiet --upgrade pip

# --quiet, and setup.cfg's package discovery, keep the install silent unless it fails.
install: $(PY)
	@$(PY) -m pip install --quiet -e .

# The test extras, the benchmark's peers (its harness has tests), and torch (CPU) with
# scikit-image for the super-resolution example's tests.
install-test: $(PY)
	@$(PY) -m pip install --quiet -e '.[test,bench,sr]'

# Tune the synthetic demo with DSICE on the local scheduler, from scratch (jobs of 1-2 s), then
# show the best point, the share of the grid it took and the commands to try next.
demo: install clean-demo
	$(VENV)/bin/orchestrator start configs/demo.toml
	@$(PY) -m orchestrator.demo_summary configs/demo.toml --venv $(VENV)

clean-demo:
	@rm -rf runs/demo

# The whole suite. pytest's exit code 5 ("no tests ran") is a failure here. Two streams run
# side by side, as most tests wait on real processes: the tests of the one shared Slurm, Grid
# Engine and PostgreSQL in turn (they count and drain that cluster's jobs and nodes; their log
# is printed after), and the rest on TEST_WORKERS pytest-xdist workers, a file per worker. The
# DRMAA tests load libdrmaa into the test process, so they get a process of their own after: a
# fault in the C library cannot take the rest of the suite down with it.
TEST_WORKERS ?= 2
SERVICES := slurm or drmaa or postgres
test: install-test
	@$(PY) -m pytest -m "$(SERVICES)" --ignore=tests/drmaa $(PYTEST_ARGS) \
	  > $(VENV)/pytest-services.log 2>&1 & services=$$!; \
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not ($(SERVICES))" --ignore=tests/drmaa \
	  $(PYTEST_ARGS); rc=$$?; \
	wait $$services; rc_services=$$?; \
	echo "=== the tests of the shared Slurm, Grid Engine and PostgreSQL (run beside the above) ==="; \
	cat $(VENV)/pytest-services.log; \
	$(PY) -m pytest tests/drmaa $(PYTEST_ARGS); rc_drmaa=$$?; \
	for r in $$rc $$rc_services $$rc_drmaa; do \
	  if [ $$r -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; \
	  if [ $$r -ne 0 ]; then exit $$r; fi; \
	done

# ruff over everything; mypy, strict on the search core, the adapter interface and the result
# protocol (pyproject.toml). CI runs it before the tests.
lint: $(PY)
	@$(PY) -m pip install --quiet -e '.[lint]'
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: install-test
	$(PY) benchmarks/search_efficiency.py --quick
