"""A user's code that cannot run is refused on the driver before anything runs: one line on stderr
naming the field and the problem, exit 2, no database created, no Ray started. In-process
(``study.cli.main``), each case with its own module in a temporary folder shipped as ``code``."""

from __future__ import annotations

import uuid

import pytest

from study.cli import main

GOOD_MODEL = """
from torch import nn
def build(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))
"""

#: case: (the module's code beside GOOD_MODEL, the spec fields it sets, what the one line says)
CASES = {
    "missing module": ("", {"model": "nosuchpkg_{u}.models:build"},
                       "model: cannot import module 'nosuchpkg_{u}.models' (from 'nosuchpkg_{u}.models:build')"),
    "missing function": ("", {"model": "{mod}:bild"},
                         "model: '{mod}' has no attribute 'bild' (from '{mod}:bild'); it defines build"),
    "model returns no module": ("def bad(input_shape, num_classes):\n    return [input_shape]\n", {"model": "{mod}:bad"},
                                "model: '{mod}:bad' returned a list, not a torch.nn.Module"),
    "data set returns a dict": ("def load(data_dir):\n    return {{'x': 1}}\n", {"dataset": "{mod}:load"},
                                "dataset: '{mod}:load' returned a dict; a data-set function returns a trainers.data.Dataset"),
    "model fails on the first batch": ("def narrow(input_shape, num_classes):\n"
                                       "    return nn.Sequential(nn.Flatten(), nn.Linear(10, num_classes))\n",
                                       {"model": "{mod}:narrow"},
                                       "model: the forward pass on one batch (128, 1, 8, 8) failed: RuntimeError: mat1 and mat2"),
    "metric of the wrong shape": ("def one(input_shape, num_classes):\n    return nn.Sequential(nn.Flatten(), nn.Linear(64, 1))\n"
                                  "def loss(model, batch):\n    return (model(batch[0]) ** 2).mean()\n",
                                  {"model": "{mod}:one", "metric": "{mod}:loss"},
                                  "metric: '{mod}:loss' returned a tensor of shape () (torch.float32) for a batch of "),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_user_code_is_one_line_exit_2_and_nothing_written(case, tmp_path, capsys):
    import ray

    extra, fields, expect = CASES[case]
    u = uuid.uuid4().hex[:8]
    mod = f"usercode_{u}"  # a fresh module name per case: nothing cached from another case
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / f"{mod}.py").write_text(GOOD_MODEL + extra.format(u=u))
    values = {"model": f"{mod}:build", "dataset": "digits", "metric": "error",
              **{k: v.format(mod=mod, u=u) for k, v in fields.items()}}
    expect = expect.format(mod=mod, u=u)
    field = expect.split(":")[0]
    spec = tmp_path / "s.toml"
    spec.write_text(f"""
name = "bad"
model = "{values['model']}"
dataset = "{values['dataset']}"
metric = "{values['metric']}"
code = "code"
budgets = [1]
[[schedules]]
name = "cosine"
[optimizers.adamw]
lr = [0.001]
wd_norm = [0.05]
""")
    db = tmp_path / "b.db"
    for argv in (["sweep", str(spec), "--storage", f"sqlite:///{db}", "--quiet"], ["sweep", str(spec), "--dry-run"]):
        code = main(argv)
        out, err = capsys.readouterr()
        assert code == 2, (out, err)
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert err.startswith(f"basin sweep: error: {spec}: {field}: ") and expect in err, err
    assert not db.exists() and not ray.is_initialized()
