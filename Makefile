# churnops — the two commands a new user needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOME_DIR ?= .churnops
MODEL_DIR ?= $(HOME_DIR)/models/demo

.PHONY: run install train serve test test-fast test-container image lint format clean bench-quality bench-repeat bench-serving bench-load screenshots bench-scale

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.3

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[train,dev]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install churnops with training and dev tools

PORT ?= 8080

run: install  ## train on the embedded synthetic data, then serve the model on port 8080
	$(BIN)/churnops train --out $(MODEL_DIR) --force
	$(BIN)/churnops serve --model $(MODEL_DIR) --port $(PORT) --generate-credentials

test: install  ## run the whole test suite (the container tests run in test-container)
	$(BIN)/python -m pytest -m "not container"

test-fast: install  ## tests without the slow ones
	$(BIN)/python -m pytest -m "not slow and not container"

IMAGE ?= churnops:latest
# docker when its engine answers (a client alone is not enough), else podman.
ENGINE ?= $(shell docker info >/dev/null 2>&1 && echo docker || echo podman)
BASE_IMAGE ?=

image: install  ## build the serving image with the model in MODEL_DIR (trained by make run)
	@test -f $(MODEL_DIR)/manifest.json || { echo "no model in $(MODEL_DIR): run make run or set MODEL_DIR"; exit 1; }
	@# build/model is the one model directory .dockerignore lets into the build context.
	if [ "$$(realpath $(MODEL_DIR))" != "$$(realpath -m build/model)" ]; then \
	  rm -rf build/model && mkdir -p build && cp -r $(MODEL_DIR) build/model; fi
	$(ENGINE) build $(if $(filter podman,$(ENGINE)),--format docker) \
	  $(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE)) \
	  --build-arg MODEL_DIR=build/model -t $(IMAGE) .

test-container: install  ## build the image with podman, run it, probe it, stop it (needs ../shared)
	bash -c 'source ../shared/ci/container-env.sh && $(BIN)/python -m pytest -s -m container tests/container'

bench-serving: install  ## churnops serve vs a DataFrame+Pipeline server, MLServer, the ceiling; the prediction log's cost → docs/performance.md
	$(BIN)/python bench/serving.py
	$(BIN)/python bench/prediction_log.py --pin --out docs/performance.md
	$(BIN)/python bench/prediction_log.py --out docs/performance.md

bench-load: install  ## reliability under load and hostile input (needs wrk) → docs/reliability.md
	$(BIN)/python bench/load.py

screenshots: install  ## the scoring page and the report, from a real server → docs/img/*.png (needs chromium)
	bash -c 'if [ -f ../shared/ci/services-env.sh ]; then source ../shared/ci/services-env.sh && browser_env; fi; \
	  $(BIN)/python bench/screenshots.py'

lint: install  ## ruff (lint, bandit rules, format), mypy --strict, import layers, pip-audit
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache  # the layers of docs/architecture.md
	BIN=$(BIN) bash .ci/audit.sh  # offline-safe: skips with one line when it cannot reach the database

format: install
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench-quality: install  ## churnops train vs reference models on Telco and the dev tables → docs/quality.md
	$(BIN)/python bench/quality.py

bench-repeat: install  ## the same churnops train 3× per table: spread and time budget → docs/repeatability.md
	$(BIN)/python bench/repeat.py

bench-scale: install  ## batch scoring of 10M rows: local vs Dask with 1 and 2 workers → docs/scaling.md
	$(BIN)/python bench/scale.py

clean:
	rm -rf $(VENV) $(HOME_DIR) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
