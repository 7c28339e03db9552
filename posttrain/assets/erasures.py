"""``lineage.erasures`` as an external asset: written by ``posttrain forget``, never
materialized by Dagster; shown in the UI beside the tables it rewrites."""

from __future__ import annotations

from posttrain.assets._support import table_spec
from posttrain.platform.schemas import TableName

erasures = table_spec(TableName.LINEAGE_ERASURES, group="lineage")
