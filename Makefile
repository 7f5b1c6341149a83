# Two entry points for newcomers: `make demo` and `make test`. Each sets up what it needs;
# `make help` lists the others.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHARMCRAFT_VENV := .venv-charmcraft
CHARMCRAFT_STAMP := $(CHARMCRAFT_VENV)/.installed

.PHONY: help demo sandbox test unit charm-check lint run bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,lint]'
	touch $@

## help: list the targets
help:
	@awk -F': ' '/^## /{ printf "  %-12s %s\n", substr($$1, 4), $$2 }' $(MAKEFILE_LIST)

## demo: run an operator against the built-in fake cluster and show what it creates
demo: $(STAMP)
	$(BIN)/python scripts/demo.py

## sandbox: a fake cluster with the CRD and the operator running, for kubectl in another terminal
sandbox: $(STAMP)
	$(BIN)/python scripts/sandbox.py

## test: every test, plus the charm's schema check
test: $(STAMP) charm-check
	$(BIN)/pytest -q

## unit: the fast tests only
unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

# charmcraft lives in its own venv: it pins its own versions of packages the project also uses.
$(CHARMCRAFT_STAMP):
	$(PYTHON) -m venv $(CHARMCRAFT_VENV)
	$(CHARMCRAFT_VENV)/bin/pip install --quiet --upgrade pip
	$(CHARMCRAFT_VENV)/bin/pip install --quiet 'charmcraft==4.5.*'
	touch $@

## charm-check: validate charmcraft.yaml and the metadata, config and actions files offline
charm-check: $(CHARMCRAFT_STAMP)
	$(CHARMCRAFT_VENV)/bin/charmcraft expand-extensions > /dev/null
	@echo "charmcraft expand-extensions: ok"

## lint: ruff (format and lint) and mypy on src/ and lib/
lint: $(STAMP)
	$(BIN)/ruff format --check src lib
	$(BIN)/ruff check src lib
	$(BIN)/mypy src lib

## run: start the operator against the current kubeconfig (KUBECONFIG or ~/.kube/config)
run: $(STAMP)
	@test -f "$${KUBECONFIG:-$$HOME/.kube/config}" || { echo "make run: no kubeconfig at $${KUBECONFIG:-$$HOME/.kube/config}: set KUBECONFIG, or start a local cluster with make sandbox" >&2; exit 2; }
	$(BIN)/locust-operator run

## bench: speed and memory figures against the fake cluster (printed, never asserted)
bench: $(STAMP)
	$(BIN)/python benchmarks/reconcile.py

clean:
	rm -rf $(VENV) $(CHARMCRAFT_VENV) .demo
