# fluorosim: `make run` starts the simulator, `make test` runs the whole test suite headless.
# Both create .venv and install fluorosim with its dependencies first (once; again when
# pyproject.toml changes).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

# extra arguments for `make run`, e.g. RUN_ARGS="--scenario sij-lateral --trainee me"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m app.syscheck --gui
	$(VENV)/bin/fluorosim run --mouse $(RUN_ARGS)

test: $(STAMP)
	$(PY) -m app.syscheck
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(VENV)/bin/fluorosim bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
