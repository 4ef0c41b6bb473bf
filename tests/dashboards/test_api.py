"""The JSON API of a running ``basin dashboard`` (a subprocess on a free port), on real SQLite and
PostgreSQL databases: answers equal storage's own, intervals included, bad query strings are 400s
naming the parameter, unknown names 404s with a JSON error, HTML in a name stays data, and the
database is never written."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.parse import urlencode

import pandas as pd
import pytest

import storage
from tests.dashboards.conftest import EVIL, MEANS_RERUN, MEANS_VALUES
from tests.dashboards.planted import LRS, WDS


def same(sent, value) -> bool:
    """A JSON number equals storage's value (NaN is sent as null)."""
    return sent is None if pd.isna(value) else sent == pytest.approx(value)


def basin(server, study: str, budget: int | None = None):
    params = {"study": study} | ({"budget": budget} if budget is not None else {})
    return server.get("/api/basin?" + urlencode(params))


def test_sweeps_lists_every_sweep_with_its_studies_and_progress(live):
    server, names, url = live
    status, body, headers = server.get("/api/sweeps")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert body["read_only"] is True
    got = {s["sweep"]: s for s in body["sweeps"]}
    want = {sp.sweep: sp for sp in storage.list_sweeps(url)}
    for name in (names.paper, names.other, names.evil, names.means):
        g, w = got[name], want[name]
        assert (g["grid_size"], g["n_done"], g["n_complete"], g["n_failed"], g["n_diverged"]) == (
            w.grid_size, w.n_done, w.n_complete, w.n_failed, w.n_diverged)
        assert {s["study"]: s["budgets"] for s in g["studies"]} == {s.study: list(s.budgets) for s in w.studies}
    paper = got[names.paper]
    assert paper["n_diverged"] > 0 and 0 < paper["fraction"] <= 1
    assert {s["optimizer"] for s in paper["studies"]} >= {"sgd", "sgdw", "adam", "adamw"}


def test_basin_answers_one_heatmap_as_storage_computes_it(live):
    server, names, url = live
    study = f"{names.paper}/adamw/cosine"
    status, body, _ = basin(server, study, 4)
    assert status == 200
    grid = storage.basin_grid(url, study, 4)
    lrs, wds = sorted(grid["lr"].unique()), sorted(grid["wd_norm"].unique())
    assert body["lr"] == pytest.approx(lrs) and body["wd_norm"] == pytest.approx(wds)
    assert (body["study"], body["optimizer"], body["schedule"], body["budget"]) == (study, "adamw", "cosine", 4)
    assert body["chance"] == pytest.approx(0.9)
    z = body["grid"]["test_error"]
    assert len(z) == len(wds) and all(len(row) == len(lrs) for row in z)  # rows λ_norm, columns α
    for r in grid.itertuples():
        cell = z[wds.index(r.wd_norm)][lrs.index(r.lr)]
        assert cell == pytest.approx(r.test_error)
    assert len(body["cells"]) == len(grid)
    ranks = [t["rank"] for t in body["top10"]]
    assert ranks == list(range(1, min(10, int(grid["test_error"].notna().sum())) + 1))
    # the planted optimum of the decoupled basin, and the diverged corner
    assert body["best"]["lr"] == pytest.approx(2.0**-7) and body["best"]["wd_norm"] == pytest.approx(0.05)
    assert body["grid"]["diverged_all"][wds.index(WDS[-1])][lrs.index(LRS[-1])] is True
    corner = next(c for c in body["cells"] if c["lr"] == LRS[-1] and c["wd_norm"] == WDS[-1])
    assert corner["diverged_all"] and corner["test_error"] == pytest.approx(0.9)


def test_basin_carries_every_cells_interval_p_best_and_the_plausible_optima(live):
    server, names, url = live
    study = f"{names.paper}/adamw/cosine"
    _, body, _ = basin(server, study, 4)
    grid = storage.basin_grid(url, study, 4)  # the server's n_boot is storage's default
    lrs, wds = sorted(grid["lr"].unique()), sorted(grid["wd_norm"].unique())
    for r in grid.itertuples():
        i, j = wds.index(r.wd_norm), lrs.index(r.lr)
        for col in ("error_lo", "error_hi", "p_best"):
            assert body["grid"][col][i][j] == pytest.approx(getattr(r, col), nan_ok=True), col
        assert body["grid"]["plausible"][i][j] is bool(r.plausible)
        if r.n_seeds and not r.diverged_all:
            assert body["grid"]["error_lo"][i][j] < r.test_error < body["grid"]["error_hi"][i][j]
    assert {(c["lr"], c["wd_norm"]) for c in body["plausible"]} == {
        (r.lr, r.wd_norm) for r in grid.itertuples() if r.plausible}
    assert {"error_lo", "error_hi", "p_best"} <= set(body["best"])
    assert body["best_error"] == pytest.approx(grid.attrs["best_error"])
    assert body["best_error_ci"] == pytest.approx(list(grid.attrs["best_error_ci"]))
    assert body["selection"] == grid.attrs["selection"] and body["sources"] == list(grid.attrs["sources"])
    assert body["level"] == 0.95


def test_a_cell_is_the_mean_of_its_seeds_never_the_last_trial_written(live):
    server, names, _ = live
    status, body, _ = basin(server, f"{names.means}/adamw/cosine", 4)
    assert status == 200
    cell = next(c for c in body["cells"] if c["lr"] == LRS[2] and c["wd_norm"] == WDS[2])
    values = [MEANS_RERUN, MEANS_VALUES[1], MEANS_VALUES[2]]  # seed 0's re-run replaces its first trial
    assert cell["n_seeds"] == 3
    assert cell["test_error"] == pytest.approx(sum(values) / 3)
    assert cell["test_error"] != pytest.approx(MEANS_RERUN)  # not the last trial written
    assert cell["n_failed"] == 0  # a FAIL after a COMPLETE does not replace it


BAD_QUERIES = [
    ("/api/basin", "study"),
    ("/api/basin?study=", "study"),
    ("/api/basin?study={paper}/adamw/cosine&budget=abc", "budget"),
    ("/api/basin?study={paper}/adamw/cosine&budget=0", "budget"),
    ("/api/basin?study={paper}/adamw/cosine&budget=-4", "budget"),
    ("/api/basin?study={paper}/adamw/cosine&budget=4.5", "budget"),
    ("/api/basin?study={paper}/adamw/cosine&budget=4&colour=red", "colour"),
    ("/api/basin?study={paper}/adamw/cosine&study={paper}/adam/cosine", "study"),
    ("/api/best?view=everything", "view"),
    ("/api/best?sweep=", "sweep"),
    ("/api/best?sweep={paper}&optimizer=,", "optimizer"),
    ("/api/sweeps?page=2", "page"),
]


@pytest.mark.parametrize("query, parameter", BAD_QUERIES)
def test_bad_query_strings_are_400_with_a_json_error_naming_the_parameter(live, query, parameter):
    server, names, _ = live
    status, body, headers = server.get(query.format(paper=names.paper))
    assert status == 400, body
    assert headers["Content-Type"].startswith("application/json")
    assert body["parameter"] == parameter and parameter in body["error"]


def test_unknown_studies_sweeps_and_budgets_are_404_with_a_json_error(live):
    server, names, _ = live
    cases = [
        ("/api/basin?" + urlencode({"study": "no/such/study"}), "study"),
        ("/api/basin?" + urlencode({"study": f"{names.paper}/adamw/cosine", "budget": 999}), "budget"),
        ("/api/best?" + urlencode({"sweep": "no-such-sweep"}), "sweep"),
        ("/api/best?" + urlencode({"sweep": names.paper, "optimizer": "rmsprop"}), "optimizer"),
        ("/api/no-such-endpoint", None),
    ]
    for path, parameter in cases:
        status, body, headers = server.get(path)
        assert status == 404, (path, body)
        assert headers["Content-Type"].startswith("application/json"), path
        assert isinstance(body["error"], str) and body["error"]
        assert body.get("parameter") == parameter
        assert "Traceback" not in json.dumps(body)


def test_a_study_with_several_budgets_needs_one_chosen(sqlite_server, sqlite_db):
    _, names = sqlite_db
    status, body, _ = basin(sqlite_server, f"{names.paper}/adamw/cosine")  # T = 4 and 8
    assert status == 400 and body["parameter"] == "budget" and "4, 8" in body["error"]
    status, body, _ = basin(sqlite_server, f"{names.paper}/sgd/cosine")  # T = 4 only
    assert status == 200 and body["budget"] == 4


def test_best_is_the_basin_best_answer(live):
    server, names, url = live
    status, body, _ = server.get("/api/best?" + urlencode({"sweep": names.paper}))
    assert status == 200 and body["view"] == "best"
    want = storage.best(url, names.paper)
    got = {(r["optimizer"], r["schedule"], r["budget"]): r for r in body["best"]}
    assert len(got) == len(want)
    for r in want.itertuples():
        g = got[(r.optimizer, r.schedule, r.budget)]
        assert (g["lr"], g["wd_norm"], g["n_seeds"]) == (pytest.approx(r.lr), pytest.approx(r.wd_norm), r.n_seeds)
        assert g["test_error"] == pytest.approx(r.test_error)
        for col in ("error", "error_lo", "error_hi", "test_error_lo", "test_error_hi", "p_best"):
            assert g[col] == pytest.approx(getattr(r, col)), col  # the intervals, as storage.best gives them
        assert g["error_lo"] < g["error_hi"] and (g["selection"], g["sources"]) == (r.selection, r.sources)
    pairs = {(h["decoupled"], h["coupled"], h["budget"]): h for h in body["headline"]}
    for pair in (("adamw", "adam", 4), ("sgdw", "sgd", 4)):  # the planted decoupled basins are lower
        h = pairs[pair]
        assert h["improvement_lo"] <= h["improvement"] <= h["improvement_hi"] and h["improvement"] > 0
        assert h["paired"] is True


def test_best_views_budget_coupling_headline(live):
    server, names, url = live
    q = {"sweep": names.paper, "schedule": "cosine"}
    _, coupling, _ = server.get("/api/best?" + urlencode(q | {"view": "coupling"}))
    verdicts = {(c["optimizer"], c["budget"]): c["verdict"] for c in coupling["coupling"]}
    assert verdicts[("sgd", 4)] == verdicts[("adam", 4)] == "coupled"
    assert verdicts[("sgdw", 4)] == verdicts[("adamw", 4)] == "decoupled"
    for c in coupling["coupling"]:
        if c["slope"] is not None:
            assert c["slope_ci"][0] <= c["slope"] <= c["slope_ci"][1] and c["sources"]
            assert c["rows"] and all(r["lambda_star_lo"] <= r["lambda_star_hi"]
                                     for r in c["rows"] if r["lambda_star"] is not None)
        if c["edge_slope"] is not None:
            assert c["edge_slope_ci"][0] <= c["edge_slope"] <= c["edge_slope_ci"][1] and c["edge_verdict"]
        if c["argmin_slope"] is not None:
            assert c["argmin_slope_ci"][0] <= c["argmin_slope"] <= c["argmin_slope_ci"][1] and c["argmin_verdict"]
    _, budget, _ = server.get("/api/best?" + urlencode(q | {"view": "budget", "optimizer": "adamw"}))
    want = storage.best_by_budget(url, names.paper, ["adamw"], ["cosine"])
    assert [r["budget"] for r in budget["by_budget"]] == list(want["budget"])
    assert all(r["optimizer"] == "adamw" for r in budget["by_budget"])
    for r, w in zip(budget["by_budget"], want.itertuples()):
        for col in ("lambda_norm_star", "lambda_norm_lo", "lambda_norm_hi", "raw_star", "raw_lo", "raw_hi"):
            assert r[col] == pytest.approx(getattr(w, col)), col
        assert r["lambda_norm_lo"] < r["lambda_norm_star"] < r["lambda_norm_hi"]
        for col in ("k", "k_lo", "k_hi", "raw_exponent", "raw_exponent_lo", "raw_exponent_hi"):
            assert same(r[col], getattr(w, col)), col
        assert r["verdict"] == w.verdict
    _, head, _ = server.get("/api/best?" + urlencode(q | {"view": "headline"}))
    assert head["headline"] and "best" not in head
    assert all({"improvement_lo", "improvement_hi", "paired", "selection", "sources"} <= set(h) for h in head["headline"])
    _, only, _ = server.get("/api/best?" + urlencode(q | {"view": "headline", "optimizer": "adamw,adam"}))
    assert {(h["decoupled"], h["coupled"]) for h in only["headline"]} == {("adamw", "adam")}


def test_names_with_html_and_javascript_are_plain_data(live):
    server, names, _ = live
    status, body, headers = server.get("/api/sweeps")
    assert headers.get("X-Content-Type-Options") == "nosniff"
    assert names.evil in {s["sweep"] for s in body["sweeps"]} and EVIL in names.evil
    status, body, _ = basin(server, f"{names.evil}/adamw/cosine", 4)
    assert status == 200 and body["sweep"] == names.evil


def test_the_pages_are_served_and_the_server_listens_on_loopback(live):
    server, _, _ = live
    assert server.url.startswith("http://127.0.0.1:")
    for path in ("/", "/basins", "/schedules", "/curves", "/budgets", "/anytime", "/no-such-page"):
        status, text, headers = server.get(path)
        assert status == 200 and headers["Content-Type"].startswith("text/html") and "<title>Basin</title>" in text
    status, layout, _ = server.get("/_dash-layout")
    assert status == 200 and "url" in json.dumps(layout)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    for p in (path, path.with_name(path.name + "-wal")):
        if p.exists():
            h.update(p.read_bytes())
    return h.hexdigest()


def test_serving_never_writes_the_database(sqlite_db, sqlite_server):
    url, names = sqlite_db
    path = Path(url.removeprefix("sqlite:///"))
    before = _digest(path)
    for query in ("/api/sweeps", f"/api/basin?{urlencode({'study': f'{names.paper}/sgd/cosine'})}",
                  f"/api/best?{urlencode({'sweep': names.paper, 'view': 'coupling'})}", "/basins", "/_dash-layout"):
        assert sqlite_server.get(query)[0] == 200
    assert _digest(path) == before
