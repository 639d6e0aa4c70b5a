"""WSGI entry point for gunicorn: `gunicorn wsgi:app` (settings come from the environment).

gunicorn imports this in each worker (do not use --preload): the worker's threads start here.
"""

from ivr.app import create_app, start_background

app = create_app()
start_background(app)
