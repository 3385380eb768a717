# The two commands README.md opens with. Both build .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install bench lint clean fuzz

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

# By hand, on an idle machine: ~100 MB workloads from ../shared/perf (see benchmarks/*.py
# for --size and the other options). Nothing here is asserted.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_har.py
	$(BIN)/python benchmarks/bench_pcap.py
	$(BIN)/python benchmarks/bench_mitm.py offline
	$(BIN)/python benchmarks/bench_mitm.py live

lint: $(STAMP)
	$(BIN)/ruff check corsflow tests
	$(BIN)/mypy corsflow

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache

# Mutation fuzzing of every reader with a long random budget (make test runs a short fixed
# one). Failing inputs are written to out/fuzz/: keep each as a case in tests/fuzz/cases/.
FUZZ_EXAMPLES ?= 2000
fuzz: $(STAMP)
	CORSFLOW_FUZZ_RANDOM=1 CORSFLOW_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) \
		$(BIN)/python -m pytest -q -p no:cacheprovider tests/fuzz/test_fuzz.py
