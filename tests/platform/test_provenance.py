"""posttrain lineage: the chain to bronze, source files and licenses; the license policy."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pytest
from versions_data import build

from posttrain.platform import versions as v
from posttrain.platform.errors import ConfigError
from posttrain.platform.lineage import Lineage
from posttrain.platform.provenance import LicensePolicy, corpus_licenses, lineage
from posttrain.platform.schemas import TABLES, TableName
from posttrain.platform.warehouse import Warehouse


def test_lineage_follows_gold_to_silver_to_bronze(warehouse: Warehouse) -> None:
    first = build(warehouse, range(3))
    v.create_version(warehouse, "sft", "v1")
    build(warehouse, range(3, 5), source="forum", license="CC-BY-4.0")
    found = lineage(warehouse, "gold.sft@v1")
    assert [(link.table, link.depth) for link in found.chain] == [
        ("gold.sft", 0),
        ("silver.conversations", 1),
        ("bronze.records", 2),
    ]
    assert found.chain[1].snapshot_id == first["silver.conversations"]
    assert (found.rows, found.records, found.records_in_bronze) == (3, 3, 3)
    assert found.by_source_uri == Counter({"file:///data/web.jsonl": 3})
    assert found.by_license == Counter({"MIT": 3})  # v1 predates the forum rows


def test_a_row_without_license_takes_its_sources_license(warehouse: Warehouse) -> None:
    build(warehouse, range(2), source="wiki", license=None)
    sources = pa.Table.from_pylist(
        [{"source": "wiki", "license": "CC-BY-SA-4.0"}],
        schema=TABLES[TableName.LINEAGE_SOURCES].schema,
    )
    warehouse.append(TableName.LINEAGE_SOURCES, sources, Lineage("sources"))
    assert lineage(warehouse, "gold.sft").by_license == Counter({"CC-BY-SA-4.0": 2})
    assert corpus_licenses(warehouse, warehouse.pin("gold.sft")) == Counter({"CC-BY-SA-4.0": 2})


def test_the_policy_names_forbidden_mixes_and_forbidden_licenses() -> None:
    policy = LicensePolicy(forbidden_together=[("GPL-3.0", "MIT")], forbidden=["proprietary"])
    assert policy.violations({"MIT"}) == []
    assert policy.violations({"MIT", "GPL-3.0", "proprietary"}) == [
        "license proprietary is forbidden",
        "licenses GPL-3.0 and MIT must not be mixed",
    ]


def test_a_policy_file_with_a_typo_is_refused(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "policy.yaml"  # type: ignore[operator]
    path.write_text("forbiden: [x]\n")
    with pytest.raises(ConfigError, match="not a license policy"):
        LicensePolicy.from_file(path)
