"""``lineage.experiments`` and ``lineage.checkpoints`` as external assets: written by the
experiment job and by ``posttrain experiment launch``; each launch logs a materialization
with its manifest as metadata."""

from __future__ import annotations

from posttrain.assets._support import table_spec
from posttrain.platform.schemas import TableName

experiments_table = table_spec(TableName.LINEAGE_EXPERIMENTS, group="experiments")
checkpoints_table = table_spec(
    TableName.LINEAGE_CHECKPOINTS,
    group="experiments",
    deps=[TableName.LINEAGE_EXPERIMENTS],
)
