# Real-time clusters. `make demo` and `make test` install everything they need first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools
COMETBFT_VERSION := v0.39.4
COMETBFT := $(TOOLS)/bin/cometbft
COMETBFT_STAMP := $(TOOLS)/cometbft-$(COMETBFT_VERSION).installed
GO_FLAGS := GOBIN=$(CURDIR)/$(TOOLS)/bin
ANVIL := tools/node_modules/.bin/anvil
BOOTSTRAP := $(TOOLS)/bin/rtc-bootstrap

.PHONY: setup demo test bench clean examples proto contracts

setup: $(VENV)/.installed $(COMETBFT_STAMP) $(BOOTSTRAP) $(ANVIL) proto examples contracts

$(VENV)/.installed: requirements.txt pyproject.toml
	@echo "==> Python environment ($(VENV))"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

$(COMETBFT_STAMP):
	@echo "==> CometBFT $(COMETBFT_VERSION) (go install; the first build takes a few minutes)"
	@mkdir -p $(TOOLS)/bin
	@$(GO_FLAGS) go install github.com/cometbft/cometbft/cmd/cometbft@$(COMETBFT_VERSION)
	@$(COMETBFT) version
	@touch $@

# Writes CometBFT's state at a height whose app state was restored from Swarm (tools/bootstrap).
$(BOOTSTRAP): tools/bootstrap/main.go tools/bootstrap/go.mod tools/bootstrap/go.sum
	@echo "==> rtc-bootstrap (go build against cometbft $(COMETBFT_VERSION))"
	@mkdir -p $(TOOLS)/bin
	@cd tools/bootstrap && go build -o $(CURDIR)/$(BOOTSTRAP) .

$(ANVIL): tools/package.json tools/package-lock.json
	@echo "==> anvil (npm package @foundry-rs/anvil, pinned in tools/package-lock.json)"
	@npm install --prefix tools --no-audit --no-fund --loglevel=error
	@$(ANVIL) --version | head -1
	@touch $@

proto: $(VENV)/.installed $(COMETBFT_STAMP)
	@$(PY) scripts/gen_proto.py --cometbft-version $(COMETBFT_VERSION)

examples: $(VENV)/.installed
	@bash scripts/build_examples.sh

contracts: $(VENV)/.installed
	@$(PY) scripts/compile_contracts.py

demo: setup
	@$(PY) -m rtc.demo

test: setup
	@$(PY) -m pytest -q

bench: setup
	@$(PY) bench/run.py

clean:
	rm -rf build src/rtc/abci/_pb
