"""Entry points: `gunicorn wsgi:app` for the web, `celery -A wsgi:celery worker -B` for
background work (tagging and its sweep) when CELERY_BROKER_URL is set."""

from app import create_app

app = create_app()
celery = app.extensions["celery"]
