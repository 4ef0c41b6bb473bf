"""Bad input as a new user types it: one line on stderr naming the problem and the fix, exit 2,
no traceback, nothing written. In-process (``study.cli.main``): each case stops before Ray starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from study.cli import main

ROOT = Path(__file__).resolve().parents[2]
SMOKE = str(ROOT / "examples" / "smoke.toml")


def _one_line_exit_2(capsys, argv, *expect):
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for text in expect:
        assert text in err, err
    return err


@pytest.mark.parametrize("storage, expect", [
    ("notaurl::", "cannot parse storage URL 'notaurl::'"),
    ("not a url", "cannot parse storage URL"),
    ("sqlite:///{tmp}/no/such/dir/x.db", "does not exist; create it"),
    ("sqlite:///{tmp}/folder", "is a directory, not a database file"),
    ("sqlite:///{tmp}/junk.db", "file is not a database"),
    ("postgresql+psycopg://postgres@127.0.0.1:1/test", "cannot open storage postgresql+psycopg://postgres@127.0.0.1:1/test"),
])
def test_sweep_with_a_storage_it_cannot_open(capsys, tmp_path, storage, expect):
    (tmp_path / "folder").mkdir()
    (tmp_path / "junk.db").write_text("not a database\n")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    err = _one_line_exit_2(capsys, ["sweep", SMOKE, "--storage", storage.format(tmp=tmp_path), "--quiet"], expect)
    assert "options=" not in err and "mode=ro" not in err  # the URL the user typed, not Basin's rewrite
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written


def test_train_on_a_device_that_is_not_here(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: --device cuda is valid here")
    _one_line_exit_2(capsys, ["train", "--device", "cuda", "--epochs", "1"], "device: 'cuda'", "--device cpu")


@pytest.mark.parametrize("storage, expect", [
    ("sqlite:///{tmp}/folder", "is a directory, not a database file"),
    ("sqlite:///{tmp}/missing/dir/x.db", "does not exist; create it"),
    ("sqlite:///{tmp}/junk.db", "file is not a database"),
    ("postgresql+psycopg://postgres@127.0.0.1:1/test", "cannot open storage postgresql+psycopg://postgres@127.0.0.1:1/test"),
])
def test_best_on_a_storage_it_cannot_read(capsys, tmp_path, storage, expect):
    (tmp_path / "folder").mkdir()
    (tmp_path / "junk.db").write_text("not a database\n")
    err = _one_line_exit_2(capsys, ["best", "--storage", storage.format(tmp=tmp_path)], expect)
    assert "options=" not in err and "mode=ro" not in err


def test_sweep_asking_for_more_test_examples_than_the_data_set_has(capsys, tmp_path):
    spec = tmp_path / "big.toml"
    spec.write_text(Path(SMOKE).read_text().replace('batch_size = 128', 'batch_size = 128\nn_test = 5000', 1))
    db = tmp_path / "x.db"
    _one_line_exit_2(capsys, ["sweep", str(spec), "--storage", f"sqlite:///{db}", "--quiet"],
                     "n_test: digits has 809 test examples", "set n_test <= 809")
    assert not db.exists()  # nothing written
