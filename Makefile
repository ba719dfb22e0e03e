# remit: `make demo` runs the main job on the embedded default; `make test` runs the tests.
# Both create/refresh the local virtual environment first (.venv), installing torch first
# (the CPU wheel on CPU machines), then remit with the pinned, tested dependency set.

PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.13.0
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.remit-installed
export PYTHONDONTWRITEBYTECODE := 1
export TOKENIZERS_PARALLELISM := false
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1

.PHONY: setup demo test lint bench clean sandbox-tools

setup: $(STAMP) sandbox-tools

# bubblewrap: the kernel boundary of remit.sandbox (model-written code). Installed when missing and we
# can (root + apt-get); otherwise remit.sandbox.diagnose() says which layers are not enforced.
sandbox-tools:
	@command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  { apt-get install -y -q bubblewrap >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q bubblewrap >/dev/null; }; }; } || \
	  echo "note: bubblewrap (bwrap) is not installed: the code sandbox falls back to weaker layers (see README, Reliability)"

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -c requirements/constraints.txt -e ".[test,gguf]"
	touch $(STAMP)

demo: setup
	$(BIN)/remit flywheel

lint: setup
	$(BIN)/ruff check src tests benchmarks

test: lint
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadgroup tests

bench: setup
	$(BIN)/python -m pip install -q -c requirements/constraints.txt -e ".[bench]"
	for f in benchmarks/bench_*.py; do OMP_NUM_THREADS=1 $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
