# The course's commands. Each one creates the virtual environment .venv on first use.
#   make course   execute every notebook (printing each one's time) and build the HTML site
#   make lab      open the notebooks in JupyterLab
#   make test     unit tests and every notebook under nbval
#   make benchmark  the training-speed benchmark

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
READY := $(VENV)/.ready

.PHONY: setup course notebooks lab test benchmark clean

setup: $(READY)

# Reinstall when the package metadata changes; pip keeps its download cache between runs.
$(READY): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed, found " + sys.version.split()[0]'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test,site]"
	@touch $@

course: notebooks

notebooks: $(READY)
	$(PY) tools/run_notebooks.py notebooks

lab: $(READY)
	$(VENV)/bin/jupyter lab notebooks

test: $(READY)
	$(PY) -m pytest tests notebooks --nbval-lax -p no:cacheprovider

benchmark: $(READY)
	$(PY) benchmarks/train_speed.py

clean:
	rm -rf $(VENV) build
