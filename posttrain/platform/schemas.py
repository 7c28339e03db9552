"""Arrow schemas of every posttrain table, and the registry that names them.

One place defines what a row of each table is; the warehouse creates Iceberg tables from
these schemas and every writer builds its Arrow batches against them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import pyarrow as pa

FUNCTION_CALL_TYPE = pa.struct([("name", pa.string()), ("arguments", pa.string())])
TOOL_CALL_TYPE = pa.struct(
    [("id", pa.string()), ("type", pa.string()), ("function", FUNCTION_CALL_TYPE)]
)
MESSAGE_TYPE = pa.struct(
    [
        ("role", pa.string()),
        ("content", pa.string()),
        ("name", pa.string()),
        ("tool_calls", pa.list_(TOOL_CALL_TYPE)),
        ("tool_call_id", pa.string()),
    ]
)
MESSAGES_TYPE = pa.list_(MESSAGE_TYPE)
TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")


def _required(name: str, type_: pa.DataType) -> pa.Field:
    return pa.field(name, type_, nullable=False)


def _optional(name: str, type_: pa.DataType) -> pa.Field:
    return pa.field(name, type_, nullable=True)


# Columns every row below bronze carries so it can be traced back without a join.
PROVENANCE_FIELDS = [
    _optional("source", pa.string()),
    _optional("source_uri", pa.string()),
    _optional("workspace", pa.string()),
    _optional("license", pa.string()),
    _optional("batch_id", pa.string()),
    _optional("format", pa.string()),
]

BRONZE_RECORDS = pa.schema(
    [
        _required("record_id", pa.string()),
        _required("payload", pa.string()),
        _required("row_index", pa.int64()),
        *PROVENANCE_FIELDS,
        _optional("ingested_at", TIMESTAMP_TYPE),
    ]
)

REDACTION_COUNTS_TYPE = pa.map_(pa.string(), pa.int32())

SILVER_CONVERSATIONS = pa.schema(
    [
        _required("record_id", pa.string()),
        _optional("messages", MESSAGES_TYPE),
        *PROVENANCE_FIELDS,
        _optional("num_turns", pa.int32()),
        _optional("num_chars", pa.int64()),
        _optional("redactions", REDACTION_COUNTS_TYPE),
        # Kept so later batches can be deduplicated against what is already published.
        _optional("exact_hash", pa.string()),
        _optional("minhash", pa.binary()),
    ]
)


class RejectionReason(StrEnum):
    """Why silver refused a record. Stored in ``silver.rejections.reason``."""

    MALFORMED = "malformed"  # not decodable, or not the chat format it claims
    EMPTY = "empty"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    INVALID_ROLES = "invalid_roles"
    EXACT_DUP = "exact_dup"
    NEAR_DUP = "near_dup"
    CONTAMINATED = "contaminated"


SILVER_REJECTIONS = pa.schema(
    [
        _required("record_id", pa.string()),
        _required("reason", pa.string()),
        _optional("detail", pa.string()),
        _optional("kept_record_id", pa.string()),
        _optional("similarity", pa.float64()),
        _optional("benchmark", pa.string()),
        _optional("benchmark_item_id", pa.string()),
        _optional("matched_ngrams", pa.int32()),
        _optional("source", pa.string()),
        _optional("batch_id", pa.string()),
    ]
)

GOLD_SFT = pa.schema(
    [
        _required("record_id", pa.string()),
        _optional("messages", MESSAGES_TYPE),
        _optional("source", pa.string()),
        _optional("workspace", pa.string()),
        _optional("license", pa.string()),
    ]
)

GOLD_SFT_PACKED = pa.schema(
    [
        _required("pack_id", pa.int64()),
        _optional("input_ids", pa.list_(pa.int32())),
        # 1 where the token is trained on; int32 because Iceberg has no 8-bit integer.
        _optional("assistant_masks", pa.list_(pa.int32())),
        _optional("seq_lengths", pa.list_(pa.int32())),
        _optional("record_ids", pa.list_(pa.string())),
        _optional("num_tokens", pa.int32()),
    ]
)

EVAL_HUMANEVAL = pa.schema(
    [
        _required("item_id", pa.string()),
        _optional("prompt", pa.string()),
        _optional("canonical_solution", pa.string()),
        _optional("test", pa.string()),
        _optional("entry_point", pa.string()),
    ]
)

# Table property naming which string columns of an eval.* table are the benchmark text
# that training data must not contain.
DECONTAM_COLUMNS_PROPERTY = "posttrain.decontam.text-columns"


@dataclass(frozen=True)
class TableSpec:
    """A posttrain table: its identifier, schema, key and what a row is."""

    name: str
    schema: pa.Schema
    key: tuple[str, ...]
    description: str
    properties: dict[str, str] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return self.name.split(".", 1)[0]


TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in [
        TableSpec(
            "bronze.records",
            BRONZE_RECORDS,
            ("record_id",),
            "One raw input record exactly as received; append-only, never rewritten.",
        ),
        TableSpec(
            "silver.conversations",
            SILVER_CONVERSATIONS,
            ("record_id",),
            "A clean, redacted, deduplicated, decontaminated conversation.",
        ),
        TableSpec(
            "silver.rejections",
            SILVER_REJECTIONS,
            ("record_id",),
            "A bronze record that silver refused, with the reason and evidence.",
        ),
        TableSpec(
            "gold.sft",
            GOLD_SFT,
            ("record_id",),
            "A TRL conversational SFT example (`messages`).",
        ),
        TableSpec(
            "gold.sft_packed",
            GOLD_SFT_PACKED,
            ("pack_id",),
            "A packed, padding-free training sequence in TRL's layout.",
        ),
        TableSpec(
            "eval.humaneval",
            EVAL_HUMANEVAL,
            ("item_id",),
            "HumanEval problems; also a decontamination reference.",
            {DECONTAM_COLUMNS_PROPERTY: "prompt,canonical_solution"},
        ),
    ]
}
