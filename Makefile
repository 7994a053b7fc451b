# Plain entry points. `make test` and `make demo` create the virtual environment when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch and torchvision are pinned here to builds known to work together (see pyproject.toml for the ranges).
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
# Where torch comes from: empty = the default index (on Linux, the CUDA build: its nvidia and triton packages are
# 4.1 of the 6.2 GB of .venv). For a CPU-only machine, where PyTorch's index is reachable:
#   make demo TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_INDEX ?=

.PHONY: venv test test-fast lint typecheck demo benchmark startup clean

$(BIN)/mixframe: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) $(TORCH_PINS)
	# strict: the checkout's packages are linked under build/ and found on sys.path as regular packages, so that a
	# folder named mixframe in the current folder (a clone at ~/mixframe opened from ~) cannot shadow them as an
	# empty namespace package; a new module needs this line again (make venv), as a new entry point does anyway
	rm -rf mixframe.egg-info  # left by the default editable mode: run from here, its stale entry points would hide new plugins
	$(BIN)/python -m pip install -q -e '.[test]' --config-settings editable_mode=strict
	touch $(BIN)/mixframe

venv: $(BIN)/mixframe

## Lint (ruff), type-check (mypy), then run the test suite (two processes).
test: venv lint typecheck
	$(BIN)/python -m pytest -n 2 -q

## The fast lane while working: everything but the tests marked slow (training for more than a few seconds, torchrun, wheels).
test-fast: venv lint
	$(BIN)/python -m pytest -n 2 -q -m "not slow"

## ruff: pyflakes, import order, pyupgrade (the rules are in pyproject.toml).
lint: venv
	$(BIN)/ruff check mixframe plugins tests benchmarks docs

## mypy: strict on mixframe/kernel, the default checks on the rest of mixframe/ (the settings are in pyproject.toml).
typecheck: venv lint
	$(BIN)/python -m mypy

## Train the default recipe (AMR mixup on digits) on the CPU and write a report.
# One torch thread: on a busy two-core machine two threads made each epoch 6 to 10 times slower (README, "Threads").
DEMO_THREADS ?= 1
demo: venv
	$(BIN)/mixframe train recipes/digits_amr_mixup.yaml --out runs --set train.threads=$(DEMO_THREADS)
	run=$$(ls -td runs/digits_amr_mixup-* | head -1); \
	$(BIN)/mixframe evaluate $$run && $(BIN)/mixframe report $$run --out $$run/report.html

benchmark: venv
	$(BIN)/python benchmarks/engine_step.py

## How long the commands that do not train take to start (fresh processes).
startup: venv
	$(BIN)/python benchmarks/startup.py

clean:
	rm -rf $(VENV) build *.egg-info
