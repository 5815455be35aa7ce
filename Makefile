# Set-up, tests, demo and benchmarks. Everything installs into .venv from scratch.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install system test lint demo bench clean

# Debian packages the tests use: Chromium, for the map page's browser test. Installed with
# apt-get when missing (as root, else through sudo).
system:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# torch is installed first, pinned by constraints.txt to the CPU wheel: an unpinned torch
# would pull several GB of CUDA packages.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	# The default model, converted for ONNX Runtime now rather than by the first command.
	$(BIN)/vibes models convert minilm minilm-int8 >/dev/null
	touch $(STAMP)

install: system $(STAMP)

lint: install
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q

demo: install
	bash examples/demo.sh

bench: install
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,bench]'
	$(BIN)/python bench/bench_embed_multi.py
	$(BIN)/python bench/bench_similar.py
	$(BIN)/python bench/bench_startup.py
	$(BIN)/python bench/bench_chunking.py
	$(BIN)/python bench/bench_models.py
	$(BIN)/python bench/bench_fast_models.py
	$(BIN)/python bench/bench_index.py --sizes 100000,1000000
	$(BIN)/python bench/bench_index_build.py
	$(BIN)/python bench/bench_memory.py
	$(BIN)/python bench/hybrid_study.py
	$(BIN)/python bench/bench_cluster.py
	$(BIN)/python bench/bench_related.py
	$(BIN)/python bench/bench_plot.py
	$(BIN)/python bench/bench_classify.py
	$(BIN)/python bench/bench_hybrid.py
	$(BIN)/python bench/bench_ask.py
	$(BIN)/python bench/bench_serve.py

clean:
	rm -rf $(VENV) demo
