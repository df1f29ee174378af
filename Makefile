# Set-up and everyday commands. `make demo` and `make test` each do all the set-up they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test check-python clean

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || \
	  { echo "edgemon needs Python >= 3.11; $(PYTHON) is $$($(PYTHON) -V 2>&1). Set PYTHON=python3.11 or newer."; exit 1; }
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || \
	  { echo "$(PYTHON) cannot create virtual environments; on Debian or Raspberry Pi OS run: sudo apt-get install -y python3-venv"; exit 1; }

$(BIN)/python: | check-python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Replays the bundled CWRU excerpt through the whole pipeline (train, ONNX, states, MQTT).
demo: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[train]'
	$(BIN)/edgemon demo

# Installs the test dependencies and runs the whole test suite (needs mosquitto on PATH).
test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis edgemon-demo
	find edgemon -name '*.so' -delete  # the C kernel an editable install built in place
