# The two commands README.md opens with. Both build .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/corsflow analyze samples/chromium-session.har

test: $(STAMP)
	$(BIN)/python -m pytest -q

# By hand: corsflow's whole analysis against each reference, same run, ~100 MB workloads
# from ../shared/perf. For 1 GB: make bench BENCH="--size 1000". Nothing here is asserted.
# More detail (readers alone, the live addon): benchmarks/bench_har.py, bench_pcap.py,
# bench_mitm.py offline|live.
BENCH ?=
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py $(BENCH)

lint: $(STAMP)
	$(BIN)/ruff check corsflow tests
	$(BIN)/mypy corsflow

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache
