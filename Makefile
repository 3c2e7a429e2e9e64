# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# setuptools' note on every editable install says nothing a user can act on
QUIET_BUILD := PYTHONWARNINGS="ignore:Editable installation"

.PHONY: run test test-all examples lint bench docs docs-test wheel install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(QUIET_BUILD) $(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/workbench run cases/studies/default.yaml --out results/default.nc

test: $(STAMP)
	$(BIN)/python -m pytest -q

# the documented examples (docs/examples), each script run with its assertions
examples: $(STAMP)
	$(BIN)/python -m pytest -q -m "" tests/test_examples.py

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ""

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_default_study.py

# the documentation site in site/ (the study reference is regenerated from the schema;
# the API reference comes from the docstrings, the equations are rendered to MathML)
docs: $(STAMP)
	$(QUIET_BUILD) $(BIN)/python -m pip install --quiet -e ".[docs]"
	$(BIN)/python docs/gen_reference.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# the documentation's tests, the strict site build among them (CI)
docs-test: $(STAMP)
	$(QUIET_BUILD) $(BIN)/python -m pip install --quiet -e ".[docs]"
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m pytest -q -m "" tests/test_docs.py

# the wheel installed into a fresh venv runs a study outside the checkout
install-test: $(STAMP)
	$(BIN)/python -m pytest -q -m "" tests/test_install.py

# the wheel, with the packages' data, in dist/ (`pip install dist/*.whl`)
wheel: $(STAMP)
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir dist .

clean:
	rm -rf $(VENV) results site dist build .pytest_cache
