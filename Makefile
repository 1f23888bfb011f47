# The two commands: `make run` and `make test`. Everything else here serves them.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi
PORT ?= 5000
export PORT
REDIS_URL ?= redis://127.0.0.1:6379/0
export REDIS_URL

.PHONY: run test lint check-imports pytest redis browser pango pdf-tools widget-deps install install-test bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the project's dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed pango
install-test: $(VENV)/.installed-test pango

## make run: migrate the embedded SQLite database, create the demo project, serve.
run: install
	$(BIN)/flask db upgrade
	$(BIN)/flask demo
	$(BIN)/flask serve --port $(PORT)

## make test: lint, check the import rules, run the whole suite.
test: install-test redis browser pdf-tools widget-deps lint check-imports pytest

lint:
	$(BIN)/ruff check .

check-imports:
	$(BIN)/lint-imports --no-cache

pytest:
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Some tests talk to a real Redis (rate limits, the Celery broker). Use the one that
# answers on 127.0.0.1:6379, or install and start one (Debian's package; needs root).
redis:
	@if $(BIN)/python -c "import redis,sys; redis.Redis.from_url('$(REDIS_URL)', socket_connect_timeout=1).ping()" 2>/dev/null; then \
		echo "redis: answering at $(REDIS_URL)"; \
	else \
		command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server; }; \
		redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no; \
		sleep 1; echo "redis: started on 127.0.0.1:6379"; \
	fi

# The browser tests drive Debian's Chromium through Playwright (Playwright cannot download
# its own browser here). Install it when we can (root with apt); otherwise those tests are
# skipped with a message saying so.
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ -x "$(CHROMIUM)" ]; then echo "chromium: $(CHROMIUM)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
		&& echo "chromium: installed $(CHROMIUM)"; \
	else echo "chromium: not installed and not root: the browser tests will be skipped"; fi

# WeasyPrint (the PDF export of retrospectives) draws text with Debian's Pango. Install it
# when it is missing and we can (root with apt); otherwise say what the PDF export needs.
pango:
	@if ldconfig -p 2>/dev/null | grep -q 'libpango-1.0.so.0'; then echo "pango: installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			libpango-1.0-0 libpangoft2-1.0-0 >/dev/null && echo "pango: installed for WeasyPrint"; \
	else echo "pango: missing and not root: install libpango-1.0-0 libpangoft2-1.0-0 for the PDF export"; fi

# The PDF export's test also renders a page to PNG with poppler's pdftoppm (tests only).
pdf-tools:
	@if command -v pdftoppm >/dev/null; then echo "pdftoppm: installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			poppler-utils >/dev/null && echo "pdftoppm: installed (poppler-utils)"; \
	else echo "pdftoppm: missing and not root: install poppler-utils, or the PDF picture test is skipped"; fi

# axe-core (the accessibility scan of the widget) comes from the npm registry.
widget-deps:
	@if ! command -v npm >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null; fi
	@if command -v npm >/dev/null; then cd widget && npm ci --no-audit --no-fund --silent \
		&& echo "widget: axe-core installed"; \
	else echo "npm not available: the widget's accessibility scan will be skipped"; fi

bench: install-test
	$(BIN)/python bench/intake.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
