# Entry points of the band-gap course. `make help` lists them.
VENV ?= .venv
PY   := $(VENV)/bin/python

.PHONY: help env course test lab benchmark clean student instructor slides

help:
	@echo "make env        create/update the Python 3.11 environment in $(VENV) (CPU torch 2.13.0, crabnet 2.0.8)"
	@echo "make course     run every notebook headless in quick mode -> output/ (course_run.json)"
	@echo "make test       unit tests + nbval on every notebook (offline, quick mode) -- what CI runs"
	@echo "make lab        start JupyterLab on the notebooks"
	@echo "make benchmark  CrabNet matbench expt_gap benchmark -> results/benchmarks/"
	@echo "make student    student version of every notebook (solutions -> NotImplementedError stubs) -> build/student/"
	@echo "make instructor instructor version (solutions kept, markers removed) -> build/instructor/"
	@echo "make slides     offline reveal.js slides of every notebook -> build/slides/ (executed copies from make course if present)"
	@echo "make clean      remove generated data and output (keeps $(VENV))"

env:
	bash scripts/setup_env.sh

course: env
	BANDGAP_NOMAD_OFFLINE=$${BANDGAP_NOMAD_OFFLINE:-0} $(PY) -m helpers.course

test: env
	BANDGAP_MODE=quick BANDGAP_NOMAD_OFFLINE=1 $(PY) -m pytest -p no:cacheprovider tests notebooks \
	  --nbval-lax --nbval-current-env --nbval-cell-timeout=1800 -o addopts= -rfE

lab: env
	$(PY) -m jupyter lab notebooks

benchmark: env
	$(PY) benchmarks/crabnet_matbench.py --config both --threads 1 --jobs 2 --perovskite --perovskite-configs quick,full

student: env
	$(PY) -m helpers.assignments student

instructor: env
	$(PY) -m helpers.assignments instructor

# Slides show figures when `make course` ran first (output/notebooks/); otherwise the stripped sources.
slides: env
	@src=$$(ls output/notebooks/[0-9][0-9]_*.ipynb 2>/dev/null || ls notebooks/[0-9][0-9]_*.ipynb); \
	  echo "slides from: $$src"; \
	  $(PY) -m helpers.slides export $$src --out build/slides

clean:
	rm -rf output data/nomad data/processed models build/student build/instructor build/slides
