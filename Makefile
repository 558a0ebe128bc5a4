# The README's two commands are `make demo` and `make test`; both install what they need.
SHELL := /bin/bash
PY := .venv/bin/python
APT_PACKAGES := golang-go golang-github-vmware-govmomi-dev prometheus prometheus-alertmanager
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SIM_BIN := sim/build/vha-sim
CONFIG ?=

.PHONY: demo test setup deps venv sim lint unit bench clean

demo: setup
	$(PY) -m vha.cli demo $(if $(CONFIG),--config $(CONFIG),)

test: setup lint
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

setup: deps venv sim

# Debian packages: Go and govmomi's simulator source, Prometheus and Alertmanager.
deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	fi

venv: .venv/.installed

.venv/.installed: pyproject.toml
	[ -x .venv/bin/python ] || python3 -m venv .venv
	.venv/bin/pip install -q --upgrade pip
	.venv/bin/pip install -q -e '.[test]'
	touch $@

sim: $(SIM_BIN)

$(SIM_BIN): $(wildcard sim/*.go)
	mkdir -p sim/build
	cd sim && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=$${GOCACHE:-/tmp/vha-gocache} \
	  go build -o build/vha-sim .

lint: venv
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

# Figures only (never timed assertions): exporter, remediator and performance-counter
# benchmarks, and the scale benchmark (SCALE_ARGS="--size 10k" for a quicker run).
bench: setup
	$(PY) -m bench.exporter_bench $(BENCH_ARGS)
	$(PY) -m bench.remediator_bench
	$(PY) -m bench.perf_bench
	$(PY) -m bench.scale_bench $(SCALE_ARGS)

clean:
	rm -rf sim/build .venv .pytest_cache .mypy_cache .ruff_cache
