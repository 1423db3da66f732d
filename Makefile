# Two entry points for a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: demo test venv install install-test bench clean-demo

$(PY):
	@$(PYTHON) -m venv $(VENV) || { echo "cannot create $(VENV): on Debian, apt-get install python3-venv" >&2; exit 1; }
	@$(PY) -m pip install --quiet --upgrade pip

install: $(PY)
	@$(PY) -m pip install --quiet -e .

# The test extras, and torch (CPU) with scikit-image for the super-resolution example's tests.
install-test: $(PY)
	@$(PY) -m pip install --quiet -e '.[test,sr]'

# Tune the synthetic demo on the local scheduler, from scratch, and show the best point.
demo: install clean-demo
	$(PY) -m orchestrator start configs/demo.toml
	$(PY) -m orchestrator status configs/demo.toml

clean-demo:
	@rm -rf runs/demo

# The whole suite. pytest's exit code 5 ("no tests ran") is a failure here.
test: install-test
	$(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

bench: install-test
	$(PY) benchmarks/search_efficiency.py --quick
