"""The figures and page views, built in-process from the real SQLite database of the session.

Every figure must pass Plotly's own schema check (``go.Figure(fig)``); the heatmaps must look like
the paper's (one shared colour axis, log₂ axes labelled 2^k, top-10 circled, best starred,
diverged crossed, storage.coupling's slope drawn) without the diverged cells washing the colour
scale out; and a cell must show the mean over its seeds.
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
from dashboards.fig_heatmaps import BEST, COUPLING, DIVERGED, TOP10
from dashboards.selection import encode, parse
from dashboards.text import axis_labels, esc, value_label
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
        assert (div["x"], div["y"]) == ([-6.0], [pytest.approx(math.log2(0.1))])
        line = on(COUPLING)[0]
        c = panels[opt].coupling
        drawn = (line["y"][1] - line["y"][0]) / (line["x"][1] - line["x"][0])
        assert drawn == pytest.approx(c.slope) == pytest.approx(storage.analysis.slope(*storage.basin_shape.argmin_points(grid)))
        assert c.verdict == ("coupled" if opt in ("sgd", "adam") else "decoupled")
        assert c == answers[opt]  # the same fit as storage.coupling's answer, interval included


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
        mine = source.panels(names.paper, "cosine", 4, [opt])[opt].grid
        theirs = storage.basin_grid(source.rdb(), study, 4)
        cols = ["lr", "wd_norm", "test_error", "test_error_std", "n_seeds", "n_failed", "n_diverged", "rank", "top10",
                "best", "diverged_all"]
        assert mine[cols].astype(str).equals(theirs[cols].astype(str)), opt


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
    lines = [t for t in traces(budgets.figures["lines"]) if t.get("legendgroup") == "adamw" and t["mode"] != "lines"]
    norm, raw = lines  # λ_norm* and raw λ* against T = 4, 8
    assert norm["x"] == raw["x"] == [4.0, 8.0]
    assert norm["y"] == pytest.approx([0.05, 0.05])  # λ_norm* stays put
    assert raw["y"][1] / raw["y"][0] == pytest.approx(math.sqrt(4 / 8))  # raw λ* ∝ 1/√T
    anytime = page_anytime.build(source, page_anytime.resolve(index, {"sweep": [names.paper]}))
    names_drawn = {t["name"] for t in traces(anytime.figures["anytime"], "scatter")}
    assert {"AdamWR (warm restarts)", "AdamW (cosine annealing)"} <= names_drawn
    assert anytime.tables[0][2], "the first-restart table"


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
