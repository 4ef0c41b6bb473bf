"""The figures and page views, built in-process from the real SQLite database of the session.

Every figure must pass Plotly's own schema check (``go.Figure(fig)``); the heatmaps must look like
the paper's (one shared colour axis, log₂ axes labelled 2^k, top-10 circled, best starred,
diverged crossed, storage.coupling's slope drawn in the band of its λ_norm* intervals, the
plausible optima outlined) without the diverged cells washing the colour scale out; a cell must
show the mean over its seeds, and every number shown its interval and the noise it includes.
"""

from __future__ import annotations

import json
import math

import numpy as np
import plotly.graph_objects as go
import pytest

import storage
from dashboards import fig_heatmaps, figkit, page_anytime, page_basins, page_budgets, page_curves, page_schedules, pagekit
from dashboards.colorscale import ColorSpec
from dashboards.data import Source
from dashboards import fig_budgets
from dashboards.fig_heatmaps import BEST, COUPLING, COUPLING_BAND, DIVERGED, LAMBDA_STAR, PLAUSIBLE, TOP10
from dashboards.selection import encode, parse
from dashboards.text import axis_labels, esc, pct_interval, value_label
from tests.dashboards.conftest import EVIL, MEANS_RERUN, MEANS_VALUES
from tests.dashboards.planted import LRS, WDS

PAPER_FOUR = ["sgd", "sgdw", "adam", "adamw"]


@pytest.fixture(scope="module")
def source(sqlite_db) -> Source:
    return Source(sqlite_db[0], n_boot=200)


@pytest.fixture(scope="module")
def names(sqlite_db):
    return sqlite_db[1]


def traces(fig: dict, kind: str | None = None, meta: str | None = None) -> list[dict]:
    return [t for t in fig["data"] if (kind is None or t["type"] == kind) and (meta is None or t.get("meta") == meta)]


def valid(fig: dict) -> dict:
    go.Figure(fig)  # raises on anything outside Plotly's schema
    return fig


def test_the_source_opens_the_database_read_only(source):
    rdb = source.rdb()
    assert storage.is_read_only(rdb)
    with pytest.raises(storage.ReadOnlyStorageError):
        storage.ensure_study(rdb, sweep="x", optimizer="adamw", schedule="cosine", attrs={})


def test_figure2_heatmaps_share_one_colour_axis_on_log2_axes(source, names):
    panels = source.panels(names.paper, "cosine", 4, PAPER_FOUR)
    fig = valid(fig_heatmaps.heatmaps(page_basins.arrange(list(panels.values()), 1), title="t"))
    heat = traces(fig, "heatmap")
    assert len(heat) == 4 and {t["coloraxis"] for t in heat} == {"coloraxis"}
    assert {t["xaxis"] for t in heat} == {"x", "x2", "x3", "x4"}  # a 2×2 grid
    layout = fig["layout"]
    assert layout["xaxis"]["ticktext"] == ["2<sup>-9</sup>", "2<sup>-8</sup>", "2<sup>-7</sup>", "2<sup>-6</sup>"]
    assert layout["xaxis"]["tickvals"] == [-9.0, -8.0, -7.0, -6.0]  # log₂ α
    assert layout["yaxis"]["tickvals"] == pytest.approx([math.log2(w) for w in WDS])
    assert heat[0]["z"][WDS.index(0.05)][LRS.index(2.0**-7)] is not None


def test_top10_best_diverged_and_the_coupling_line_are_drawn(source, names):
    panels = source.panels(names.paper, "cosine", 4, PAPER_FOUR)
    fig = fig_heatmaps.heatmaps([list(panels.values())])
    answers = {c.optimizer: c for c in storage.coupling(source.rdb(), names.paper, PAPER_FOUR, "cosine", budget=4,
                                                        n_boot=source.n_boot)}
    for k, opt in enumerate(PAPER_FOUR):
        axis = "x" if k == 0 else f"x{k + 1}"
        grid = panels[opt].grid

        def on(meta):
            return [t for t in traces(fig, "scatter", meta) if t["xaxis"] == axis]

        top = on(TOP10)[0]
        assert len(top["x"]) == 10 == int(grid["top10"].sum())
        best = on(BEST)[0]
        assert (best["x"], best["y"]) == ([-7.0], [pytest.approx(math.log2(0.05))])
        div = on(DIVERGED)[0]
        assert (div["x"], div["y"]) == ([-6.0], [pytest.approx(math.log2(WDS[-1]))])
        c = panels[opt].coupling
        lines = {t["customdata"][0]: t for t in on(COUPLING)}
        assert set(lines) == {"argmin", "valley", "edge"}  # storage's fitted lines, each at every α row it covers
        for name, slope in (("argmin", c.argmin_slope), ("valley", c.slope), ("edge", c.edge_slope)):
            line = lines[name]
            drawn = (line["y"][-1] - line["y"][0]) / (line["x"][-1] - line["x"][0])
            assert drawn == pytest.approx(slope)
            rows = sorted((r for r in c.rows if r[f"{name}_line"] is not None), key=lambda r: r["lr"])
            assert line["x"] == pytest.approx([math.log2(r["lr"]) for r in rows])
            assert line["y"] == pytest.approx([math.log2(r[f"{name}_line"]) for r in rows])
        assert c.n_alpha >= 3
        assert c.verdict == ("coupled" if opt in ("sgd", "adam") else "decoupled")
        assert c == answers[opt]  # the same fit as storage.coupling's answer, interval included


def test_a_band_of_the_lambda_star_intervals_surrounds_the_coupling_line(source, names):
    panels = source.panels(names.paper, "cosine", 4, PAPER_FOUR)
    fig = valid(fig_heatmaps.heatmaps([list(panels.values())]))
    for k, opt in enumerate(PAPER_FOUR):
        axis = "x" if k == 0 else f"x{k + 1}"
        c = panels[opt].coupling
        bands = {t["customdata"][0]: t for t in traces(fig, "scatter", COUPLING_BAND) if t["xaxis"] == axis}
        lines = {t["customdata"][0]: t for t in traces(fig, "scatter", COUPLING) if t["xaxis"] == axis}
        assert set(bands) == set(lines) == {"argmin", "valley", "edge"}
        assert all(b["fill"] == "toself" for b in bands.values())
        for name, band in bands.items():
            rows = sorted((r for r in c.rows if r[f"{name}_line"] is not None), key=lambda r: r["lr"])
            n = len(rows)
            xs, ys = band["x"], band["y"]
            assert xs[:n] == pytest.approx([math.log2(r["lr"]) for r in rows])  # upper ends, left to right
            assert ys[:n] == pytest.approx([math.log2(r[f"{name}_line_hi"]) for r in rows])
            assert ys[n:2 * n] == pytest.approx([math.log2(r[f"{name}_line_lo"]) for r in rows[::-1]])  # lower, back
            for x, y, lo, hi in zip(lines[name]["x"], lines[name]["y"], ys[2 * n - 1:n - 1:-1], ys[:n]):
                assert lo <= y <= hi  # the fitted line lies inside its band
        points = [t for t in traces(fig, "scatter", LAMBDA_STAR) if t["xaxis"] == axis][0]
        assert len(points["x"]) == len(c.rows)
        assert all("95%" in t and "noise: test set + seeds" in t for t in points["text"])


def test_the_plausible_optima_are_outlined_exactly(source, names):
    panels = source.panels(names.paper, "cosine", 4, PAPER_FOUR)
    fig = fig_heatmaps.heatmaps([list(panels.values())])
    for k, opt in enumerate(PAPER_FOUR):
        axis = "x" if k == 0 else f"x{k + 1}"
        grid = panels[opt].grid
        assert grid["plausible"].sum() >= 1 and not grid["plausible"].all()
        outline = [t for t in traces(fig, "scatter", PLAUSIBLE) if t["xaxis"] == axis]
        assert len(outline) == 1 and outline[0]["marker"]["symbol"] == "square-open"
        drawn = {(round(x, 9), round(y, 9)) for x, y in zip(outline[0]["x"], outline[0]["y"])}
        want = {(round(math.log2(r.lr), 9), round(math.log2(r.wd_norm), 9)) for r in grid.itertuples() if r.plausible}
        assert drawn == want and len(outline[0]["x"]) == len(want)
        assert grid.loc[grid["best"], "plausible"].all()  # the best cell is always among them


def test_every_hover_carries_its_interval_p_best_and_noise(source, names):
    panels = source.panels(names.paper, "cosine", 4, PAPER_FOUR)
    fig = fig_heatmaps.heatmaps([list(panels.values())])
    for heat, opt in zip(traces(fig, "heatmap"), PAPER_FOUR):
        grid = panels[opt].grid
        lrs, wds = sorted(grid["lr"].unique()), sorted(grid["wd_norm"].unique())
        for r in grid.itertuples():
            hover = heat["text"][wds.index(r.wd_norm)][lrs.index(r.lr)]
            if r.n_seeds == 0:
                continue
            if r.diverged_all:  # chance level, fixed by storage: no test noise, said so instead of [0.9, 0.9]
                assert "not a measurement, no interval" in hover and f"P(best) {r.p_best:.2f}" in hover
                continue
            assert f"{pct_interval(r.error_lo, r.error_hi)} 95%" in hover
            assert r.error_lo <= r.test_error <= r.error_hi
            assert f"P(best) {r.p_best:.2f}" in hover
            assert "interval noise: test set + seeds" in hover
            assert ("plausible optimum" in hover) == bool(r.plausible)


def test_the_colour_scale_is_not_washed_out_by_diverged_cells(source, names):
    panels = list(source.panels(names.paper, "cosine", 4, PAPER_FOUR).values())
    errors = np.concatenate([p.grid["test_error"].to_numpy(float) for p in panels])
    ok = np.concatenate([p.grid.loc[~p.grid["diverged_all"], "test_error"].to_numpy(float) for p in panels])
    clipped = fig_heatmaps.heatmaps([panels])["layout"]["coloraxis"]
    assert clipped["cmax"] == pytest.approx(np.nanquantile(ok, 0.9)) and clipped["cmax"] < 0.5
    assert "90th percentile" in clipped["colorbar"]["title"]["text"]
    assert clipped["colorbar"]["ticktext"][-1].startswith("≥")
    chance = fig_heatmaps.heatmaps([panels], color=ColorSpec(mode="chance"))["layout"]["coloraxis"]
    assert chance["cmax"] == pytest.approx(0.9) and "chance" in chance["colorbar"]["title"]["text"]
    full = fig_heatmaps.heatmaps([panels], color=ColorSpec(mode="full"))["layout"]["coloraxis"]
    assert full["cmax"] == pytest.approx(np.nanmax(errors))
    log = valid(fig_heatmaps.heatmaps([panels], color=ColorSpec(log=True)))
    axis = log["layout"]["coloraxis"]
    assert axis["cmin"] == pytest.approx(math.log10(np.nanmin(errors)))
    z = traces(log, "heatmap")[0]["z"]
    assert np.nanmax(np.array(z, dtype=float)) < 0  # log10 of errors below 1


def test_a_cell_shows_the_mean_over_its_seeds(source, names):
    panel = source.panels(names.means, "cosine", 4, ["adamw"])["adamw"]
    fig = fig_heatmaps.heatmaps([[panel]])
    heat = traces(fig, "heatmap")[0]
    lrs = sorted(panel.grid["lr"].unique())
    wds = sorted(panel.grid["wd_norm"].unique())
    value = heat["z"][wds.index(WDS[2])][lrs.index(LRS[2])]
    assert value == pytest.approx((MEANS_RERUN + MEANS_VALUES[1] + MEANS_VALUES[2]) / 3)
    hover = heat["text"][wds.index(WDS[2])][lrs.index(LRS[2])]
    assert "mean of 3 seeds" in hover and "±" in hover and "raw λ" in hover and "α = 2<sup>-7</sup>" in hover


def test_the_page_grid_is_storage_basin_grid(source, names):
    for opt in PAPER_FOUR:
        study = f"{names.paper}/{opt}/cosine"
        panel = source.panels(names.paper, "cosine", 4, [opt])[opt]
        mine = panel.grid
        theirs = storage.basin_grid(source.rdb(), study, 4, n_boot=source.n_boot)
        cols = ["lr", "wd_norm", "test_error", "test_error_std", "n_seeds", "n_failed", "n_diverged", "rank", "top10",
                "best", "diverged_all", "error_lo", "error_hi", "p_best", "plausible"]
        assert mine[cols].astype(str).equals(theirs[cols].astype(str)), opt  # the same seed draws: the same evidence
        assert (panel.best.error, panel.best.ci, panel.best.method) == (
            theirs.attrs["best_error"], theirs.attrs["best_error_ci"], theirs.attrs["selection"])
        assert panel.sources == tuple(theirs.attrs["sources"]) == ("test set", "seeds")


def test_names_are_escaped_in_every_figure_text(source, names):
    panel = source.panels(names.evil, "cosine", 4, ["adamw"])["adamw"]
    fig = fig_heatmaps.heatmaps([[panel]], title=esc(names.evil), label=lambda p: fig_heatmaps.panel_title(p, sweep=True))
    text = json.dumps(fig, ensure_ascii=False)
    assert "<img" not in text and "&lt;img" in text


def test_axis_labels():
    assert axis_labels([2.0**-3, 2.0**-2]) == ["2<sup>-3</sup>", "2<sup>-2</sup>"]
    assert axis_labels([2.0**-3], rich=False) == ["2⁻³"]
    assert axis_labels([0.0125, 0.025, 0.05]) == ["0.0125", "0.025", "0.05"]
    assert axis_labels([0.1 * 2.0**-7, 0.1 * 2.0**-6, 0.1]) == ["0.1·2<sup>-7</sup>", "0.1·2<sup>-6</sup>", "0.1"]
    assert value_label(0.3) == "0.3" and value_label(0.5) == "2<sup>-1</sup>"


def test_selection_defaults_and_round_trip(source, names):
    index = source.index()
    sel = page_basins.resolve(index, parse(encode({"sweep": names.paper})))
    assert (sel["schedule"], sel["budget"], sel["opt"], sel["color"]) == ("cosine", 4, PAPER_FOUR, "quantile")
    again = page_basins.resolve(index, parse(encode(page_basins.params(sel))))
    assert again == sel
    odd = page_basins.resolve(index, parse("?sweep=nope&schedule=nope&budget=77&opt=nope&color=nope"))
    assert odd["sweep"] in index and odd["schedule"] in index[odd["sweep"]].schedules and odd["color"] == "quantile"
    assert page_basins.resolve(index, {"sweep": [names.paper], "budget": ["8"]})["budget"] == 8


PAGES = [page_basins, page_schedules, page_curves, page_budgets, page_anytime]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.NAME)
def test_every_page_view_builds_valid_figures(source, names, page):
    index = source.index()
    view = pagekit.build_safely(page, source, page.resolve(index, {"sweep": [names.paper]}))
    assert not view.message
    assert set(view.figures) == set(page.FIGURES)
    for fig in view.figures.values():
        valid(fig)
        assert fig["data"], page.NAME
    assert any(rows for _, _, rows in view.tables)


def test_schedules_curves_budgets_and_anytime_show_what_the_paper_does(source, names):
    index = source.index()
    sched = page_schedules.build(source, page_schedules.resolve(index, {"sweep": [names.paper]}))
    heat = traces(sched.figures["heatmaps"], "heatmap")
    assert len(heat) == 2 * 3 + 1  # Adam and AdamW × fixed, step-drop, cosine; AdamW × warm restarts
    curves = page_curves.build(source, page_curves.resolve(index, {"sweep": [names.paper]}))
    assert len(curves.values["set"]) == 4  # the best of each optimizer by default
    restarts = page_curves.build(source, page_curves.resolve(index, {"sweep": [names.paper],
                                                                     "schedule": ["warm-restarts"]}))
    assert traces(restarts.figures["curves"], "scatter", figkit.RESTART)  # restart points marked
    budgets = page_budgets.build(source, page_budgets.resolve(index, {"sweep": [names.paper], "opt": ["adamw"]}))
    norm, raw = traces(budgets.figures["lines"], "scatter", fig_budgets.STAR)  # λ_norm* and raw λ* against T = 4, 8
    assert norm["x"] == raw["x"] == [4.0, 8.0]
    assert norm["y"] == pytest.approx([0.05, 0.05])  # λ_norm* stays put
    assert raw["y"][1] / raw["y"][0] == pytest.approx(math.sqrt(4 / 8))  # raw λ* ∝ 1/√T
    anytime = page_anytime.build(source, page_anytime.resolve(index, {"sweep": [names.paper]}))
    names_drawn = {t["name"] for t in traces(anytime.figures["anytime"], "scatter")}
    assert {"AdamWR (warm restarts)", "AdamW (cosine annealing)"} <= names_drawn
    assert anytime.tables[0][2], "the first-restart table"


def test_the_budgets_page_has_error_bars_and_exponents_with_intervals(source, names):
    index = source.index()
    view = page_budgets.build(source, page_budgets.resolve(index, {"sweep": [names.paper], "opt": ["sgdw", "adamw"]}))
    fig = valid(view.figures["lines"])
    table = storage.best_by_budget(source.rdb(), names.paper, ["sgdw", "adamw"], ["cosine"], n_boot=source.n_boot)
    stars = traces(fig, "scatter", fig_budgets.STAR)
    assert len(stars) == 4  # λ_norm* and raw λ* of each optimizer
    columns = {"x": ("lambda_norm_star", "lambda_norm_lo", "lambda_norm_hi"), "x2": ("raw_star", "raw_lo", "raw_hi")}
    assert sorted((t["legendgroup"], t["xaxis"]) for t in stars) == [(o, x) for o in ("adamw", "sgdw") for x in columns]
    for trace in stars:
        key, lo, hi = columns[trace["xaxis"]]
        g = table[table["optimizer"] == trace["legendgroup"]].sort_values("budget")
        bars = trace["error_y"]
        assert bars["visible"] and not bars["symmetric"]
        assert trace["y"] == pytest.approx(list(g[key]))
        assert bars["array"] == pytest.approx(list(g[hi] - g[key]))
        assert bars["arrayminus"] == pytest.approx(list(g[key] - g[lo]))
        assert all(b > 0 for b in bars["array"] + bars["arrayminus"])  # never a zero-width interval
        assert all("95%" in t and "noise: test set" in t for t in trace["text"])
    assert traces(fig, "scatter", fig_budgets.FIT) and traces(fig, "scatter", fig_budgets.SQRT_RULE)
    first = table[table["optimizer"] == "adamw"].iloc[0]
    note = next(n for n in view.notes if n.startswith("AdamW: λ_norm* ∝ T^"))
    assert f"[{first['k_lo']:.2f}, {first['k_hi']:.2f}]".replace("-", "−") in note and first["verdict"] in note
    header, rows = view.tables[0][1], view.tables[0][2]
    assert "λ_norm* [95%]" in header and all("[" in r[header.index("λ_norm* [95%]")] for r in rows)


def test_the_summary_tables_show_reported_errors_intervals_selection_and_verdicts(source, names):
    index = source.index()
    view = page_basins.build(source, page_basins.resolve(index, {"sweep": [names.paper]}))
    _, header, rows = view.tables[0]
    panels = source.panels(names.paper, "cosine", 4, PAPER_FOUR)
    for row, opt in zip(rows, PAPER_FOUR):
        p = panels[opt]
        cell = dict(zip(header, row))
        assert cell["reported error [95%]"].endswith(pct_interval(*p.best.ci))
        assert cell["selection"].startswith("cross_fit")
        assert cell["P(best)"] == f"{p.best_row()['p_best']:.2f}"
        assert cell["basin"] == p.coupling.verdict and "[" in cell["slopes d log λ_norm/d log α [95%]"]
        assert cell["noise in the intervals"] == "test set + seeds"
    assert any("95% intervals" in n for n in view.notes)


def test_learning_curves_draw_test_error_on_log_axes(source, names):
    """Final differences between optimizers (≈ 0.1–0.5 points) vanish on a linear axis: log axes, as Figure 3."""
    view = page_curves.build(source, page_curves.resolve(source.index(), {"sweep": [names.paper]}))
    layout = valid(view.figures["curves"])["layout"]
    axes = {layout[k]["title"]["text"]: layout[k] for k in ("yaxis", "yaxis2", "yaxis3")}
    assert set(axes) == {"train loss", "test error", "final test error"}
    assert {title: axis.get("type") for title, axis in axes.items()} == dict.fromkeys(axes, "log")
    assert axes["test error"]["tickformat"] == axes["final test error"]["tickformat"] == ".1%"


def test_a_selection_the_storage_lacks_gives_notes_not_errors(source, names):
    index = source.index()
    sel = page_basins.resolve(index, {"sweep": [names.paper], "vs": [names.other], "opt": ["adamw", "adamw-torch"]})
    assert sel["vs"] == names.other and sel["opt"] == ["adamw"]  # the paper sweep has no adamw-torch
    view = page_basins.build(source, {**sel, "opt": ["adamw", "sgd"], "budget": 4})
    assert len(traces(view.figures["heatmaps"], "heatmap")) == 3  # paper-b has no sgd: a note in its place
    assert any("no study sgd/cosine" in a["text"] for a in view.figures["heatmaps"]["layout"]["annotations"])


def test_empty_and_unknown_storages_render_messages(tmp_path):
    empty = Source(f"sqlite:///{tmp_path / 'none.db'}")
    assert empty.sweeps() == [] and empty.index() == {}
    index, why = pagekit.index_or_error(empty)
    assert index == {} and "No sweep recorded" in why
    assert valid(figkit.empty_figure(EVIL))["layout"]["annotations"][0]["text"].startswith("&lt;img")
