# The two commands README.md opens with. Both build .venv on first use, from the lock file,
# so a fresh clone installs exactly the versions the tests passed with.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := requirements.lock
# Everything `make` installs: the notebook API, the addon, the tests and the linters.
EXTRAS := test dev notebook mitmproxy dask

.PHONY: demo test install bench fuzz lint upgrade lock clean

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BIN)/python -m compileall -q corsflow
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/corsflow analyze samples/chromium-session.har

test: $(STAMP)
	$(BIN)/python -m pytest -q

# By hand: corsflow's whole analysis against each reference, same run, ~100 MB workloads
# from ../shared/perf (for 1 GB: make bench BENCH="--size 1000"), NetLog, what the addon
# spends on the proxy's loop per flow, and the live addon against mitmdump alone. Nothing
# here is asserted. More detail (readers alone): benchmarks/bench_har.py, bench_pcap.py,
# bench_mitm.py offline.
BENCH ?=
bench: $(STAMP)
	$(BIN)/python benchmarks/bench.py $(BENCH)
	$(BIN)/python benchmarks/bench_netlog.py
	$(BIN)/python benchmarks/bench_mitm.py proxy
	$(BIN)/python benchmarks/bench_mitm.py live

lint: $(STAMP)
	$(BIN)/ruff check corsflow tests
	$(BIN)/mypy corsflow

# The lock pins every package (with hashes) for every platform and Python >= 3.11.
# `make lock` re-solves after a change to pyproject.toml; `make upgrade` takes the newest
# releases the ranges in pyproject.toml allow. Run the tests after either.
lock: $(STAMP)
	echo "setuptools>=77" | $(BIN)/uv pip compile pyproject.toml - $(addprefix --extra ,$(EXTRAS)) \
	    --generate-hashes --universal --python-version 3.11 --no-header --quiet $(UVFLAGS) -o $(LOCK)

upgrade: $(STAMP)
	$(MAKE) lock UVFLAGS=--upgrade

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache

# Mutation fuzzing of every reader with a long random budget (make test runs a short fixed
# one). Failing inputs are written to out/fuzz/: keep each as a case in tests/fuzz/cases/.
FUZZ_EXAMPLES ?= 2000
fuzz: $(STAMP)
	CORSFLOW_FUZZ_RANDOM=1 CORSFLOW_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) \
		$(BIN)/python -m pytest -q -p no:cacheprovider tests/fuzz/test_fuzz.py
