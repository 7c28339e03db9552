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
    _optional(
        "format",
        pa.string(),
        "Record format: openai, sharegpt, alpaca, prompt_completion (chat); trl_preference, "
        "transcript_pair, rated_completions, judgment (preference).",
    ),
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
    # Preference pairs (silver.preferences):
    SAME_SIDES = "same_sides"  # chosen = rejected
    NO_SHARED_PROMPT = "no_shared_prompt"  # the two transcripts share no prompt
    NO_PAIRS = "no_pairs"  # rated completions that yield no pair (one completion, equal scores)
    UNKNOWN_RECORD = "unknown_record"  # a judgment names a record bronze does not hold
    DUPLICATE_PAIR = "duplicate_pair"  # same prompt, chosen and rejected as a kept pair


SILVER_REJECTIONS = pa.schema(
    [
        _required("record_id", pa.string(), "The bronze record refused."),
        _required(
            "reason",
            pa.string(),
            "malformed, empty, too_short, too_long, invalid_roles, exact_dup, near_dup, "
            "contaminated or stage_error; preference pairs also same_sides, "
            "no_shared_prompt, no_pairs, unknown_record or duplicate_pair.",
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
        _optional(
            "pair_id",
            pa.string(),
            "Preference pairs: the candidate pair refused (null when the whole record was).",
        ),
    ]
)

PREFERENCE_ORIGINS = ("format", "judgment", "rollouts")

SILVER_PREFERENCES = pa.schema(
    [
        _required(
            "pair_id",
            pa.string(),
            "Hash of the source record(s), the pairing rule and the two sides' positions.",
        ),
        _optional(
            "record_id",
            pa.string(),
            "The bronze record the pair was derived from (preference record or judgment).",
        ),
        _optional("prompt", MESSAGES_TYPE, "The shared prompt: system and user turns, etc."),
        _optional("chosen", MESSAGES_TYPE, "The preferred continuation of the prompt."),
        _optional("rejected", MESSAGES_TYPE, "The dispreferred continuation of the prompt."),
        _optional(
            "margin",
            pa.float64(),
            "Score of chosen minus score of rejected, when the input had scores.",
        ),
        _optional(
            "pairing_rule",
            pa.string(),
            "How the pair was formed: as_given, best_vs_worst, best_vs_each, "
            "all_above_margin, judgment, or a rollout rule.",
        ),
        _optional("chosen_record_id", pa.string(), "The record holding the chosen side."),
        _optional("rejected_record_id", pa.string(), "The record holding the rejected side."),
        *PROVENANCE_FIELDS,
        _optional("row_index", pa.int64(), "1-based line (JSONL) or row (Parquet) in the file."),
        _required("origin", pa.string(), "Where the pair came from: format, judgment, rollouts."),
    ]
)

GOLD_DPO = pa.schema(
    [
        _required("pair_id", pa.string(), "The silver.preferences pair this example is."),
        _optional("prompt", MESSAGES_TYPE, "TRL conversational prompt messages."),
        _optional("chosen", MESSAGES_TYPE, "TRL conversational chosen completion messages."),
        _optional("rejected", MESSAGES_TYPE, "TRL conversational rejected completion messages."),
        _optional("margin", pa.float64(), "Score margin of chosen over rejected, if known."),
        _optional("record_id", pa.string(), "The bronze record the pair was derived from."),
        _optional("source", pa.string(), "Source name given at ingest."),
        _optional("workspace", pa.string(), "Team or project the record belongs to."),
        _optional("license", pa.string(), "License of the source."),
        _optional("origin", pa.string(), "Where the pair came from: format, judgment, rollouts."),
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

# Table property naming which string columns of an eval.* table are the benchmark text
# that training data must not contain.
DECONTAM_COLUMNS_PROPERTY = "posttrain.decontam.text-columns"


class TableName(StrEnum):
    """Every posttrain table's identifier. Code outside this module names tables only here."""

    BRONZE_RECORDS = "bronze.records"
    LINEAGE_SOURCES = "lineage.sources"
    SILVER_CONVERSATIONS = "silver.conversations"
    SILVER_REJECTIONS = "silver.rejections"
    SILVER_PREFERENCES = "silver.preferences"
    SILVER_PREFERENCE_REJECTIONS = "silver.preference_rejections"
    GOLD_SFT = "gold.sft"
    GOLD_SFT_PACKED = "gold.sft_packed"
    GOLD_DPO = "gold.dpo"
    EVAL_HUMANEVAL = "eval.humaneval"
    GOLD_RL_PROMPTS = "gold.rl_prompts"
    GOLD_RL_PROMPTS_REJECTIONS = "gold.rl_prompts_rejections"


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
            "One raw input record exactly as received; append-only, never rewritten.",
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
            TableName.SILVER_PREFERENCES,
            SILVER_PREFERENCES,
            ("pair_id",),
            "A clean preference pair: prompt, chosen and rejected messages, and why paired.",
        ),
        TableSpec(
            TableName.SILVER_PREFERENCE_REJECTIONS,
            SILVER_REJECTIONS,
            ("record_id", "pair_id"),
            "A preference record (pair_id null) or candidate pair that silver refused, and why.",
        ),
        TableSpec(
            TableName.GOLD_DPO,
            GOLD_DPO,
            ("pair_id",),
            "A TRL conversational preference example (`prompt`, `chosen`, `rejected`).",
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
    ]
}
