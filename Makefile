# Real-time clusters. `make demo` and `make test` install everything they need first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools
COMETBFT_VERSION := v0.39.4
COMETBFT := $(TOOLS)/bin/cometbft
COMETBFT_STAMP := $(TOOLS)/cometbft-$(COMETBFT_VERSION)-patched.installed
GO_FLAGS := GOBIN=$(CURDIR)/$(TOOLS)/bin
ANVIL := tools/node_modules/.bin/anvil
BOOTSTRAP := $(TOOLS)/bin/rtc-bootstrap
NATIVE_STAMP := $(VENV)/.native-installed

.PHONY: setup demo test bench chaos clean examples proto contracts native

setup: $(VENV)/.installed $(NATIVE_STAMP) $(COMETBFT_STAMP) $(BOOTSTRAP) $(ANVIL) proto examples contracts

$(VENV)/.installed: requirements.txt pyproject.toml
	@echo "==> Python environment ($(VENV))"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

# The compiled core (native/, Rust + PyO3): a wheel built by maturin and installed into .venv.
# A node runs it unless RTC_CORE=python says otherwise (docs/native.md).
$(NATIVE_STAMP): $(VENV)/.installed native/Cargo.toml native/Cargo.lock native/pyproject.toml $(wildcard native/src/*.rs)
	@echo "==> rtc_native, the compiled core (cargo build through maturin; about a minute the first time)"
	@command -v cargo >/dev/null || { echo "make: cargo not found; the compiled core needs Rust (https://rustup.rs)." \
		"Without it, nodes can still run the Python core: RTC_CORE=python" >&2; exit 1; }
	@rm -rf build/native
	@$(VENV)/bin/maturin build --release --locked --quiet -m native/Cargo.toml -o build/native -i $(PY)
	@$(PY) -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps build/native/rtc_native-*.whl
	@touch $@

native: $(NATIVE_STAMP)

# The pinned module from Go's proxy with one patch (tools/cometbft/*.patch: the ABCI socket
# client's flush timer, which upstream sets to 20 ns and so spins under load), built with go build.
COMETBFT_PATCHES := $(wildcard tools/cometbft/*.patch)
COMETBFT_SRC := $(TOOLS)/src/cometbft-$(COMETBFT_VERSION)

$(COMETBFT_STAMP): $(COMETBFT_PATCHES)
	@echo "==> CometBFT $(COMETBFT_VERSION) (pinned module, $(words $(COMETBFT_PATCHES)) patch; the first build takes a few minutes)"
	@mkdir -p $(TOOLS)/bin $(TOOLS)/src
	@rm -rf $(COMETBFT_SRC)
	@cp -r "$$(go mod download -json github.com/cometbft/cometbft@$(COMETBFT_VERSION) | $(PYTHON) -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')" $(COMETBFT_SRC)
	@chmod -R u+w $(COMETBFT_SRC)
	@for p in $(COMETBFT_PATCHES); do patch --quiet -d $(COMETBFT_SRC) -p1 < $$p; done
	@cd $(COMETBFT_SRC) && go build -o $(CURDIR)/$(COMETBFT) ./cmd/cometbft
	@$(COMETBFT) version
	@rm -f $(TOOLS)/cometbft-*.installed
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

# Faults under load on a 4-node devnet, at most 10 minutes (bench/chaos.py --help for the knobs).
chaos: setup
	@$(PY) bench/chaos.py

clean:
	rm -rf build src/rtc/abci/_pb src/rtc/ethereum/contracts
