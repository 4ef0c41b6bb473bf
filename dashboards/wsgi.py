"""WSGI entry point for production serving: ``gunicorn dashboards.wsgi:application``.

The storage URL comes from the environment variable ``BASIN_STORAGE`` (default
``sqlite:///basin.db``). The database is opened read-only on the first request of each worker,
so importing this module never touches it, and workers forked after a ``--preload`` import
open their own connections. Example::

    BASIN_STORAGE=postgresql+psycopg://basin@db:5432/basin \\
        gunicorn --bind 0.0.0.0:8050 --workers 2 --threads 4 dashboards.wsgi:application
"""

from __future__ import annotations

from dashboards.app import create_app

app = create_app(None)  # None: storage.default_url(), i.e. $BASIN_STORAGE, else sqlite:///basin.db
#: The WSGI callable (Dash's Flask server).
application = app.server
