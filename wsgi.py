"""WSGI entry point for gunicorn: `gunicorn wsgi:app` (settings come from the environment)."""

from ivr import create_app

app = create_app()
