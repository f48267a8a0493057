# The two commands of the README: `make run` (the helpdesk on embedded defaults) and `make test` (everything CI runs).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install run test lint fmt migrate worker beat web clean-var

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || "$$(scripts/find-python.sh)" -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@test -f .env || { printf '# Local settings (not committed). See .env.example.\nSECRET_KEY=%s\n' \
		"$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))')" > .env; echo 'Wrote .env with a new SECRET_KEY.'; }
	@touch $@

## Web server, Celery worker and beat together on SQLite, local files and the filesystem broker. Ctrl-C stops all.
run: install
	@mkdir -p var
	DEBUG=true $(PY) manage.py migrate --noinput
	DEBUG=true $(PY) manage.py bootstrap_demo
	DEBUG=true PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho -f Procfile.dev start

## Lint, migrations check and the whole suite on real servers (PostgreSQL, Redis, Dovecot, Postfix, S3, ...).
test: install
	scripts/install-test-deps.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	HELPDESK_TESTING=1 $(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

migrate: install
	$(PY) manage.py migrate --noinput

web worker beat: install
	DEBUG=true PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho -f Procfile.dev start $@
