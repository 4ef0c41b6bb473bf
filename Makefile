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

demo: $(STAMP)
	$(BIN)/basin train --dataset mnist1d --model cnn --optimizer adamw --lr 1e-3 --wd-norm 0.025 --schedule cosine --epochs 5 --seed 0

bench: $(STAMP)
	$(BIN)/python bench/optim_step.py

clean:
	rm -rf $(VENV) *.egg-info
