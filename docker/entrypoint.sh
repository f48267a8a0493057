#!/bin/sh
# Container entry point. The web server (gunicorn) first brings the database schema and the static files up to
# date; worker, beat and imap-idle start directly, and wait for web's migrations through compose's depends_on.
set -eu

if [ "${1:-}" = "gunicorn" ]; then
    python manage.py migrate --noinput
    python manage.py collectstatic --noinput --verbosity 0
fi

exec "$@"
