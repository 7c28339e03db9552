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


def _required(name: str, type_: pa.DataType, doc: str = "") -> pa.Field:
    return pa.field(name, type_, nullable=False, metadata=_doc(doc))


def _optional(name: str, type_: pa.DataType, doc: str = "") -> pa.Field:
    return pa.field(name, type_, nullable=True, metadata=_doc(doc))


def _doc(doc: str) -> dict[bytes, bytes] | None:
    # pyiceberg turns the "doc" field metadata into the Iceberg column doc, which the
    # Dagster UI and any Iceberg client then show beside the column.
    return {b"doc": doc.encode()} if doc else None


def column_doc(field: pa.Field) -> str:
    """The description of a column declared here ("" when it has none)."""
    doc: bytes = (field.metadata or {}).get(b"doc", b"")
    return doc.decode()


# Columns every row below bronze carries so it can be traced back without a join.
PROVENANCE_FIELDS = [
    _optional("source", pa.string(), "Source name given at ingest, e.g. a dataset or product."),
    _optional("source_uri", pa.string(), "The file the record was read from."),
    _optional("workspace", pa.string(), "Team or project the record belongs to."),
    _optional("license", pa.string(), "License of the source, e.g. CC-BY-4.0."),
    _optional("batch_id", pa.string(), "The ingest call that brought the record in."),
    _optional("format", pa.string(), "Chat format: openai, sharegpt, alpaca, prompt_completion."),
]

BRONZE_RECORDS = pa.schema(
    [
        _required(
            "record_id",
            pa.string(),
            "Hash of source, file name, payload and its occurrence number in the file.",
        ),
        _optional("payload", pa.string(), "The record exactly as received (JSON text)."),
        _optional(
            "payload_bytes",
            pa.binary(),
            "The record's exact bytes when they are not valid UTF-8 (payload is then null).",
        ),
        _required("row_index", pa.int64(), "1-based line (JSONL) or row (Parquet) in the file."),
        *PROVENANCE_FIELDS,
        _optional("split", pa.string(), "Dataset split (train, test, ...) of a datasets folder."),
        _optional("ingested_at", TIMESTAMP_TYPE, "When the record was appended (UTC)."),
    ]
)

LINEAGE_SOURCES = pa.schema(
    [
        _required("source", pa.string(), "Source name given at ingest."),
        _optional("workspace", pa.string(), "Team or project the source's records belong to."),
        _optional("license", pa.string(), "License of the source, e.g. CC-BY-4.0."),
        _optional("description", pa.string(), "What the source is, for a person to read."),
        _optional("updated_at", TIMESTAMP_TYPE, "When this metadata was last set (UTC)."),
    ]
)

REDACTION_COUNTS_TYPE = pa.map_(pa.string(), pa.int32())

SILVER_CONVERSATIONS = pa.schema(
    [
        _required("record_id", pa.string(), "The bronze record this conversation came from."),
        _optional("messages", MESSAGES_TYPE, "Canonical OpenAI/TRL messages, redacted."),
        *PROVENANCE_FIELDS,
        _optional("num_turns", pa.int32(), "Number of messages."),
        _optional("num_chars", pa.int64(), "Characters of message content."),
        _optional("redactions", REDACTION_COUNTS_TYPE, "Redactions per kind (email, phone, ...)."),
        # Kept so later batches can be deduplicated against what is already published.
        _optional("exact_hash", pa.string(), "Hash of the normalized text (exact dedup)."),
        _optional("minhash", pa.binary(), "MinHash signature (near dedup), with its settings."),
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
    STAGE_ERROR = "stage_error"  # a silver or gold stage raised on this record


SILVER_REJECTIONS = pa.schema(
    [
        _required("record_id", pa.string(), "The bronze record refused."),
        _required(
            "reason",
            pa.string(),
            "malformed, empty, too_short, too_long, invalid_roles, "
            "exact_dup, near_dup, contaminated or stage_error.",
        ),
        _optional("detail", pa.string(), "What exactly was wrong, for a person to read."),
        _optional("kept_record_id", pa.string(), "Duplicates: the kept record it matched."),
        _optional("similarity", pa.float64(), "Duplicates: estimated Jaccard similarity."),
        _optional("benchmark", pa.string(), "Contamination: the benchmark it overlaps."),
        _optional("benchmark_item_id", pa.string(), "Contamination: the benchmark item."),
        _optional("matched_ngrams", pa.int32(), "Contamination: n-grams shared with the item."),
        _optional("source", pa.string(), "Source name given at ingest."),
        _optional("batch_id", pa.string(), "The ingest call that brought the record in."),
        _optional("source_uri", pa.string(), "The file the record was read from."),
        _optional("row_index", pa.int64(), "1-based line (JSONL) or row (Parquet) in that file."),
    ]
)

GOLD_SFT = pa.schema(
    [
        _required("record_id", pa.string(), "The bronze record this example came from."),
        _optional("messages", MESSAGES_TYPE, "TRL conversational messages."),
        _optional("source", pa.string(), "Source name given at ingest."),
        _optional("workspace", pa.string(), "Team or project the record belongs to."),
        _optional("license", pa.string(), "License of the source."),
    ]
)

GOLD_SFT_PACKED = pa.schema(
    [
        _required("pack_id", pa.int64(), "Position of the pack, fullest first."),
        _optional("input_ids", pa.list_(pa.int32()), "Token ids of the packed conversations."),
        # int32 because Iceberg has no 8-bit integer.
        _optional("assistant_masks", pa.list_(pa.int32()), "1 where the token is trained on."),
        _optional("seq_lengths", pa.list_(pa.int32()), "Length of each packed conversation."),
        _optional("record_ids", pa.list_(pa.string()), "Record of each packed conversation."),
        _optional("num_tokens", pa.int32(), "Tokens in the pack."),
    ]
)

EVAL_HUMANEVAL = pa.schema(
    [
        _required("item_id", pa.string(), "Problem id, e.g. HumanEval/0."),
        _optional("prompt", pa.string(), "Function signature and docstring given to the model."),
        _optional("canonical_solution", pa.string(), "Reference body that passes the tests."),
        _optional("test", pa.string(), "The check(candidate) function that scores a solution."),
        _optional("entry_point", pa.string(), "Name of the function under test."),
    ]
)

GOLD_RL_PROMPTS = pa.schema(
    [
        _required(
            "prompt_id", pa.string(), "Stable id: source and item, e.g. humaneval:HumanEval/0."
        ),
        _optional(
            "prompt", MESSAGES_TYPE, "TRL conversational prompt: the messages given to the policy."
        ),
        _optional(
            "verifier_kind",
            pa.string(),
            "How a completion is scored: exact, numeric, regex, json_schema or python_tests.",
        ),
        _optional(
            "verifier_spec", pa.string(), "The verifier's settings as JSON (see rl/verifiers.py)."
        ),
        _optional("reference", pa.string(), "A reference completion; the verifier passes it."),
        _optional("source", pa.string(), "Where the task came from, e.g. humaneval or math-tutor."),
        _optional(
            "source_id", pa.string(), "The task's id there: benchmark item or bronze record."
        ),
        _optional("license", pa.string(), "License of the source."),
    ]
)

GOLD_RL_PROMPTS_REJECTIONS = pa.schema(
    [
        _required("prompt_id", pa.string(), "The task refused, as it would be in gold.rl_prompts."),
        _required(
            "reason",
            pa.string(),
            "no_answer, invalid_spec, reference_fails or empty_passes.",
        ),
        _optional("detail", pa.string(), "What exactly was wrong, e.g. the verifier's verdict."),
        _optional("verifier_kind", pa.string(), "The verifier kind the task would have had."),
        _optional("verifier_spec", pa.string(), "The verifier spec (JSON) that was refused."),
        _optional("source", pa.string(), "Where the task came from."),
        _optional("source_id", pa.string(), "The task's id there."),
    ]
)

CORPUS_VERSIONS = pa.schema(
    [
        _required(
            "event_key",
            pa.string(),
            "Unique key of the event: 'create CORPUS@VERSION' (at most one per corpus and "
            "version) or 'rollback TABLE@REF <uuid>'.",
        ),
        _required("event", pa.string(), "create (a corpus version was cut) or rollback."),
        _optional("corpus", pa.string(), "Corpus name, e.g. sft (null for a rollback)."),
        _optional(
            "version",
            pa.string(),
            "Version name, e.g. v3; for a rollback, the ref main was moved back to.",
        ),
        _optional(
            "snapshots",
            pa.map_(pa.string(), pa.int64()),
            "Table → snapshot id the version pins (null: the table was empty); for a "
            "rollback, the table → the snapshot main now points at.",
        ),
        _optional(
            "previous_snapshots",
            pa.map_(pa.string(), pa.int64()),
            "Rollback: table → the snapshot main pointed at before.",
        ),
        _optional(
            "config_hashes",
            pa.map_(pa.string(), pa.string()),
            "Table → config hash recorded by the snapshot that wrote it.",
        ),
        _optional("code_version", pa.string(), "posttrain version and git commit of the writer."),
        _optional(
            "outcome_cutoff",
            TIMESTAMP_TYPE,
            "Outcomes that arrived after this time (UTC) are not in the version.",
        ),
        _optional(
            "outcomes_included",
            pa.string(),
            "Which outcomes the version includes, e.g. bronze.outcomes snapshot ids.",
        ),
        _optional("created_by", pa.string(), "Who cut the version or rolled back."),
        _optional("created_at", TIMESTAMP_TYPE, "When the event was recorded (UTC)."),
    ]
)

# Table property naming which string columns of an eval.* table are the benchmark text
# that training data must not contain.
DECONTAM_COLUMNS_PROPERTY = "posttrain.decontam.text-columns"

ERASURES = pa.schema(
    [
        _required("erasure_id", pa.string(), "The `posttrain forget` call."),
        _required("table_name", pa.string(), "The table rewritten."),
        _required("ref", pa.string(), "The branch or tag rewritten (main, a version tag...)."),
        _optional("ref_type", pa.string(), "branch or tag."),
        _optional("rows_removed", pa.int64(), "Rows (or packed segments) erased from the ref."),
        _optional("rows_rewritten", pa.int64(), "Rows written back changed (packs, pointers)."),
        _optional("snapshot_before", pa.int64(), "The ref's snapshot before the erasure."),
        _optional("snapshot_after", pa.int64(), "The ref's snapshot after the erasure."),
        _optional("record_ids", pa.list_(pa.string()), "The record ids forgotten."),
        _optional("selector_kind", pa.string(), "record_id, source_uri or where."),
        _optional("selector", pa.string(), "The selection; a --where filter only as its SHA-256."),
        _optional("requested_by", pa.string(), "Who ran the erasure."),
        _optional("erased_at", TIMESTAMP_TYPE, "When (UTC)."),
    ]
)


class TableName(StrEnum):
    """Every posttrain table's identifier. Code outside this module names tables only here."""

    BRONZE_RECORDS = "bronze.records"
    LINEAGE_SOURCES = "lineage.sources"
    SILVER_CONVERSATIONS = "silver.conversations"
    SILVER_REJECTIONS = "silver.rejections"
    GOLD_SFT = "gold.sft"
    GOLD_SFT_PACKED = "gold.sft_packed"
    EVAL_HUMANEVAL = "eval.humaneval"
    GOLD_RL_PROMPTS = "gold.rl_prompts"
    GOLD_RL_PROMPTS_REJECTIONS = "gold.rl_prompts_rejections"
    LINEAGE_CORPUS_VERSIONS = "lineage.corpus_versions"
    LINEAGE_ERASURES = "lineage.erasures"


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
            TableName.BRONZE_RECORDS,
            BRONZE_RECORDS,
            ("record_id",),
            "One raw input record exactly as received; append-only, rewritten only by "
            "`posttrain forget` (erasure, recorded in lineage.erasures).",
        ),
        TableSpec(
            TableName.LINEAGE_SOURCES,
            LINEAGE_SOURCES,
            ("source",),
            "A source's current metadata (workspace, license, description), once per source.",
        ),
        TableSpec(
            TableName.SILVER_CONVERSATIONS,
            SILVER_CONVERSATIONS,
            ("record_id",),
            "A clean, redacted, deduplicated, decontaminated conversation.",
        ),
        TableSpec(
            TableName.SILVER_REJECTIONS,
            SILVER_REJECTIONS,
            ("record_id",),
            "A bronze record that silver refused, with the reason and evidence.",
        ),
        TableSpec(
            TableName.GOLD_SFT,
            GOLD_SFT,
            ("record_id",),
            "A TRL conversational SFT example (`messages`).",
        ),
        TableSpec(
            TableName.GOLD_SFT_PACKED,
            GOLD_SFT_PACKED,
            ("pack_id",),
            "A packed, padding-free training sequence in TRL's layout.",
        ),
        TableSpec(
            TableName.EVAL_HUMANEVAL,
            EVAL_HUMANEVAL,
            ("item_id",),
            "HumanEval problems; also a decontamination reference.",
            {DECONTAM_COLUMNS_PROPERTY: "prompt,canonical_solution"},
        ),
        TableSpec(
            TableName.GOLD_RL_PROMPTS,
            GOLD_RL_PROMPTS,
            ("prompt_id",),
            "An RL task: a prompt and a verifier (kind + spec) that passes its reference.",
        ),
        TableSpec(
            TableName.GOLD_RL_PROMPTS_REJECTIONS,
            GOLD_RL_PROMPTS_REJECTIONS,
            ("prompt_id",),
            "An RL task left out of gold.rl_prompts, and why (its verifier failed a check).",
        ),
        TableSpec(
            TableName.LINEAGE_CORPUS_VERSIONS,
            CORPUS_VERSIONS,
            ("event_key",),
            "One corpus version event (create or rollback); readers resolve versions here.",
        ),
        TableSpec(
            TableName.LINEAGE_ERASURES,
            ERASURES,
            ("erasure_id", "table_name", "ref"),
            "One ref of one table rewritten by `posttrain forget`.",
        ),
    ]
}
