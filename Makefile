# pumpfw developer and CI entry points.
#
#   make test     lint, CPython tests + coverage, MicroPython unix port, MicroPython WebAssembly
#                 port, the boards' suites, a 1000-cut power-cut campaign, pyright against
#                 MicroPython stubs, mpy-cross for three targets
#   make run      the desktop simulator          make bench   whole-process benchmark vs SimPy
#   make mpy BOARD=rpi_pico|esp32|pyboard        cross-compile one board into build/<board>/
#   make heap     each board's build booted on 32-bit MicroPython (wasm): .mpy size, heap after boot
#   make deploy BOARD=... PORT=/dev/ttyACM0 [CONFIG=file.json] [KEY_FILE=...]   copy it onto a board
#                 with mpremote, hard-reset; with a "link" in board.json, provision its keys (tools/link_keys.py)
#   make demo BOARD=... [CONFIG=file.json]   the board's main.py on the virtual board (unix port)
#   make soak     the property tests with a large hypothesis profile (>= 500 long examples), 100,000
#                 mutated link frames, and a 10,000-cut power-cut campaign
#   make mutants  mutation testing of firmware/ (mutmut); survivors are listed in docs/mutants.md
#   make clean    remove build output (keeps .venv and node_modules; `make distclean` drops them)
#
# Bootstrap is automatic and stamped: .venv/.installed (pip install -e '.[dev]', redone when
# pyproject.toml changes), node_modules/.installed (npm ci from package-lock.json) and
# build/stubs/<port>/.installed (MicroPython type stubs for pyright).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test
.DELETE_ON_ERROR:
# The suites run one after another, in the order listed in `test`, stopping at the first failure.
.NOTPARALLEL:
MAKEFLAGS += --no-builtin-rules

VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# The project byte-compiled at install and before the bench: with PYTHONDONTWRITEBYTECODE set (as on
# CI) every pumpsim process would otherwise compile its modules again (about 0.15 s of each run).
PYC := $(PY) -m compileall -q firmware hal sim micropython.py > /dev/null
VENV_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

# MicroPython type stubs, one folder per port (pip install --target), used by pyright.
# rp2-rpi-pico = armv6m (RP2040), esp32 = xtensawin, stm32 = armv7emsp: the boards' mpy-cross targets.
STUB_PORTS := rp2-rpi-pico esp32 stm32
STUBS_VERSION := 1.29.0.post1
STDLIB_STUBS_VERSION := 1.29.0.post2
STUB_STAMPS := $(foreach p,$(STUB_PORTS),build/stubs/$(p)/.installed-$(STUBS_VERSION))

MPY_ARCHES := armv6m xtensawin armv7emsp

# Heap for the MicroPython runs (unix port -X heapsize, wasm loadMicroPython heapsize).
MP_HEAPSIZE ?= 2M
WASM_HEAPSIZE ?= 2097152
export MP_HEAPSIZE WASM_HEAPSIZE

BOARDS := rpi_pico esp32 pyboard
BOARD ?=
PORT ?=
CONFIG ?=
KEY_FILE ?=

.PHONY: test lint test-py test-unix test-wasm test-boards test-campaign typecheck mpy heap deploy demo run bench soak \
        mutants clean \
        distclean \
        bootstrap venv .venv node node_modules stubs

# ---------------------------------------------------------------- bootstrap

bootstrap: $(VENV_STAMP) $(NODE_STAMP) $(STUB_STAMPS)

venv .venv: $(VENV_STAMP)

$(VENV_STAMP): pyproject.toml
	@if [[ ! -x $(PY) ]]; then echo "python3 -m venv $(VENV)"; python3 -m venv $(VENV); fi
	$(BIN)/pip install --disable-pip-version-check -q -e '.[dev]'
	@$(PYC)
	@touch $@

node node_modules: $(NODE_STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

stubs: $(STUB_STAMPS)

build/stubs/%/.installed-$(STUBS_VERSION): | $(VENV_STAMP)
	rm -rf build/stubs/$*
	$(BIN)/pip install --disable-pip-version-check -q --no-compile --target build/stubs/$* \
	    micropython-$*-stubs==$(STUBS_VERSION) micropython-stdlib-stubs==$(STDLIB_STUBS_VERSION)
	@touch $@

# ---------------------------------------------------------------- test (in this order)

test: lint test-py test-unix test-wasm test-boards test-campaign typecheck mpy
	@echo "make test: all suites passed"

lint: $(VENV_STAMP)
	$(BIN)/ruff check .

test-py: $(VENV_STAMP) $(NODE_STAMP)  # node: the ticks cases also run on the wasm port
	$(BIN)/pytest --cov=firmware --cov=hal --cov-report=term

test-unix: $(VENV_STAMP)
	tools/run_unix.sh

test-wasm: $(NODE_STAMP)
	node tools/run_wasm.mjs

test-boards: $(VENV_STAMP)
	tools/run_boards.sh

# The power-cut campaign (docs/journal.md): the default scenario over 30 days, 1000 cuts at random
# instants (3 in 10 tearing a journal write), each run judged against the uninterrupted one.
test-campaign: $(VENV_STAMP)
	$(PY) -m sim.cli campaign --days 30 --power-cuts 1000 --seed 1

typecheck: $(VENV_STAMP) $(STUB_STAMPS)
	tools/typecheck.sh $(or $(BOARD),$(BOARDS))

# make mpy: the core for three arches, then every board's build/<board>/; make mpy BOARD=x: that board.
mpy: $(VENV_STAMP)
ifeq ($(BOARD),)
	tools/build_mpy.sh $(MPY_ARCHES)
	@for b in $(BOARDS); do tools/build_board.sh $$b; done
else
	tools/build_board.sh $(BOARD)
endif

# ---------------------------------------------------------------- boards

heap: $(NODE_STAMP) mpy
	node tools/board_heap.mjs $(or $(BOARD),$(BOARDS))

deploy: $(VENV_STAMP)
	@if [[ -z "$(BOARD)" ]]; then echo "make deploy: say which board: BOARD=rpi_pico|esp32|pyboard PORT=/dev/ttyACM0" >&2; exit 2; fi
	tools/build_board.sh $(BOARD)
	CONFIG="$(CONFIG)" KEY_FILE="$(KEY_FILE)" tools/deploy.sh $(BOARD) $(PORT)

demo: $(VENV_STAMP)
	$(PY) tools/demo.py $(or $(BOARD),rpi_pico) $(if $(CONFIG),--config $(CONFIG))

# ---------------------------------------------------------------- run


run: $(VENV_STAMP)
	$(BIN)/pumpsim run

bench: $(VENV_STAMP)  # BENCH_FLAGS=--quick|--strict|--out DIR (docs/bench.md)
	@$(PYC)
	$(PY) -m sim.bench $(BENCH_FLAGS)

soak: $(VENV_STAMP)
	HYPOTHESIS_PROFILE=soak $(BIN)/pytest -s -p no:cacheprovider tests/host/test_stateful.py tests/host/test_properties.py \
	    tests/host/test_limit_edge.py tests/host/test_referee_bounded.py tests/host/test_state_props.py \
	    tests/host/test_frame_fuzz.py
	$(PY) -m sim.cli campaign --days 30 --power-cuts 10000 --seed 2 --max-outage-s 86400

mutants: $(VENV_STAMP)
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2 || true
	$(BIN)/mutmut results

clean:
	rm -rf build .pytest_cache .ruff_cache .coverage htmlcov .hypothesis mutants
	find . -name __pycache__ -type d -not -path './.venv/*' -not -path './node_modules/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) node_modules *.egg-info
