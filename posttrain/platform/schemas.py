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
        "transcript_pair, rated_completions, judgment (preference); rollout.",
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
    # Rollouts (silver.rollout_rejections):
    MISSING_FIELD = "missing_field"  # no prompt_id, completion or checkpoint
    INVALID_REWARD = "invalid_reward"  # a reward that is not a finite number
    UNKNOWN_PROMPT = "unknown_prompt"  # a prompt id that gold.rl_prompts does not hold
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
            "no_shared_prompt, no_pairs, unknown_record or duplicate_pair; rollouts also "
            "missing_field, invalid_reward or unknown_prompt.",
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

# Rollout pairs (origin rollouts): which policy checkpoint wrote each side; null otherwise.
_CHECKPOINT_FIELDS = [
    _optional(
        "chosen_checkpoint",
        pa.string(),
        "Rollout pairs: the policy checkpoint that wrote the chosen side (null otherwise).",
    ),
    _optional(
        "rejected_checkpoint",
        pa.string(),
        "Rollout pairs: the policy checkpoint that wrote the rejected side (null otherwise).",
    ),
]

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
            "The bronze record the pair was derived from (preference record or judgment; "
            "the chosen rollout for origin rollouts), or the bronze.outcomes outcome_id of "
            "a pairwise preference that arrived as an outcome.",
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
        *_CHECKPOINT_FIELDS,
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
        *_CHECKPOINT_FIELDS,
    ]
)

GOLD_SFT = pa.schema(
    [
        _required("record_id", pa.string(), "The bronze record this example came from."),
        _optional("messages", MESSAGES_TYPE, "TRL conversational messages."),
        _optional("source", pa.string(), "Source name given at ingest."),
        _optional("workspace", pa.string(), "Team or project the record belongs to."),
        _optional("license", pa.string(), "License of the source."),
        _optional(
            "checkpoint", pa.string(), "Rollouts: the policy checkpoint that wrote the answer."
        ),
    ]
)

SILVER_ROLLOUTS = pa.schema(
    [
        _required("record_id", pa.string(), "The bronze rollout record."),
        _optional("messages", MESSAGES_TYPE, "Prompt + the policy's completion, redacted."),
        _optional("prompt_id", pa.string(), "The gold.rl_prompts task the rollout answered."),
        _optional("checkpoint", pa.string(), "The policy checkpoint that wrote the completion."),
        _optional("reward", pa.float64(), "The rollout's reward, given or from the verifier."),
        _optional("reward_source", pa.string(), "given, or verifier:<kind> when scored here."),
        _optional("sampling", pa.string(), "Sampling settings as JSON (temperature, ...)."),
        _optional(
            "sft_status",
            pa.string(),
            "Rejection sampling: kept (an SFT row in gold.sft), below_threshold, or the "
            "silver reason that refused it (near_dup, contaminated, ...).",
        ),
        _optional("sft_detail", pa.string(), "Why it was not kept, for a person to read."),
        _optional("kept_record_id", pa.string(), "Duplicates: the kept record it matched."),
        *PROVENANCE_FIELDS,
        _optional("row_index", pa.int64(), "1-based line (JSONL) or row (Parquet) in the file."),
    ]
)

# What packing yields: TRL's padding-free layout, one row per packed sequence.
PACKED_SEQUENCES = pa.schema(
    [
        _required("pack_id", pa.int64(), "Position of the pack within its packing, fullest first."),
        _optional("input_ids", pa.list_(pa.int32()), "Token ids of the packed conversations."),
        # int32 because Iceberg has no 8-bit integer.
        _optional("assistant_masks", pa.list_(pa.int32()), "1 where the token is trained on."),
        _optional("seq_lengths", pa.list_(pa.int32()), "Length of each packed conversation."),
        _optional("record_ids", pa.list_(pa.string()), "Record of each packed conversation."),
        _optional("num_tokens", pa.int32(), "Tokens in the pack."),
    ]
)

GOLD_SFT_PACKED = pa.schema(
    [
        _optional(
            "pack_key",
            pa.string(),
            "What made the packing: hash of tokenizer, chat template, mask policy and sequence "
            "length (see lineage.pack_keys); select one packing with it.",
        ),
        *PACKED_SEQUENCES,
    ]
)

LINEAGE_PACK_KEYS = pa.schema(
    [
        _required("pack_key", pa.string(), "The packing's key in gold.sft_packed."),
        _optional("tokenizer", pa.string(), "Tokenizer name or path as configured."),
        _optional("tokenizer_hash", pa.string(), "SHA-256 of the tokenizer's vocab and rules."),
        _optional("chat_template_hash", pa.string(), "SHA-256 of the chat template."),
        _optional("mask_policy", pa.string(), "Which tokens are trained on, and truncation."),
        _optional("seq_length", pa.int32(), "Tokens per packed sequence."),
        _optional("overflow", pa.string(), "truncate or split: conversations over seq_length."),
        _optional("source_snapshot_id", pa.int64(), "The gold.sft snapshot that was packed."),
        _optional("packed_snapshot_id", pa.int64(), "The gold.sft_packed snapshot that wrote it."),
        _optional("packs", pa.int64(), "Rows of gold.sft_packed with this key."),
        _optional("stats", pa.string(), "Packing figures as JSON (efficiency, truncations)."),
        _optional("dropped_record_ids", pa.list_(pa.string()), "Records left out, with reason."),
        _optional("updated_at", TIMESTAMP_TYPE, "When this packing was written (UTC)."),
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

OUTCOME_KINDS = ("reward", "preference", "test_result", "feedback", "text")

BRONZE_OUTCOMES = pa.schema(
    [
        _required(
            "outcome_id",
            pa.string(),
            "Hash of record_id, kind, value, text, source and event_id: the same signal "
            "delivered twice is one row.",
        ),
        _required("record_id", pa.string(), "The bronze record the signal is about."),
        _required("kind", pa.string(), "reward, preference, test_result, feedback or text."),
        _optional("value", pa.float64(), "Numeric value (reward, score, pass rate), if any."),
        _optional("text", pa.string(), "Free-text detail (feedback, test output), if any."),
        _optional("source", pa.string(), "Who sent the signal, e.g. a grader or a user."),
        _optional("event_id", pa.string(), "The sender's own id of the signal, if it has one."),
        _required("arrived_at", TIMESTAMP_TYPE, "When the signal reached posttrain (UTC)."),
        _optional("batch_id", pa.string(), "The ingest call that brought the signal in."),
        _optional("source_uri", pa.string(), "The file the signal was read from, if any."),
        _optional("row_index", pa.int64(), "1-based line (JSONL) or row (Parquet) in that file."),
        _optional(
            "other_record_id",
            pa.string(),
            "Pairwise preferences (kind preference): the record that record_id was preferred "
            "over; silver.preferences pairs the two (origin judgment, margin = value).",
        ),
        _optional(
            "workspace",
            pa.string(),
            "Workspace of a captured signal (posttrain serve); null for file ingests.",
        ),
    ]
)

OUTCOME_TYPE = pa.struct(
    [
        ("outcome_id", pa.string()),
        ("kind", pa.string()),
        ("value", pa.float64()),
        ("text", pa.string()),
        ("source", pa.string()),
        ("arrived_at", TIMESTAMP_TYPE),
    ]
)

SILVER_LABELED = pa.schema(
    [
        _required("record_id", pa.string(), "The bronze record this conversation came from."),
        _optional("messages", MESSAGES_TYPE, "Canonical OpenAI/TRL messages, redacted."),
        _optional("source", pa.string(), "Source name of the conversation, given at ingest."),
        _optional("workspace", pa.string(), "Team or project the record belongs to."),
        _optional("license", pa.string(), "License of the source, e.g. CC-BY-4.0."),
        _optional("ingested_at", TIMESTAMP_TYPE, "When the bronze record was ingested (UTC)."),
        _optional("reward", pa.float64(), "Value of the latest reward outcome."),
        _optional("preference", pa.float64(), "Value of the latest preference outcome."),
        _optional("test_result", pa.float64(), "Value of the latest test_result outcome."),
        _optional("feedback", pa.string(), "Text of the latest feedback outcome."),
        _optional("text", pa.string(), "Text of the latest free-text outcome."),
        _optional("num_outcomes", pa.int32(), "Outcomes of every kind joined to the record."),
        _optional("labeled_at", TIMESTAMP_TYPE, "Arrival of the latest outcome joined (UTC)."),
        _optional(
            "outcomes",
            pa.list_(OUTCOME_TYPE),
            "Full outcome history, oldest first (arrived_at, then outcome_id).",
        ),
    ]
)

LINEAGE_FILTERED_SNAPSHOTS = pa.schema(
    [
        _required("name", pa.string(), "The name given with --as, also the tag on the table."),
        _required("table", pa.string(), "The table holding the frozen rows, e.g. snapshots.x."),
        _required("source_table", pa.string(), "The table the rows were filtered from."),
        _required("source_snapshot_id", pa.int64(), "The pinned snapshot they were read from."),
        _optional("filter", pa.string(), "The row filter, in pyiceberg's syntax."),
        _optional("outcome_cutoff", pa.string(), "Latest outcome arrival the source included."),
        _optional("snapshot_id", pa.int64(), "The snapshot of the frozen table."),
        _optional("rows", pa.int64(), "Rows frozen."),
        _optional("created_at", TIMESTAMP_TYPE, "When the snapshot was frozen (UTC)."),
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


VIBE_CHECKS = pa.schema(
    [
        _required("vibe_id", pa.string(), "Hash of session, prompt, checkpoint and time."),
        _optional("session", pa.string(), "The vibe-check session the prompt was typed in."),
        _optional("prompt", MESSAGES_TYPE, "The messages sent to the model."),
        _optional("answer", pa.string(), "What the model answered."),
        _optional(
            "checkpoint",
            pa.string(),
            "The checkpoint id: a local transformers path or endpoint URL plus model name.",
        ),
        _optional("backend", pa.string(), "transformers or openai (an OpenAI-compatible API)."),
        _optional("source_table", pa.string(), "The table the prompt came from, if any."),
        _optional("source_key", pa.string(), "The row (key value) the prompt came from."),
        _optional("stored_answer", pa.string(), "The answer stored in that row, if any."),
        _optional("created_by", pa.string(), "Who ran it."),
        _optional("created_at", TIMESTAMP_TYPE, "When (UTC)."),
        _optional("seconds", pa.float64(), "Generation wall time."),
    ]
)

ROW_NOTES = pa.schema(
    [
        _required("note_id", pa.string(), "Hash of table, ref, row, kind, text and time."),
        _required("table_name", pa.string(), "The table the note is about."),
        _optional("ref", pa.string(), "The review branch the note was made on."),
        _optional("row_key", pa.string(), "The row's key value (as text)."),
        _optional("kind", pa.string(), "flag or comment."),
        _optional("text", pa.string(), "What the curator wrote."),
        _optional("curator", pa.string(), "Who wrote it."),
        _optional("created_at", TIMESTAMP_TYPE, "When (UTC)."),
    ]
)

EXPERIMENTS = pa.schema(
    [
        _required("experiment_id", pa.string(), "One launch: experiment name, time and nonce."),
        _required(
            "manifest_id",
            pa.string(),
            "Hash of the frozen config and pinned blend: equal ids read the same bytes.",
        ),
        _optional("name", pa.string(), "The experiment's name (its file's `name`)."),
        _optional("config_path", pa.string(), "The experiment file launched, as given."),
        _optional("config_hash", pa.string(), "Config hash of the validated experiment file."),
        _optional("config", pa.string(), "The validated experiment config as canonical JSON."),
        _optional("trainer", pa.string(), "sft, dpo or grpo."),
        _optional("base_model", pa.string(), "The model trained from: tiny, a path or hub id."),
        _optional(
            "corpus_refs", pa.list_(pa.string()), "The corpus references as written, in order."
        ),
        _optional(
            "snapshots",
            pa.map_(pa.string(), pa.int64()),
            "Corpus reference as written → the snapshot id it pinned at launch.",
        ),
        _optional("blend", pa.string(), "The pinned blend (sources, snapshot ids, seed) as JSON."),
        _optional("eval_suites", pa.list_(pa.string()), "Eval suites run on the checkpoint."),
        _optional("seed", pa.int64(), "The experiment's seed."),
        _optional("code_version", pa.string(), "posttrain version and git commit (+dirty)."),
        _optional("git_sha", pa.string(), "Full git commit of the checkout, if there is one."),
        _optional(
            "package_versions",
            pa.map_(pa.string(), pa.string()),
            "Versions of torch, transformers, trl, datasets, pyiceberg, pyarrow, ...",
        ),
        _optional("replay_of", pa.string(), "The experiment whose manifest this launch re-ran."),
        _optional("launched_by", pa.string(), "Who launched it."),
        _optional("launched_at", TIMESTAMP_TYPE, "When the manifest was frozen (UTC)."),
    ]
)

CHECKPOINTS = pa.schema(
    [
        _required("checkpoint_id", pa.string(), "The checkpoint: experiment id and step."),
        _optional("path", pa.string(), "Where the model and tokenizer were saved."),
        _optional("experiment_id", pa.string(), "The launch that trained it."),
        _optional("manifest_id", pa.string(), "The frozen manifest it was trained from."),
        _optional("step", pa.int64(), "Optimizer steps taken."),
        _optional("examples", pa.int64(), "Examples the trainer read from the blend."),
        _optional(
            "stream_digest",
            pa.string(),
            "SHA-256 of the examples read, in order: equal digests, byte-identical data.",
        ),
        _optional("metrics", pa.string(), "Training figures as JSON (loss, runtime, ...)."),
        _optional("created_at", TIMESTAMP_TYPE, "When the checkpoint was registered (UTC)."),
    ]
)

EVAL_MATH_HELDOUT = pa.schema(
    [
        _required("item_id", pa.string(), "Problem id, e.g. math-heldout-0001."),
        _optional("question", pa.string(), "The word problem or calculation given to the model."),
        _optional("solution", pa.string(), "A worked solution ending in **Answer:** ..."),
        _optional("answer", pa.string(), "The final answer an output must match exactly."),
    ]
)

EVAL_RESULTS = pa.schema(
    [
        _required("run_id", pa.string(), "The eval run (one suite, one model, one call)."),
        # Not ``item_id``: decontamination reads every eval.* table with an item_id column
        # as benchmark items, and model outputs are not benchmark text.
        _required("item", pa.string(), "The suite item scored: item_id of its eval table."),
        _optional("suite", pa.string(), "Suite name, e.g. humaneval or math_heldout."),
        _optional("metric", pa.string(), "What score measures, e.g. pass@1 or exact_match."),
        _optional("score", pa.float64(), "The item's score in [0, 1]; 0 when error is set."),
        _optional("detail", pa.string(), "Why the scorer gave that score, one line."),
        _optional("output", pa.string(), "The model's output (possibly cut, see error)."),
        _optional("error", pa.string(), "Why no complete output was scored (null: none)."),
        _optional("latency_s", pa.float64(), "Seconds the model took (0 on a cache hit)."),
        _optional("cached", pa.bool_(), "The output came from the eval cache."),
        _optional("model", pa.string(), "Checkpoint path or openai:BASE_URL#MODEL endpoint."),
        _optional("experiment_id", pa.string(), "The experiment whose checkpoint this is."),
        _optional("corpus_version", pa.string(), "Corpus version evaluated for, e.g. sft@v3."),
        _optional("suite_snapshot_id", pa.int64(), "Snapshot of the suite's eval table read."),
        _optional("settings", pa.string(), "Generation settings as JSON (max tokens...)."),
        _optional("created_at", TIMESTAMP_TYPE, "When the run started (UTC)."),
        _optional(
            "checkpoint_id", pa.string(), "The lineage.checkpoints row scored (null: endpoint)."
        ),
    ]
)


# Namespace of the tables ``posttrain snapshot --as NAME`` freezes (``snapshots.<name>``).
SNAPSHOTS_NAMESPACE = "snapshots"


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
    LINEAGE_PACK_KEYS = "lineage.pack_keys"
    SILVER_ROLLOUTS = "silver.rollouts"
    SILVER_ROLLOUT_REJECTIONS = "silver.rollout_rejections"
    GOLD_DPO = "gold.dpo"
    EVAL_HUMANEVAL = "eval.humaneval"
    LINEAGE_CORPUS_VERSIONS = "lineage.corpus_versions"
    BRONZE_OUTCOMES = "bronze.outcomes"
    SILVER_LABELED = "silver.labeled"
    LINEAGE_FILTERED_SNAPSHOTS = "lineage.filtered_snapshots"
    GOLD_RL_PROMPTS = "gold.rl_prompts"
    GOLD_RL_PROMPTS_REJECTIONS = "gold.rl_prompts_rejections"
    LINEAGE_ERASURES = "lineage.erasures"
    LINEAGE_VIBE_CHECKS = "lineage.vibe_checks"
    LINEAGE_ROW_NOTES = "lineage.row_notes"
    LINEAGE_EXPERIMENTS = "lineage.experiments"
    LINEAGE_CHECKPOINTS = "lineage.checkpoints"
    EVAL_MATH_HELDOUT = "eval.math_heldout"
    EVAL_RESULTS = "eval.results"


@dataclass(frozen=True)
class TableSpec:
    """A posttrain table: its identifier, schema, key and what a row is."""

    name: str
    schema: pa.Schema
    key: tuple[str, ...]
    description: str
    properties: dict[str, str] = field(default_factory=dict)
    # Identity-partition columns: rows of one value live in files of their own.
    partition_by: tuple[str, ...] = ()

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
            ("pack_key", "pack_id"),
            "A packed, padding-free training sequence in TRL's layout; one packing per "
            "pack_key (tokenizer, template, mask policy, length), so packings coexist.",
            partition_by=("pack_key",),
        ),
        TableSpec(
            TableName.SILVER_ROLLOUTS,
            SILVER_ROLLOUTS,
            ("record_id",),
            "An RL rollout with its reward and checkpoint, and what rejection sampling decided.",
        ),
        TableSpec(
            TableName.SILVER_ROLLOUT_REJECTIONS,
            SILVER_REJECTIONS,
            ("record_id",),
            "A bronze rollout that could not be used (missing field, bad reward, unknown prompt).",
        ),
        TableSpec(
            TableName.LINEAGE_PACK_KEYS,
            LINEAGE_PACK_KEYS,
            ("pack_key",),
            "What made each packing of gold.sft_packed, and which gold.sft snapshot it packed.",
        ),
        TableSpec(
            TableName.EVAL_HUMANEVAL,
            EVAL_HUMANEVAL,
            ("item_id",),
            "HumanEval problems; also a decontamination reference.",
            {DECONTAM_COLUMNS_PROPERTY: "prompt,canonical_solution"},
        ),
        TableSpec(
            TableName.LINEAGE_CORPUS_VERSIONS,
            CORPUS_VERSIONS,
            ("event_key",),
            "One corpus version event (create or rollback); readers resolve versions here.",
        ),
        TableSpec(
            TableName.BRONZE_OUTCOMES,
            BRONZE_OUTCOMES,
            ("outcome_id",),
            "A signal about a record (reward, preference, test result, feedback, text) that "
            "arrived after it; append-only.",
        ),
        TableSpec(
            TableName.SILVER_LABELED,
            SILVER_LABELED,
            ("record_id",),
            "A conversation joined to its outcomes: the latest per kind and the full history, "
            "cut under the late-arrival policy.",
        ),
        TableSpec(
            TableName.LINEAGE_FILTERED_SNAPSHOTS,
            LINEAGE_FILTERED_SNAPSHOTS,
            ("name",),
            "A filtered snapshot frozen as a named table: source, snapshot id, filter, cut-off.",
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
            TableName.LINEAGE_ERASURES,
            ERASURES,
            ("erasure_id", "table_name", "ref"),
            "One ref of one table rewritten by `posttrain forget`.",
        ),
        TableSpec(
            TableName.LINEAGE_VIBE_CHECKS,
            VIBE_CHECKS,
            ("vibe_id",),
            "A prompt typed or picked in the viewer and a checkpoint's answer to it.",
        ),
        TableSpec(
            TableName.LINEAGE_ROW_NOTES,
            ROW_NOTES,
            ("note_id",),
            "A curator's flag or comment on one row, made on a review branch in the viewer.",
        ),
        TableSpec(
            TableName.LINEAGE_EXPERIMENTS,
            EXPERIMENTS,
            ("experiment_id",),
            "One experiment launch: its frozen manifest (config, snapshot ids, code and "
            "package versions), written before any compute.",
        ),
        TableSpec(
            TableName.LINEAGE_CHECKPOINTS,
            CHECKPOINTS,
            ("checkpoint_id",),
            "A trained checkpoint, with the experiment and manifest it came from.",
        ),
        TableSpec(
            TableName.EVAL_MATH_HELDOUT,
            EVAL_MATH_HELDOUT,
            ("item_id",),
            "Held-out math-tutor problems scored by exact match; also a decontamination reference.",
            {DECONTAM_COLUMNS_PROPERTY: "question,solution"},
        ),
        TableSpec(
            TableName.EVAL_RESULTS,
            EVAL_RESULTS,
            ("run_id", "item"),
            "One scored item of one eval run: output, score, latency or error, with the "
            "model, experiment and corpus version it was run for.",
        ),
    ]
}
