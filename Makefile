# Entry points of the band-gap course. `make help` lists them.
VENV ?= .venv
# The Python that runs the course. Unless PY is given (`make course PY=python`): $(VENV) when it
# exists; else the active `python` when it already is a complete course environment (Binder, a
# finished conda env; checked by scripts/verify_install.py), so no second environment is built;
# else $(VENV), which `make env` creates.
ifeq ($(origin PY),undefined)
PY := $(shell if [ -x "$(VENV)/bin/python" ]; then echo "$(VENV)/bin/python"; \
  elif python scripts/verify_install.py --quiet >/dev/null 2>&1; then command -v python; \
  else echo "$(VENV)/bin/python"; fi)
endif
# setup_env.sh builds/updates $(VENV), or completes the environment of any other PY in place
ENV_ARGS := $(if $(filter $(VENV)/bin/python,$(PY)),,--python $(PY))

.PHONY: help env env-test course test test-fast lint lab benchmark lock clean student instructor slides book

help:
	@echo "make env        create/update the Python 3.11 environment (now: $(PY); CPU torch 2.13.0, crabnet 2.0.8)"
	@echo "make course     run every notebook headless in quick mode -> output/ (course_run.json)"
	@echo "make test       lint + unit tests + nbval on every notebook (offline, quick mode) -- what CI runs"
	@echo "make test-fast  lint + unit tests without notebooks, training, browser and slow tests (edit loop)"
	@echo "make lint       ruff check (rules in pyproject.toml) + ruff format --check"
	@echo "make lab        start JupyterLab on the notebooks"
	@echo "make benchmark  CrabNet matbench expt_gap benchmark -> results/benchmarks/"
	@echo "make student    student version of every notebook (solutions -> NotImplementedError stubs) -> build/student/"
	@echo "make instructor instructor version (solutions kept, markers removed) -> build/instructor/"
	@echo "make slides     offline reveal.js slides of every notebook -> build/slides/ (executed copies from make course if present)"
	@echo "make book       static website of the executed course (make course first) -> build/book/html/ (Sphinx + MyST-NB, offline)"
	@echo "make lock       re-resolve requirements*.txt and rewrite requirements.lock (every package pinned)"
	@echo "make clean      remove generated data and output (keeps $(VENV))"
	@echo "PY=python       use the active, already complete environment (Binder, conda) instead of $(VENV)"

env:
	BANDGAP_VENV=$(VENV) bash scripts/setup_env.sh $(ENV_ARGS)

env-test:
	BANDGAP_VENV=$(VENV) bash scripts/setup_env.sh $(ENV_ARGS) --test

course: env
	BANDGAP_NOMAD_OFFLINE=$${BANDGAP_NOMAD_OFFLINE:-0} $(PY) -m coursetools.course

test: env-test lint
	BANDGAP_MODE=quick BANDGAP_NOMAD_OFFLINE=1 $(PY) -m pytest -p no:cacheprovider tests notebooks \
	  --nbval-lax --nbval-current-env --nbval-cell-timeout=1800 -o addopts= -rfE

# The edit loop: lint + unit tests of helpers/, exercises/ and coursetools/, without notebooks, model training, browser or slow process tests.
test-fast: env-test lint
	BANDGAP_MODE=quick BANDGAP_NOMAD_OFFLINE=1 $(PY) -m pytest -p no:cacheprovider tests -q \
	  -m "not slow and not browser" -o addopts= -rfE

# ruff: the rule set is in pyproject.toml ([tool.ruff]); format check on the Python sources.
lint: env-test
	$(PY) -m ruff check .
	$(PY) -m ruff format --check helpers coursetools exercises tests scripts benchmarks

lab: env
	$(PY) -m jupyter lab notebooks

benchmark: env
	$(PY) benchmarks/crabnet_matbench.py --config both --threads 1 --jobs 2 --perovskite --perovskite-configs quick,full

student: env
	$(PY) -m coursetools.assignments student

instructor: env
	$(PY) -m coursetools.assignments instructor

# Slides show figures when `make course` ran first (output/notebooks/); otherwise the stripped sources.
slides: env
	@src=$$(ls output/notebooks/[0-9][0-9]_*.ipynb 2>/dev/null || ls notebooks/[0-9][0-9]_*.ipynb); \
	  echo "slides from: $$src"; \
	  $(PY) -m coursetools.slides export $$src --out build/slides

# The website shows make course's executed copies (output/notebooks/) and offers the student versions
# (make student) for download. Build tools live in their own .venv-book (scripts/setup_book_env.sh).
# BOOK_REPO / BOOK_BRANCH: the repository the Binder and source links point to (a placeholder by default);
# BOOK_ALLOW_STRIPPED=1: lessons make course has not run are shown without outputs, with a banner.
BOOK_VENV ?= .venv-book
book: student
	BANDGAP_BOOK_VENV=$(BOOK_VENV) bash scripts/setup_book_env.sh
	$(BOOK_VENV)/bin/python scripts/build_book.py \
	  $(if $(BOOK_REPO),--repo-url $(BOOK_REPO)) $(if $(BOOK_BRANCH),--branch $(BOOK_BRANCH)) \
	  $(if $(filter 1,$(BOOK_ALLOW_STRIPPED)),--allow-stripped)

lock:
	$(PY) scripts/lock.py

clean:
	rm -rf output data/nomad data/processed models build/student build/instructor build/slides build/book
