# The MiG appliance.  `make run` hosts a grid; `make test` runs every test
# (it installs what the tests need first: a venv with pytest, and system
# packages through apt-get when run as root).
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STATE  ?= mig-state
PYTEST_ARGS ?=

.PHONY: run test deps pyz bench docs clean

run:
	$(PYTHON) migappliance.py serve --state $(STATE)

deps: $(VENV)/.deps-ok

$(VENV)/.deps-ok: tests/requirements.txt tests/install-deps.sh
	bash tests/install-deps.sh "$(PYTHON)" "$(VENV)"
	touch $@

test: deps
	@$(PY) -m pytest -q $(PYTEST_ARGS) tests; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; \
	  if [ "$$CI" = "true" ]; then exit 1; else exit 0; fi; fi; exit $$rc

pyz: dist/migappliance.pyz

dist/migappliance.pyz: migappliance.py $(shell find mig resources -type f -not -path '*__pycache__*' 2>/dev/null)
	rm -rf build/pyz && mkdir -p build/pyz dist
	cp -r mig build/pyz/mig
	cp -r resources build/pyz/resources
	cp migappliance.py build/pyz/__main__.py
	find build/pyz -name __pycache__ -prune -exec rm -rf {} +
	$(PYTHON) -m zipapp build/pyz -p '/usr/bin/env python3' -c -o $@
	@echo "built $@"

bench: deps
	$(PY) bench/run_all.py

docs: deps
	$(PY) -m mig.docsgen docs
	$(PY) tests/screenshots.py docs/screenshots

clean:
	rm -rf build dist .pytest_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
