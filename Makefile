PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test dev lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@PYTHON=$(PYTHON) sh scripts/check_system.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[manim,test]'
	touch $(STAMP)

demo: install
	$(BIN)/videoq demo

test: install
	$(BIN)/pytest

dev: install
	$(BIN)/videoq dev

lint: install
	$(BIN)/ruff check .

clean:
	@# A PostgreSQL cluster moved out of a private folder (run as root) is named in
	@# cluster-location; only folders of that name pattern are removed.
	@for file in $$(find .videoq -name cluster-location 2>/dev/null); do \
		dir=$$(cat "$$file"); \
		case "$$dir" in */videoq-postgres-data-*) rm -rf "$$dir";; esac; \
	done
	rm -rf $(VENV) .videoq videos .pytest_cache
