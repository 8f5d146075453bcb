# Two commands on a fresh machine (see README):
#   make run   - set up .venv and run the whole workflow at the default scale (workflow/profiles/default)
#   make test  - set up .venv and run every check CI runs (.ci/run calls this)
#   make test-slurm - as root: the workflow on a real single-node SLURM cluster (.ci/run calls it too)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= all
# pytest-xdist workers: the suite runs in parallel, tests sharing a module's results folder on one
# worker (--dist loadscope; docs/testing.md)
TEST_WORKERS ?= 2

.PHONY: setup run test test-slurm check lint format e2e clean lock bench docs

$(VENV)/.installed: envs/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r envs/requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	# a python3 kernel inside the venv, pointing at the venv's interpreter, for papermill
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (staircase)"
	touch $@

setup: $(VENV)/.installed

run: setup
	$(BIN)/snakemake --profile workflow/profiles/default --cores $(CORES)

test: setup lint docs
	$(BIN)/snakemake --dry-run --cores $(CORES) --quiet rules
	$(BIN)/pytest -q -rs -n $(TEST_WORKERS) --dist loadscope --durations=15

# the documentation site (mkdocs.yml) into site/, warnings as errors: a broken link or a reference
# page that no longer builds fails `make test`
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet  # without Material's banner about its successor

# Installs Debian's slurm-wlm and munge if missing, starts a single-node cluster, runs the tiny
# config through workflow/profiles/slurm and slurm-gpu, compares with a local run, stops the daemons.
test-slurm: setup
	VENV=$(VENV) tests/slurm/run_slurm_test.sh

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile workflow
	$(BIN)/snakemake --lint
	$(BIN)/lint-imports --no-cache

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(BIN)/snakefmt Snakefile workflow

# benchmarks against a naive PyTorch loop and DeepXDE (PERFORMANCE.md); ratios in results/bench/
$(VENV)/.bench-installed: $(VENV)/.installed envs/bench.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r envs/bench.txt
	touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/staircase bench --out results/bench

# regenerate the full lock after editing envs/requirements.in
lock: setup
	$(BIN)/python -m pip install --quiet -r envs/requirements.in
	( echo "# Full lock of envs/requirements.in for Python 3.11 (make lock). Do not edit by hand."; \
	  $(BIN)/python -m pip freeze --exclude-editable | sed 's/^torch==2.13.0+cpu$$/torch==2.13.0/' ) > envs/requirements.txt

clean:
	rm -rf results .snakemake site
