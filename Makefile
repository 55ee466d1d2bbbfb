# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
# Where pip finds the CPU build of torch. Empty here: this project's machines have the wheel
# on local disk. Elsewhere: make TORCH_INDEX=<PyTorch's CPU wheel index URL> run
TORCH_INDEX ?=
PIP := $(VENV)/bin/python -m pip
PIP_INSTALL := $(PIP) install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: install install-dev run test lint dev clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check --upgrade pip
	# CPU torch first and pinned (constraints.txt), so nothing can pull a CUDA build later.
	$(PIP_INSTALL) $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) torch==2.13.0
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP_INSTALL) -e ".[dev]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(VENV)/bin/rap-pipeline run

dev: install
	$(VENV)/bin/rap-pipeline dev

test: install-dev
	$(VENV)/bin/python -m pytest

lint: install-dev
	$(VENV)/bin/ruff check rap_pipeline rap_pipeline_tests
	$(VENV)/bin/ruff format --check rap_pipeline rap_pipeline_tests

clean:
	rm -rf $(VENV)
