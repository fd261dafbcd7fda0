# fluorosim: `make run` starts the simulator, `make test` runs the whole test suite headless.
# Each first checks the system packages with the system Python (app/syscheck.py needs only the
# standard library) and stops at once with one `apt-get install` line when any is missing; then it
# creates .venv and installs fluorosim with its dependencies (once; again when pyproject.toml
# changes).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# extra arguments for the system check, e.g. SYSCHECK_ARGS="--library-path /opt/lib"
SYSCHECK_ARGS ?=

.PHONY: run test typecheck lint bench clean

# extra arguments for `make run`, e.g. RUN_ARGS="--scenario sij-lateral --trainee me"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run:
	@$(PYTHON) -m app.syscheck --gui $(SYSCHECK_ARGS)
	@$(MAKE) --no-print-directory $(STAMP)
	$(VENV)/bin/fluorosim run --mouse $(RUN_ARGS)

test:
	@$(PYTHON) -m app.syscheck $(SYSCHECK_ARGS)
	@$(MAKE) --no-print-directory $(STAMP)
	@$(MAKE) --no-print-directory typecheck
	QT_QPA_PLATFORM=offscreen VTK_DEFAULT_OPENGL_WINDOW=vtkOSOpenGLRenderWindow $(PY) -m pytest

# mypy on all five packages (configuration in pyproject.toml); it sees the folders under their
# installed names (fluorosim.app, …) through links in .typecheck/, as the editable install's import
# hook is invisible to it.
PACKAGES := app haptics models render scenarios
typecheck: $(STAMP)
	@mkdir -p .typecheck/fluorosim
	@for p in $(PACKAGES) assets; do ln -sfn ../../$$p .typecheck/fluorosim/$$p; done
	$(VENV)/bin/mypy $(foreach p,$(PACKAGES),-p fluorosim.$(p))

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(VENV)/bin/fluorosim bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .typecheck
