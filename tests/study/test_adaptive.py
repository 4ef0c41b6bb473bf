"""`basin sweep` in adaptive rounds, end to end on real Ray and SQLite: the first seed on every cell,
every seed on the cells in doubt, nothing else; a re-run resumes and adds nothing; the answers read the
mixed panel. Nothing mocked."""

from __future__ import annotations

import json
import subprocess
from collections import Counter

import pytest

import storage
from storage.doubt import in_doubt
from study.spec import SpecError, parse_spec
from tests.study.test_sweep import BASIN, spec_text, sweep_cli, trials_by_point

SPEC = """
name = "adapt"
dataset = "digits"
model = "cnn"
batch_size = 128
budgets = [2]
seeds = [0, 1, 2]
max_concurrent_trials = 2
pack = 4

[adaptive]
radius = 0
max_radius = 1

[resources]
cpus = 1

[[schedules]]
name = "cosine"

[optimizers.sgdw]
lr = [0.02, 0.05, 0.1]
wd_norm = [0.0125, 0.05, 0.2, 0.8]
"""


@pytest.mark.slow
def test_an_adaptive_sweep_adds_seeds_only_where_the_doubt_is_and_resumes(tmp_path):
    name = "adapt"
    path = tmp_path / "s.toml"
    path.write_text(SPEC)
    url = f"sqlite:///{tmp_path}/a.db"
    dry = subprocess.run([BASIN, "sweep", str(path), "--dry-run"], capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0 and "adaptive: round 0 runs seed 0 on every cell (12 points)" in dry.stdout, dry.stdout

    out = sweep_cli(path, url, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "sweep adapt (adaptive): ran" in out.stdout and "adaptive round 0" in out.stderr, (out.stdout, out.stderr)
    by_point = trials_by_point(url, name)
    assert all(c == Counter(COMPLETE=1) for c in by_point.values())
    seeds_of = Counter((k[2], k[3]) for k in by_point)  # (α, λ_norm) → seeds recorded
    assert len(seeds_of) == 12 and all(k[5] in (0, 1, 2) for k in by_point)
    assert set(seeds_of.values()) <= {1, 3}  # a cell in doubt gets every seed, the others one
    assert 12 < len(by_point) < 36
    ran = int(out.stdout.split("ran ")[1].split(" points")[0])
    assert ran == len(by_point)
    # every cell in doubt of what is recorded has its seeds (the sweep stopped because none lacked one)
    found = in_doubt(url, name, radius=0)
    for r in found.cells.itertuples():
        assert r.n_seeds == 3, r

    # the studies say they ran adaptively: the Sweeps page calls fewer points than the grid finished
    from dashboards.page_sweeps import _status

    (progress,) = storage.list_sweeps(url)
    assert all(s.adaptive for s in progress.studies) and progress.n_done == len(by_point) < progress.grid_size
    assert _status(progress) == ("adaptive: seeds where the doubt is", "done")

    again = sweep_cli(path, url, timeout=600)
    assert again.returncode == 0 and "ran 0 points" in again.stdout, again.stdout
    assert trials_by_point(url, name) == by_point

    best = subprocess.run([BASIN, "best", "--storage", url, "--sweep", name, "--json"], capture_output=True,
                          text=True, timeout=120)
    assert best.returncode == 0, best.stderr
    row = json.loads(best.stdout)[0]
    assert "seeds" in row["sources"] and row["n_seeds"] == 3


def test_an_adaptive_spec_needs_two_seeds_and_a_window_that_can_widen():
    base = spec_text("a", extra="")
    with pytest.raises(SpecError, match=r"adaptive: .*at least two seeds"):
        parse_spec(base + "\n[adaptive]\n")
    with pytest.raises(SpecError, match=r"adaptive.*max_radius \(0\) must be >= radius \(1\)"):
        parse_spec(base.replace("seeds = [0]", "seeds = [0, 1]") + "\n[adaptive]\nradius = 1\nmax_radius = 0\n")
    spec = parse_spec(base.replace("seeds = [0]", "seeds = [0, 1]") + "\n[adaptive]\n")
    assert spec.adaptive.radius == 0 and len(spec.first_points()) == len(spec.points()) // 2
