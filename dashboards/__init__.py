"""Basin's dashboard: a read-only Dash app over the results store, its JSON API and the offline report.

Modules, one job each:

``app``        the Dash app: header, router, page callbacks, API — :func:`dashboards.app.create_app`
``page_*``     one page each: Sweeps, Basins (Figure 2), Schedules (Figure 1), Learning curves
               (Figure 3), Budgets (SuppFigure 3), Anytime (Figure 4)
``pagekit``    the callback every figure page shares (controls → figures, tables, URL)
``figures``    the paper's figures as Plotly figure dicts (pure functions)
``panels``     heatmap panels of one (sweep, schedule, budget) from one read
``curves``     seed-mean learning curves of chosen settings
``summaries``  the numbers beside the figures as text rows
``data``       the read-only storage and a short-lived cache of answers
``api``        the JSON API: /api/sweeps, /api/basin, /api/best
``report``     ``basin report``: one self-contained HTML file
``cli``        ``basin dashboard`` and ``basin report``
``wsgi``       ``gunicorn dashboards.wsgi:application``

Everything is read through the ``storage`` package, opened with ``read_only=True``; nothing here
imports study/, trainers/ or Ray, and nothing writes to the database.
"""
