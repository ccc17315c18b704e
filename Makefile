# telerounds: `make run` starts the service, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The suite runs in this many processes (pytest-xdist; 0 runs it in one). The tests marked
# `alone` (calls over an emulated district link, recordings in real time) hold time limits a user
# feels only on CPU they do not share: they run afterwards, in one process.
TEST_WORKERS ?= 2

.PHONY: run test install browser poppler nss-tools coturn lint bench screenshots clean

run: $(STAMP)
	$(BIN)/python -m server

test: $(STAMP) browser poppler nss-tools coturn
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not alone" $(PYTEST_ARGS) || [ $$? -eq 5 ]
	$(BIN)/python -m pytest -m alone $(PYTEST_ARGS) || [ $$? -eq 5 ]

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "telerounds needs Python 3.11 or newer (found %s); install python3.11 and run: make PYTHON=python3.11" % sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

browser:
	@scripts/ensure-chromium

# The minutes tests read the PDFs back with poppler's pdftotext, pdffonts and pdfinfo.
poppler:
	@scripts/ensure-poppler

# The signature tests trust their test CA in pdfsig through an NSS database made with certutil.
nss-tools:
	@scripts/ensure-nss-tools

# The TURN tests start Debian's coturn (turnserver) on loopback.
coturn:
	@scripts/ensure-coturn

lint: $(STAMP)
	$(BIN)/ruff check server signaling tests bench
	$(BIN)/ruff format --check server signaling tests bench
	$(BIN)/mypy

# Refresh the README's pictures from the browser tests: every screen at desktop, tablet and phone
# size into docs/screenshots/<viewport>/<screen>.png (from the demo history, so charts have figures),
# and the steps of today's whole-flow tests into docs/screenshots/.
screenshots: $(STAMP) browser
	SCREENSHOTS_DIR=docs/screenshots $(BIN)/python -m pytest -q \
		tests/system/test_browser_a11y.py::test_every_screen_is_accessible_translated_and_fits_a_phone \
		tests/system/test_browser.py

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
