"""Basin's dashboard: a read-only Dash app over the results store, its JSON API and the offline report.

Modules, one job each:

``app``           the Dash app: header, router, page callbacks, API — :func:`dashboards.app.create_app`
``page_*``        one page each: Sweeps, Basins (Figure 2), Schedules (Figure 1), Learning curves
                  (Figure 3), Budgets (SuppFigure 3), Anytime (Figure 4)
``pagekit``       the callback every figure page shares (controls → figures, tables, URL)
``components``    the pages' building blocks: controls, a downloadable graph, tables, messages
``selection``     a page's selection as a URL query string, and the rules that make it valid
``fig_heatmaps``  Figures 1 and 2 and SuppFigure 3's grids: heatmaps over (α, λ_norm), as Plotly dicts
``fig_budgets``   SuppFigure 3's lines: λ_norm* and raw λ* against the budget T
``fig_curves``    Figure 3: learning curves, and final test error against final train loss
``fig_anytime``   Figure 4: best-so-far test error, warm restarts against a plain schedule
``figkit``        what every figure shares: subplot grid, common layout, empty figure, graph config
``colorscale``    how the heatmaps map error to colour: modes, the shared range, the colour bar
``style``         the look: page template and stylesheet, the figures' font, template and colours
``text``          text in figures and pages: 2^k labels, percentages, optimizer names, escaping
``panels``        heatmap panels of one (sweep, schedule, budget) from one read, with storage's evidence
``curves``        seed-mean learning curves of chosen settings, and Figure 4's speed-ups from them
``summaries``     the numbers beside the figures as text rows, each with its interval
``data``          the read-only storage and a short-lived cache of answers
``cache``         the thread-safe cache of recent answers behind ``data`` (stale-while-revalidate)
``api``           the JSON API: /api/sweeps, /api/basin, /api/best
``report``        ``basin report``: one self-contained HTML file
``cli``           ``basin dashboard`` and ``basin report``
``wsgi``          ``gunicorn dashboards.wsgi:application``

Figures are pure functions from panels and curves to Plotly figure dicts (no Dash, no database).
Everything is read through the ``storage`` package, opened with ``read_only=True``; nothing here
imports study/, trainers/ or Ray, and nothing writes to the database.
"""
