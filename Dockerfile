# The helpdesk image: one image for web, worker, beat and imap-idle (docker-compose.yml picks the command).
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HELPDESK_VAR_DIR=/var/lib/helpdesk \
    # settings.py finds templates/ and static/ next to the helpdesk package (BASE_DIR), so the code must be
    # imported from /app, not from the copy `pip install .` puts into site-packages.
    PYTHONPATH=/app

WORKDIR /app

# Dependencies first, in their own layer: rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
RUN mkdir -p helpdesk && touch helpdesk/__init__.py \
    && pip install . \
    && pip uninstall -y helpdesk \
    && rm -rf helpdesk build ./*.egg-info

COPY . .
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --user-group --home-dir /app --no-create-home helpdesk \
    && mkdir -p /var/lib/helpdesk /app/staticfiles \
    && chown -R helpdesk:helpdesk /var/lib/helpdesk /app/staticfiles \
    && chmod +x docker/entrypoint.sh

USER helpdesk
VOLUME ["/var/lib/helpdesk"]
EXPOSE 8000
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["gunicorn", "helpdesk.wsgi", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]
