# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
RUN_STAMP := $(VENV)/.run-stamp
TEST_STAMP := $(VENV)/.test-stamp
HOST ?= 127.0.0.1
PORT ?= 5000
# Two pytest workers: the suite is mostly waiting on browsers, servers and databases, and two
# workers keep it well under CI's budget on a 2-core machine. `make test PYTEST_WORKERS=0` runs it
# in one process.
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?=
# One BLAS thread per process: two test workers already fill two cores, and OpenBLAS's own threads
# on a busy machine made small matrix products 10-60 times slower (measured on the engine's tests).
BLAS_ONE_THREAD := OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1

.PHONY: run test test-faults install chromium haproxy wrk lint bench clean

# Two installs, each redone when pyproject.toml changes: serving needs no test tools.
$(PY):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(RUN_STAMP): pyproject.toml | $(PY)
	$(BIN)/pip install -q -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(PY)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(RUN_STAMP)

# Serve the embedded SQLite database under instance/, with the demo program loaded once.
run: $(RUN_STAMP)
	$(BIN)/microcred init
	$(BIN)/microcred demo --if-empty
	@echo; echo "Open http://$(HOST):$(PORT)/ in your browser."; echo
	$(BIN)/microcred serve --host $(HOST) --port $(PORT)

# The whole suite: unit, integration on SQLite and PostgreSQL, and browser tests in Chromium.
test: $(TEST_STAMP) chromium wrk
	$(BLAS_ONE_THREAD) $(BIN)/pytest -n $(PYTEST_WORKERS) -m "not faults" --durations=30 $(PYTEST_ARGS)

# The scale-out and fault tests (tests/scale: HAProxy, own PostgreSQL and Redis, kill -9, cut
# links) take about 8 minutes of their own; they run here, apart from the 15-minute suite.
test-faults: $(TEST_STAMP) chromium haproxy
	$(BLAS_ONE_THREAD) $(BIN)/pytest -n $(PYTEST_WORKERS) -m faults $(PYTEST_ARGS)

# Browser tests drive Debian's chromium; install it when missing and we may.
chromium:
	@if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "Chromium is missing and this user cannot install it: run 'sudo apt-get install chromium'"; exit 1; \
	  fi; \
	fi

# The scale-out test (tests/scale/test_scale_out.py) puts Debian's HAProxy in front of two nodes;
# install it when missing and we may, else that one test skips and says why.
haproxy:
	@if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian's haproxy for the scale-out test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null; \
	  else \
	    echo "haproxy is missing and this user cannot install it: the scale-out test will skip ('sudo apt-get install haproxy')"; \
	  fi; \
	fi

# bench/save_saturation.py drives the server with wrk (a C load generator); its brief run in the
# suite (tests/test_saturation_bench.py) skips and says why when wrk is missing.
wrk:
	@if ! command -v wrk >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian's wrk for the saturation bench"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null || true; \
	  else \
	    echo "wrk is missing and this user cannot install it: the saturation bench's test will skip ('sudo apt-get install wrk')"; \
	  fi; \
	fi

lint: $(TEST_STAMP)
	$(BIN)/ruff check .

bench: $(TEST_STAMP)
	$(BIN)/python bench/delivery_load.py
	$(BIN)/python bench/calibration.py

clean:
	rm -rf $(VENV) .pytest_cache tests/.instance
