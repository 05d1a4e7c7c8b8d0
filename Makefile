# replab: `make book` builds the book, `make test` runs every test. Both create or update .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.replab-installed
JOBS ?= 2

.PHONY: setup book book-check browser test test-portable bench sync clean help

help:
	@echo "make setup | book | book-check | test | test-portable | bench | sync | clean"

setup: $(STAMP)

# Re-installs whenever the pins or the package metadata change.
$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

book: setup
	OMP_NUM_THREADS=1 $(VENV)/bin/replab book

# Opens every built page in headless Chromium (installed from Debian's packages when missing).
book-check: setup browser
	$(PY) tools/book_check.py _build/html --screenshots _build/screenshots

browser:
	@{ command -v chromium || command -v chromium-browser || command -v google-chrome; } >/dev/null && \
	  command -v chromedriver >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

test: setup
	OMP_NUM_THREADS=1 MPLBACKEND=agg $(PY) -m pytest -n $(JOBS) -q --durations=15

# The same tests on torch's portable CPU kernels (no AVX2/AVX-512): a test whose outcome depends on the processor
# fails in one of the two runs.
test-portable:
	ATEN_CPU_CAPABILITY=default $(MAKE) test

bench: setup
	$(PY) -m pip install --quiet --disable-pip-version-check -r benchmarks/requirements.txt
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b --quick || exit 1; done

# Write every page's Colab setup cell from _config.yml's repository setting, then re-pair every MyST notebook with
# its output-free .ipynb.
sync: setup
	$(PY) -c "from replab.notebooks import write_parameter_cells, write_setup_cells; write_parameter_cells(); write_setup_cells()"
	$(VENV)/bin/jupytext --sync notebooks/*.md notebooks/*/*.md

clean:
	rm -rf _build .cache/replab .pytest_cache
