# Two entry points that work on a fresh machine with only Python and make (`make test` installs
# PostgreSQL with apt-get when it is missing: see scripts/ensure_servers.sh).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo dev test install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	DAGSTER_HOME=$(CURDIR)/dagster_home $(BIN)/smsc-dagster demo

# The UI on the demo's instance and simulated account (the simulator and `dagster dev`), until Ctrl-C.
# `make dev PORT=3001` for another port.
PORT ?= 3000
dev: $(STAMP)
	DAGSTER_HOME=$(CURDIR)/dagster_home $(BIN)/smsc-dagster dev --port $(PORT)

# The servers the tests start themselves (a private PostgreSQL) are installed first when missing.
test: $(STAMP)
	bash scripts/ensure_servers.sh
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) data dagster_home/storage dagster_home/logs dagster_home/history dagster_home/schedules
