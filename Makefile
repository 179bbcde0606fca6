# The two commands a fresh machine needs: `make demo` and `make test`.
# Both create the virtual env in .venv and install the project into it on first use.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test gpu-test bench proto clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m xsched_tui.demo

test: $(STAMP)
	$(PY) -m pytest -q

gpu-test: $(STAMP)
	$(PY) -m pytest -q -m gpu tests/gpu tests/llmserve/test_model_cuda.py

bench: $(STAMP)
	$(PY) bench/paper_fig9.py --device sim
	$(PY) bench/overhead.py

proto: $(STAMP)
	$(PY) scripts/gen_protos.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
