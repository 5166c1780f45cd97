# Two entry points for a fresh machine with only Python: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Metaflow 2.15.21 predates custom decorators: compiled flows must run on it too.
VENV_OLD := .venv-mf215
OLD_METAFLOW := 2.15.21
DEMO_DIR := build/demo

.PHONY: demo test fuzz bench lint clean venv venv-old venv-mf216 venv-argo

# The reference Metaflow the differential tests compare against (pyproject only sets a floor).
REF_METAFLOW := 2.19.39

# setuptools notes every editable install of a package mapped from the project root ("folders
# named like the package may shadow it"): no such folder here, so that note is silenced.
$(VENV)/.installed .venv-argo/.installed: export PYTHONWARNINGS = ignore:Editable installation
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]' 'metaflow==$(REF_METAFLOW)'
	$(PY) -m compileall -q transformer runtime cli.py targets.py cache.py project.py explain.py __init__.py __main__.py  # as pip does for a regular install
	touch $@

$(VENV_OLD)/.installed:
	$(PYTHON) -m venv $(VENV_OLD)
	$(VENV_OLD)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_OLD)/bin/python -m pip install --quiet 'metaflow==$(OLD_METAFLOW)'
	touch $@

# Metaflow 2.16.0, the lowest version whose mutators and configs decoflow evaluates
# (transformer/expansion): its internals module is tested on it and on $(REF_METAFLOW).
VENV_MF216 := .venv-mf216
$(VENV_MF216)/.installed:
	$(PYTHON) -m venv $(VENV_MF216)
	$(VENV_MF216)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_MF216)/bin/python -m pip install --quiet 'metaflow==2.16.0'
	touch $@

venv: $(VENV)/.installed
venv-old: $(VENV_OLD)/.installed
venv-mf216: $(VENV_MF216)/.installed

# Argo Workflows spec generation (tests/test_argo.py): Metaflow + an S3 stand-in (moto).
VENV_ARGO := .venv-argo
$(VENV_ARGO)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV_ARGO)
	$(VENV_ARGO)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_ARGO)/bin/python -m pip install --quiet 'metaflow==$(REF_METAFLOW)' 'kubernetes<34' boto3 'moto==5.2.5' flask flask-cors
	$(VENV_ARGO)/bin/python -m pip install --quiet -e .
	touch $@

venv-argo: $(VENV_ARGO)/.installed

demo: $(VENV)/.installed
	$(PY) scripts/demo.py $(DEMO_DIR)

test: $(VENV)/.installed $(VENV_OLD)/.installed $(VENV_MF216)/.installed $(VENV_ARGO)/.installed
	DECOFLOW_OLD_PYTHON=$(CURDIR)/$(VENV_OLD)/bin/python \
	DECOFLOW_MF216_PYTHON=$(CURDIR)/$(VENV_MF216)/bin/python $(PY) -m pytest -n 2 --dist worksteal -q --durations=20

fuzz: $(VENV)/.installed
	DECOFLOW_FUZZ_PROFILE=long $(PY) -m pytest -n 2 --dist worksteal -q tests -k fuzz

bench: $(VENV)/.installed
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check transformer runtime tests benchmarks scripts cli.py targets.py cache.py project.py explain.py __init__.py __main__.py

clean:
	rm -rf build $(VENV) $(VENV_OLD) $(VENV_MF216) $(VENV_ARGO) *.egg-info .pytest_cache .hypothesis
