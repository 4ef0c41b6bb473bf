"""SQLAlchemy Core handles on the Optuna RDB tables that Basin reads directly, and Basin's own
``basin_trials`` (one narrow row per finished trial; see ``storage.sql``).

Optuna's own read path (``Study.get_trials``) builds one FrozenTrial per trial with every
attribute decoded; at 10⁵ trials that takes tens of seconds. Basin's reads select only the
columns and user-attribute keys they need from these tables instead.

The definitions mirror ``optuna/storages/_rdb/models.py`` (schema version 12, Optuna 4.x–5.x),
declaring only the columns Basin touches. They are never used to create tables — Optuna does
that — and ``tests/storage/test_tables.py`` checks them against Optuna's models, so a schema
change in a future Optuna fails a test instead of a query.

Enum columns (``trials.state``, ``trial_values.value_type``) are declared as plain strings:
SQLite stores the enum name as text and PostgreSQL returns a native enum as its label, so
both read back as e.g. ``"COMPLETE"``. Compare them through :func:`state_is`, which casts,
because PostgreSQL refuses ``enum = varchar`` with a typed parameter.
"""

from __future__ import annotations

import sqlalchemy as sa

from storage.schema import PARAMS

metadata = sa.MetaData()

studies = sa.Table(
    "studies",
    metadata,
    sa.Column("study_id", sa.Integer, primary_key=True),
    sa.Column("study_name", sa.String(512)),
)

study_directions = sa.Table(
    "study_directions",
    metadata,
    sa.Column("study_direction_id", sa.Integer, primary_key=True),
    sa.Column("direction", sa.String(16)),
    sa.Column("study_id", sa.Integer),
    sa.Column("objective", sa.Integer),
)

study_user_attributes = sa.Table(
    "study_user_attributes",
    metadata,
    sa.Column("study_user_attribute_id", sa.Integer, primary_key=True),
    sa.Column("study_id", sa.Integer),
    sa.Column("key", sa.String(512)),
    sa.Column("value_json", sa.Text),
)

study_system_attributes = sa.Table(
    "study_system_attributes",
    metadata,
    sa.Column("study_system_attribute_id", sa.Integer, primary_key=True),
    sa.Column("study_id", sa.Integer),
)

trials = sa.Table(
    "trials",
    metadata,
    sa.Column("trial_id", sa.Integer, primary_key=True),
    sa.Column("number", sa.Integer),
    sa.Column("study_id", sa.Integer),
    sa.Column("state", sa.String(16)),
    sa.Column("datetime_start", sa.DateTime),
    sa.Column("datetime_complete", sa.DateTime),
)

trial_params = sa.Table(
    "trial_params",
    metadata,
    sa.Column("param_id", sa.Integer, primary_key=True),
    sa.Column("trial_id", sa.Integer),
    sa.Column("param_name", sa.String(512)),
    sa.Column("param_value", sa.Float(precision=53)),
    sa.Column("distribution_json", sa.Text),
)

trial_values = sa.Table(
    "trial_values",
    metadata,
    sa.Column("trial_value_id", sa.Integer, primary_key=True),
    sa.Column("trial_id", sa.Integer),
    sa.Column("objective", sa.Integer),
    sa.Column("value", sa.Float(precision=53)),
    sa.Column("value_type", sa.String(16)),
)

trial_user_attributes = sa.Table(
    "trial_user_attributes",
    metadata,
    sa.Column("trial_user_attribute_id", sa.Integer, primary_key=True),
    sa.Column("trial_id", sa.Integer),
    sa.Column("key", sa.String(512)),
    sa.Column("value_json", sa.Text),
)

trial_system_attributes = sa.Table(
    "trial_system_attributes",
    metadata,
    sa.Column("trial_system_attribute_id", sa.Integer, primary_key=True),
    sa.Column("trial_id", sa.Integer),
)

trial_intermediate_values = sa.Table(
    "trial_intermediate_values",
    metadata,
    sa.Column("trial_intermediate_value_id", sa.Integer, primary_key=True),
    sa.Column("trial_id", sa.Integer),
    sa.Column("step", sa.Integer),
    sa.Column("intermediate_value", sa.Float(precision=53)),
    sa.Column("intermediate_value_type", sa.String(16)),
)

trial_heartbeats = sa.Table(
    "trial_heartbeats",
    metadata,
    sa.Column("trial_heartbeat_id", sa.Integer, primary_key=True),
    sa.Column("trial_id", sa.Integer),
    sa.Column("heartbeat", sa.DateTime),
)

# Children before parents: the order a hand-written delete must follow.
TRIAL_CHILDREN = (
    trial_heartbeats,
    trial_intermediate_values,
    trial_values,
    trial_user_attributes,
    trial_system_attributes,
    trial_params,
)
STUDY_CHILDREN = (study_user_attributes, study_system_attributes, study_directions)


# --- Basin's own table --------------------------------------------------------------------------------

#: Basin's own tables, apart from Optuna's (``metadata`` above mirrors Optuna's models only).
basin_metadata = sa.MetaData()

#: Trial user attrs copied into ``basin_trials`` (value_json text, as Optuna stores them): what the
#: frames and every answer read (``storage.schema.FRAME_ATTRS`` but ``error``, and the evidence's).
ROW_ATTRS = ("diverged", "wd", "seconds", "node", "val_value", "value_se")

#: One narrow row per finished trial: the pivot of Optuna's rows that ``storage.sql.fetch_trial_rows``
#: would otherwise compute per read, copied from those rows by ``storage.record.sync_trial_rows``.
#: ``datetime_complete`` ties a row to the trial it was copied from (see ``storage.sql``).
basin_trials = sa.Table(
    "basin_trials",
    basin_metadata,
    sa.Column("trial_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("study_id", sa.Integer, nullable=False),  # no index: a read scans (faster than probes at 10⁵)
    sa.Column("number", sa.Integer),
    sa.Column("state", sa.String(16)),
    sa.Column("datetime_complete", sa.DateTime),
    *(sa.Column(name, sa.Float(precision=53)) for name in (*PARAMS, "value")),
    sa.Column("value_type", sa.String(16)),
    *(sa.Column(key, sa.Text) for key in ROW_ATTRS),
)


def state_is(column: sa.ColumnElement, *states: str) -> sa.ColumnElement[bool]:
    """``column IN states`` for an Optuna enum column, portable to PostgreSQL's native enums."""
    return sa.cast(column, sa.String).in_(states)
