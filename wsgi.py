"""Entry points: `gunicorn wsgi:app` for the web, `celery -A wsgi:celery worker -B` for
background work (tagging and its sweep) when CELERY_BROKER_URL is set."""

import gc

from app import create_app

app = create_app()
celery = app.extensions["celery"]

# Everything built so far (modules, the app, its config and blueprints) lives as long as the
# process. Freezing it keeps the collector from re-scanning those objects on every full
# collection: without it a full collection of a serving worker took 60-70 ms, the slowest
# 5% of board requests (bench/board.py). Python's gc docs recommend this for servers.
gc.freeze()
