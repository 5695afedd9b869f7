# churnops — the two commands a new user needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOME_DIR ?= .churnops
MODEL_DIR ?= $(HOME_DIR)/models/demo

.PHONY: run install train serve test test-fast lint format clean bench-quality

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.3

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[train,dev]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install churnops with training and dev tools

PORT ?= 8080

run: install  ## train on the embedded synthetic data, then serve the model on port 8080
	$(BIN)/churnops train --out $(MODEL_DIR)
	$(BIN)/churnops serve --model $(MODEL_DIR) --port $(PORT) --generate-credentials

test: install  ## run the whole test suite
	$(BIN)/python -m pytest

test-fast: install  ## tests without the slow ones
	$(BIN)/python -m pytest -m "not slow"

lint: install  ## ruff (lint + format check) and mypy
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

format: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench-quality: install  ## compare default training with reference models on the shared Telco data
	$(BIN)/python bench/quality.py

clean:
	rm -rf $(VENV) $(HOME_DIR) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
