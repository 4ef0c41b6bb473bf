"""storage/tables.py declares only columns Optuna's own models have, and deletes every child table."""

from __future__ import annotations

from storage import tables


def test_core_tables_match_optunas_models():
    from optuna.storages._rdb import models

    theirs = models.BaseModel.metadata.tables
    for name, table in tables.metadata.tables.items():
        assert name in theirs, name
        assert set(table.columns.keys()) <= set(theirs[name].columns.keys()), name
    # Every trial child table Optuna has is deleted by delete_sweep.
    children = {t.name for t in theirs.values() if "trial_id" in t.columns and t.name != "trials"}
    assert children == {t.name for t in tables.TRIAL_CHILDREN}
    study_children = {t.name for t in theirs.values() if "study_id" in t.columns and t.name not in ("studies", "trials")}
    assert study_children == {t.name for t in tables.STUDY_CHILDREN}
