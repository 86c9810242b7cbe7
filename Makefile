# The course's commands. Each one creates the virtual environment .venv on first use.
#   make course     execute every notebook (printing each one's time), write the student copies, build the site
#                   and the slide decks
#   make site       build the site (with the slide decks) from the notebooks as committed, without executing them
#   make slides     build each lesson's reveal.js slide deck, build/site/slides/NN_*.html (only the stale ones)
#   make exercises  write the student copies exercises/NN_*.ipynb from the lessons notebooks/NN_*.ipynb
#   make check-exercises NB=exercises/05_autoencoder_vs_vae.ipynb   run a filled-in student copy: which exercises pass
#   make lab        open the notebooks in JupyterLab
#   make test       unit tests, every notebook under nbval, the student copies and the site (in headless Chromium)
#   make benchmark  the training-speed benchmark
#   make nll        the log-likelihood benchmark: train for MINUTES (default 10), then the test NLL
#                   (RECIPE=iwae5: trained on IWAE_5)

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
READY := $(VENV)/.ready

.PHONY: setup course notebooks exercises check-exercises site slides lab test benchmark nll clean

setup: $(READY)

# Reinstall when the package metadata changes; pip keeps its download cache between runs.
$(READY): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed, found " + sys.version.split()[0]'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test,site]"
	@touch $@

# In this order: the runner gives each notebook its Colab link and install cell before executing it,
# the student copies are made from the executed lessons, and the site shows them; the site's build ends by
# building the slide decks of the lessons that changed.
course: $(READY)
	$(PY) tools/run_notebooks.py
	$(PY) tools/student_copies.py
	$(PY) tools/build_site.py

notebooks: $(READY)
	$(PY) tools/run_notebooks.py

exercises: $(READY)
	$(PY) tools/student_copies.py

check-exercises: $(READY)
	@test -n "$(NB)" || { echo "usage: make check-exercises NB=exercises/NN_name.ipynb" >&2; exit 2; }
	$(PY) -m vae_helpers.check_exercises $(NB)

site: $(READY)
	$(PY) tools/build_site.py

# Each lesson's cells say what goes on a slide (metadata.slideshow); `python tools/slides.py --tag LESSON`
# gives a new lesson's cells a first pass by rule.
slides: $(READY)
	$(PY) tools/slides.py

lab: $(READY)
	$(VENV)/bin/jupyter lab notebooks

# tests/test_site.py builds the site if it is missing or stale, and installs Chromium with apt-get
# if it is missing and we are root.
test: $(READY)
	$(PY) -m pytest tests notebooks --nbval-lax -p no:cacheprovider

benchmark: $(READY)
	$(PY) benchmarks/train_speed.py

# RECIPE=iwae5 trains on IWAE_5 (lesson 12) and saves nll-MINUTESmin-iwae5.json; empty, the ELBO recipe.
MINUTES ?= 10
RECIPE ?=
RECIPE_OPTIONS := $(if $(filter iwae5,$(RECIPE)),--k-train 5,$(if $(RECIPE),$(error RECIPE must be empty or iwae5, got $(RECIPE))))
nll: $(READY)
	$(PY) benchmarks/nll.py --minutes $(MINUTES) $(RECIPE_OPTIONS) --save benchmarks/results/nll-$(MINUTES)min$(if $(RECIPE),-$(RECIPE)).json

clean:
	rm -rf $(VENV) build
