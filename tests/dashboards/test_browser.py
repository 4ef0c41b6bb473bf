"""A real headless Chromium on the dashboard: the Basins page of a small real sweep (run by the real
``basin sweep``), served by the real ``basin dashboard``.

Chromium is Debian's (``apt-get install -y chromium``, which .ci/run does), driven by Python
Playwright (a dev extra of pyproject.toml, installed by ``make venv``) — Playwright's own browser
downloads are never used. Without either the test is skipped with the reason, except under
``CI=true``, where it fails. The screenshot goes to pytest's tmp dir, and also to
``$BASIN_SCREENSHOT`` (e.g. docs/img/basins.png, relative to the repository) when that is set.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.dashboards.conftest import EVIL, ROOT, require

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("BASIN_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
GRAPH = ".page-basins .js-plotly-plot"


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require("Python Playwright is not installed: `make venv` (pip install -e '.[dev]') installs it")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        require(f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (what .ci/run does), "
                "or set BASIN_CHROMIUM to a Chromium binary")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Watch:
    """Console errors, uncaught page errors, failed requests and JavaScript dialogs of one page."""

    def __init__(self, page):
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url} {r.failure}"))
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))


def wait_for_heatmaps(page, n: int) -> None:
    """Until Plotly has drawn ``n`` heatmaps (their images exist in the SVG) and Dash is idle."""
    page.wait_for_function(
        """([sel, n]) => {
            const gd = document.querySelector(sel);
            return !!gd && Array.isArray(gd.data) && gd.data.filter(t => t.type === 'heatmap').length === n
                && gd.querySelectorAll('.hm image').length === n
                && !document.querySelector('[data-dash-is-loading="true"]');
        }""",
        arg=[GRAPH, n], timeout=90_000)


def test_the_basins_page_of_a_real_sweep(browser, sqlite_server, real_sweep, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    watch = Watch(page)
    page.goto(f"{sqlite_server.url}/basins?{urlencode({'sweep': real_sweep})}")
    wait_for_heatmaps(page, 4)  # SGD, SGDW, Adam, AdamW

    data = page.evaluate("""(sel) => {
        const gd = document.querySelector(sel);
        const top = gd.data.filter(t => t.meta === 'top-10');
        const hovers = gd.data.filter(t => t.type === 'heatmap').flatMap(t => t.text.flat());
        return {heatmaps: gd.data.filter(t => t.type === 'heatmap').length,
                plausible_traces: gd.data.filter(t => t.meta === 'plausible').length,
                hovers_with_interval: hovers.filter(h => (/ \\[[0-9.]+%, [0-9.]+%\\] 95%/.test(h)
                                                          || h.includes('not a measurement, no interval'))
                                                         && h.includes('P(best)')).length,
                cells: hovers.length,
                coloraxes: [...new Set(gd.data.filter(t => t.type === 'heatmap').map(t => t.coloraxis))],
                top10_traces: top.length, top10_points: top.reduce((n, t) => n + t.x.length, 0),
                best_points: gd.data.filter(t => t.meta === 'best').reduce((n, t) => n + t.x.length, 0),
                drawn_points: gd.querySelectorAll('.scatterlayer .trace path.point').length,
                title: gd.layout.title.text, download: gd._context.toImageButtonOptions};
    }""", GRAPH)
    assert data["heatmaps"] == 4 and data["coloraxes"] == ["coloraxis"]  # one shared colour scale
    assert data["top10_traces"] == 4 and data["top10_points"] == 16  # every cell of a 2×2 grid is top-10
    assert data["best_points"] == 4 and data["drawn_points"] >= 20  # circles and stars really drawn
    assert data["plausible_traces"] == 4  # every panel outlines its plausible optima (the best at least)
    assert data["hovers_with_interval"] == data["cells"] == 16  # every cell's hover: its 95% interval (or why none) and P(best)
    assert real_sweep in data["title"]
    assert data["download"]["format"] == "png" and data["download"]["filename"].startswith("basins-smoke")
    shot = tmp_path / "basins.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 20_000
    wanted = os.environ.get("BASIN_SCREENSHOT")
    if wanted:  # the picture of the README
        target = Path(wanted) if Path(wanted).is_absolute() else ROOT / wanted
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)

    # a change of selection goes into the URL, and the URL restores it
    page.get_by_text("log colour scale").click()
    page.wait_for_function("() => location.search.includes('log=1')", timeout=30_000)
    wait_for_heatmaps(page, 4)
    assert "sweep=smoke" in page.url and "schedule=cosine" in page.url and "budget=2" in page.url
    page.get_by_text("SVG", exact=True).click()
    page.wait_for_function("""(sel) => document.querySelector(sel)._context.toImageButtonOptions.format === 'svg'""",
                           arg=GRAPH, timeout=30_000)
    page.goto(page.url)
    wait_for_heatmaps(page, 4)
    assert page.locator(".page-basins input[type=checkbox]").first.is_checked()
    assert "log scale" in page.evaluate("(sel) => document.querySelector(sel).layout.coloraxis.colorbar.title.text",
                                        GRAPH)

    assert watch.errors == [] and watch.dialogs == []
    page.close()


def test_a_sweep_named_with_html_is_shown_as_text(browser, sqlite_server, sqlite_db):
    _, names = sqlite_db
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    watch = Watch(page)
    for path in ("/", f"/basins?{urlencode({'sweep': names.evil})}"):
        page.goto(sqlite_server.url + path)
        page.get_by_text(EVIL).first.wait_for(timeout=60_000)  # the literal text is on the page
    wait_for_heatmaps(page, 1)
    assert page.evaluate("() => document.querySelectorAll('img[src=x]').length") == 0  # never an element
    assert watch.dialogs == [] and watch.errors == []
    page.close()


def test_a_shared_learning_curves_url_shows_what_it_names(browser, sqlite_server, sqlite_db, real_sweep):
    import storage

    grid = storage.basin_grid(sqlite_db[0], f"{real_sweep}/adamw/cosine", 2)
    second = grid[grid["rank"] == 2].iloc[0]  # not the default (the best)
    key = f"adamw|{float(second['lr'])!r}|{float(second['wd_norm'])!r}"
    url = f"{sqlite_server.url}/curves?{urlencode([('sweep', real_sweep), ('set', key)])}"
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    watch = Watch(page)
    page.goto(url)
    page.wait_for_function("""() => { const gd = document.querySelector('.page-curves .js-plotly-plot');
                                      return gd && Array.isArray(gd.data) && gd.data.length > 0; }""", timeout=90_000)
    names = page.evaluate("""() => document.querySelector('.page-curves .js-plotly-plot').data
                                   .filter(t => t.mode === 'lines' && t.showlegend !== false).map(t => t.name)""")
    assert len(names) == 1 and names[0].startswith("AdamW #2")
    assert page.url == url  # nobody touched anything: the shared address stays as it was
    assert watch.errors == []
    page.close()
