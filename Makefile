# Two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test venv bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# plain pip on purpose: torch/torchvision come from this machine's local wheels
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	# pytest exits 5 when it collected no test: that is a failure here, as is any failed test.
	$(BIN)/python -m pytest $(PYTEST_ARGS)

DEMO_SPEC ?= examples/figure2-mnist1d.toml
DEMO_DB   ?= sqlite:///basin.db
DEMO_PORT ?= 8050

# The paper's Figure 2 on MNIST-1D (local Ray, SQLite). Re-running resumes: finished points are skipped.
demo: $(STAMP)
	$(BIN)/basin sweep $(DEMO_SPEC) --storage $(DEMO_DB)
	$(BIN)/basin report --storage $(DEMO_DB) --sweep figure2-mnist1d --out report.html
	$(BIN)/basin best --storage $(DEMO_DB) --sweep figure2-mnist1d
	$(BIN)/basin best --storage $(DEMO_DB) --sweep figure2-mnist1d --coupling
	@echo "report.html written; serving the dashboard on http://127.0.0.1:$(DEMO_PORT) (Ctrl-C to stop)"
	$(BIN)/basin dashboard --storage $(DEMO_DB) --port $(DEMO_PORT)

bench: $(STAMP)
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) *.egg-info
