"""WSGI entry point for a WSGI server: `gunicorn wsgi:app` (settings come from the environment).

gunicorn imports this in each worker (do not use --preload): the worker's threads start here. Logging
is configured as `ivr serve` configures it (`IVR_LOG_FORMAT`). Put it behind a buffering proxy, as
docs/operators/production.md says: `ivr serve` is the documented way to run it.
"""

from ivr import logs
from ivr.app import create_app, start_background
from ivr.config import Settings

settings = Settings.from_env()
logs.configure(settings.log_format)
app = create_app(settings)
start_background(app)
