"""``lineage.corpus_versions`` as an external asset: written by ``posttrain version create``
(and rollbacks), never materialized by Dagster; the versions sensor watches it."""

from __future__ import annotations

from posttrain.assets._support import table_spec
from posttrain.platform.corpora import CORPORA
from posttrain.platform.schemas import TableName

corpus_versions = table_spec(
    TableName.LINEAGE_CORPUS_VERSIONS,
    group="versions",
    deps=sorted({str(t) for corpus in CORPORA.values() for t in corpus.tables}),
)
