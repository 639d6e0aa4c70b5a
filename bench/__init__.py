"""The benchmark: whole calls against the service under gunicorn, side by side with a floor app."""
