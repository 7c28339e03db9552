"""Secret and PII redaction: positives per kind, negatives on code/math, counts, the step.

Fake credentials are assembled from pieces so that no complete key-shaped literal sits in
the repository for secret scanners to flag.
"""

from __future__ import annotations

import json
import pickle

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pydantic import ValidationError

from posttrain.platform.errors import InputFormatError
from posttrain.platform.messages import Message, ToolCall, make_message
from posttrain.platform.schemas import MESSAGES_TYPE, REDACTION_COUNTS_TYPE
from posttrain.platform.silver.detectors import RedactionKind, looks_generated
from posttrain.platform.silver.redact import RedactionConfig, Redactor, RedactStep

RANDOM = "Q8fJ2kLm9NpR4sT7vWx1Yz3Ab5Cd7Ef9Gh1Ij3Kl5Mn7Op9Rs2Tu4Vw6Xy8Za0"
JWT = ".".join(
    [
        "eyJ" + "hbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
        "eyJ" + "zdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0",
        "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    ]
)
PEM_BODY = "MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM2\nGqJ8k2vX7ZbXo9eS0f1jYt3nQ4W8y\n"

POSITIVES: list[tuple[str, RedactionKind, str]] = [
    # (text, kind, the secret inside it)
    (
        "write to maria.gonzalez84@gmail.com today",
        RedactionKind.EMAIL,
        "maria.gonzalez84@gmail.com",
    ),
    (
        "cc: j.doe+lists@mail.uni-heidelberg.de.",
        RedactionKind.EMAIL,
        "j.doe+lists@mail.uni-heidelberg.de",
    ),
    ("<a href='mailto:sales@acme.co.uk'>", RedactionKind.EMAIL, "sales@acme.co.uk"),
    ("call +1 415-555-2671 now", RedactionKind.PHONE, "+1 415-555-2671"),
    ("E.164: +14155552671.", RedactionKind.PHONE, "+14155552671"),
    ("London office +44 (0)20 7946 0958", RedactionKind.PHONE, "+44 (0)20 7946 0958"),
    ("Paris +33 6 12 34 56 78", RedactionKind.PHONE, "+33 6 12 34 56 78"),
    ("Mumbai +91 98765 43210", RedactionKind.PHONE, "+91 98765 43210"),
    ("US: (415) 555-2671", RedactionKind.PHONE, "(415) 555-2671"),
    ("US: 415.555.2671", RedactionKind.PHONE, "415.555.2671"),
    ("toll free 1-800-555-0199", RedactionKind.PHONE, "1-800-555-0199"),
    ("UK: 020 7946 0958", RedactionKind.PHONE, "020 7946 0958"),
    ("FR: 01 23 45 67 89", RedactionKind.PHONE, "01 23 45 67 89"),
    ("DE: (030) 1234567", RedactionKind.PHONE, "(030) 1234567"),
    ("AU mobile 0412 345 678", RedactionKind.PHONE, "0412 345 678"),
    ("OPENAI_API_KEY=sk-" + RANDOM[:48], RedactionKind.API_KEY, "sk-" + RANDOM[:48]),
    (
        "key: sk-proj-" + RANDOM + "-x_" + RANDOM,
        RedactionKind.API_KEY,
        "sk-proj-" + RANDOM + "-x_" + RANDOM,
    ),
    (
        "ANTHROPIC_API_KEY='sk-ant-api03-" + RANDOM + "_AA'",
        RedactionKind.API_KEY,
        "sk-ant-api03-" + RANDOM + "_AA",
    ),
    ("token ghp_" + RANDOM[:36], RedactionKind.API_KEY, "ghp_" + RANDOM[:36]),
    ("oauth gho_" + RANDOM[:36], RedactionKind.API_KEY, "gho_" + RANDOM[:36]),
    (
        "pat github_pat_11ABCDEFG0" + RANDOM[:48],
        RedactionKind.API_KEY,
        "github_pat_11ABCDEFG0" + RANDOM[:48],
    ),
    (
        "aws_access_key_id = AKIA" + "IOSFODNN7EXAMPLE",
        RedactionKind.API_KEY,
        "AKIA" + "IOSFODNN7EXAMPLE",
    ),
    (
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY",
        RedactionKind.API_KEY,
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY",
    ),
    (
        "HF_TOKEN=hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh",
        RedactionKind.API_KEY,
        "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh",
    ),
    (
        "SLACK=xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        RedactionKind.API_KEY,
        "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    ),
    (
        "key=AIza" + "SyA1B2C3D4E5F6G7H8I9J0K1L2M3N4O5P6Q&q=x",
        RedactionKind.API_KEY,
        "AIza" + "SyA1B2C3D4E5F6G7H8I9J0K1L2M3N4O5P6Q",
    ),
    (
        "stripe.api_key = 'sk_" + "live_4eC39HqLyjWDarjtT1zdp7dc'",
        RedactionKind.API_KEY,
        "sk_" + "live_4eC39HqLyjWDarjtT1zdp7dc",
    ),
    ("cookie session=" + JWT + ";", RedactionKind.TOKEN, JWT),
    (
        "Authorization: Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0",
        RedactionKind.TOKEN,
        "9f8e7d6c5b4a39281706f5e4d3c2b1a0",
    ),
    (
        "-----BEGIN RSA PRIVATE KEY-----\n" + PEM_BODY + "-----END RSA PRIVATE KEY-----\nok",
        RedactionKind.PRIVATE_KEY,
        "-----BEGIN RSA PRIVATE KEY-----\n" + PEM_BODY + "-----END RSA PRIVATE KEY-----",
    ),
    (
        "-----BEGIN OPENSSH PRIVATE KEY-----\n" + PEM_BODY + "and then the paste was cut",
        RedactionKind.PRIVATE_KEY,
        "-----BEGIN OPENSSH PRIVATE KEY-----\n" + PEM_BODY.rstrip(),
    ),
]


@pytest.mark.parametrize(("text", "kind", "secret"), POSITIVES, ids=[p[2][:24] for p in POSITIVES])
def test_redacts_each_kind(text: str, kind: RedactionKind, secret: str) -> None:
    redacted, counts = Redactor().redact(text)
    assert redacted == text.replace(secret, f"<{kind.value.upper()}>")
    assert counts == {kind.value: 1}


NEGATIVES = [
    # numbers in code
    "x = 4155552671 * 3",
    "user_id = 12345678901234567890",
    "int('0755', 8); chmod 0755 run.sh",
    "addr = 0x7fff5fbff8c8",
    "arr = [415, 555, 2671]",
    "for i in range(1000000): total += i",
    "Order 0123 4567 8901 2345 6789",
    "card 4111 1111 1111 1111",
    "ssn-like 123-45-6789",
    # dates, times, versions, addresses
    "released 2023-10-15",
    "on 15.01.2024",
    "on 01/02/2023 at 12:30:45",
    "at 2024-01-05T10:20:30Z",
    "numpy 1.26.4, python 3.11.7, build 10.0.19041.1234",
    "ping 192.168.001.010 or 10.0.0.1",
    "tag v1.415.555.2671",
    "valid_date('03-11-2000') => True",
    "Copyright (C) 2001-2019",
    "ISBN 978-0-306-40615-7",
    # identifiers and hashes
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "commit 4155552671a3f9e8d7c6b5a4",
    "<div class='sk-estimator-toggleable-container-12'>",
    "from huggingface_hub import hf_hub_download",
    "AKIA is the prefix of an AWS key id",
    # math
    "2 + 3 = 5",
    "1 + 415 555 2671",
    "f(x) = 3x^2 + 2x - 1",
    "0 1 2 3 4 5 6 7 8 9",
    "pi = 3.14159265358979",
    "1,234,567.89",
    "the speed of light is 299 792 458 m/s",
    "Fibonacci: 1 1 2 3 5 8 13 21 34 55 89 144",
    "00 11 22 33 44 55 66",
    "x = 1e-10 and y = 7.89E+77",
    "months 01 02 03 04 05 06 07",
    # at-signs that are not addresses
    "y = x@self.weight",
    "z = A@B.mT",
    "h = x@w.to(device)",
    "@property\ndef name(self):",
    "git clone git@github.com:user/repo.git",
    "npm i @scope/pkg@1.2.3",
    "FROM python@sha256:abcdef",
    "send it to user@example.com or dev@localhost",
    # placeholders that look like credentials
    "Authorization: Bearer YOUR_ACCESS_TOKEN_HERE",
    "Bearer $TOKEN",
    "Bearer <token>",
    "the bearer of bad news",
    "api_key = os.environ['OPENAI_API_KEY']",
    "sk-...",
    "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n"
    "-----END PUBLIC KEY-----",
    # fictional or too short phone numbers
    "(555) 123-4567",
    "phone: 555-0100",
    "x+14155552671",
]


@pytest.mark.parametrize("text", NEGATIVES)
def test_leaves_code_math_and_identifiers_alone(text: str) -> None:
    assert Redactor().redact(text) == (text, {})


def test_counts_per_kind_over_a_text() -> None:
    text = (
        "a@corp.io, b@corp.io, +1 415-555-2671, Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0, "
        "ghp_" + RANDOM[:36]
    )
    redacted, counts = Redactor().redact(text)
    assert counts == {"email": 2, "phone": 1, "api_key": 1, "token": 1}
    assert redacted == "<EMAIL>, <EMAIL>, <PHONE>, Bearer <TOKEN>, <API_KEY>"


def test_a_phone_after_a_slash_separated_contact_is_redacted() -> None:
    redacted, counts = Redactor().redact("Contact: ana@contoso.com / +33 1 55 78 98 79")
    assert (redacted, counts) == ("Contact: <EMAIL> / <PHONE>", {"email": 1, "phone": 1})


def test_key_inside_a_bearer_header_is_counted_once_as_api_key() -> None:
    redacted, counts = Redactor().redact("Authorization: Bearer sk-proj-" + RANDOM)
    assert (redacted, counts) == ("Authorization: Bearer <API_KEY>", {"api_key": 1})


def test_redacted_text_is_left_unchanged_by_a_second_pass() -> None:
    redactor = Redactor()
    once, _ = redactor.redact(" ".join(text for text, _, _ in POSITIVES))
    assert redactor.redact(once) == (once, {})


def test_a_match_may_start_after_a_json_escape() -> None:
    text = '"note": "line one\\nmaria@corp.io\\n+1 415-555-2671"'
    assert Redactor().redact(text)[0] == '"note": "line one\\n<EMAIL>\\n<PHONE>"'


def test_looks_generated_separates_keys_from_kebab_case() -> None:
    assert looks_generated(RANDOM)
    assert not looks_generated("estimator-toggleable-container-12")


# --- RedactionConfig -----------------------------------------------------------------------


def test_only_enabled_kinds_are_redacted() -> None:
    redactor = Redactor(RedactionConfig(kinds=(RedactionKind.EMAIL,)))
    assert redactor.redact("bob@corp.io +1 415-555-2671") == (
        "<EMAIL> +1 415-555-2671",
        {"email": 1},
    )


def test_placeholder_format_is_configurable() -> None:
    redactor = Redactor(RedactionConfig(placeholder="[redacted {kind}]"))
    assert redactor.redact("bob@corp.io")[0] == "[redacted email]"


@pytest.mark.parametrize(
    ("placeholder", "message"),
    [
        ("<{name}>", "only {kind} and {KIND}"),
        ("{kind}@mask.com", "redacted as email"),
        ("", "it is empty"),
    ],
)
def test_unusable_placeholders_are_refused(placeholder: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RedactionConfig(placeholder=placeholder)


def test_unknown_phone_regions_are_refused() -> None:
    with pytest.raises(ValidationError, match="unknown phone regions"):
        RedactionConfig(phone_regions=("US", "XX"))


def test_national_formats_follow_the_configured_regions() -> None:
    text = "FR: 01 23 45 67 89"
    assert Redactor(RedactionConfig(phone_regions=("US",))).redact(text) == (text, {})
    assert Redactor(RedactionConfig(phone_regions=("FR",))).redact(text)[1] == {"phone": 1}


def test_reserved_email_domains_can_be_redacted_too() -> None:
    redactor = Redactor(RedactionConfig(keep_reserved_email_domains=False))
    assert redactor.redact("user@example.com")[0] == "<EMAIL>"


# --- the RE2 gate --------------------------------------------------------------------------


def test_gate_matches_every_text_with_a_secret() -> None:
    texts = [text for text, _, _ in POSITIVES] + ['{"k": "x\\nbob@corp.io"}']
    hits = pc.match_substring_regex(pa.array(texts), Redactor().gate).to_pylist()
    assert all(hits)


def test_gate_skips_most_code_and_math() -> None:
    hits = pc.match_substring_regex(pa.array(NEGATIVES), Redactor().gate).to_pylist()
    assert sum(hits) < len(NEGATIVES) / 2


# --- RedactStep ----------------------------------------------------------------------------


def _call(arguments: str) -> ToolCall:
    return ToolCall(id="c1", type="function", function={"name": "send", "arguments": arguments})


SECRET_CHAT: list[Message] = [
    make_message("system", "You are an agent."),
    make_message("user", "Mail maria@corp.io and call +44 20 7946 0958, key ghp_" + RANDOM[:36]),
    make_message(
        "assistant",
        "",
        tool_calls=[
            _call(
                json.dumps(
                    {
                        "to": "maria@corp.io",
                        "body": "Token:\nBearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0",
                    }
                )
            )
        ],
    ),
    make_message("tool", '{"status": "sent"}', tool_call_id="c1"),
    make_message("assistant", "Done."),
]
CLEAN_CHAT: list[Message] = [
    make_message("user", "What is 415 * 555?"),
    make_message("assistant", "415 * 555 = 230325, since 2024-01-05."),
]


def _batch(rows: int = 3) -> pa.Table:
    chats = [SECRET_CHAT if i % 3 == 1 else CLEAN_CHAT for i in range(rows)]
    return pa.table(
        {
            "record_id": [f"r{i}" for i in range(rows)],
            "messages": pa.array(chats, type=MESSAGES_TYPE),
            "source": ["unit"] * rows,
        }
    )


def test_step_redacts_contents_and_tool_call_arguments() -> None:
    out = RedactStep().redact(_batch())
    secret = out["messages"][1].as_py()
    assert secret[1]["content"] == "Mail <EMAIL> and call <PHONE>, key <API_KEY>"
    arguments = json.loads(secret[2]["tool_calls"][0]["function"]["arguments"])
    assert arguments == {"to": "<EMAIL>", "body": "Token:\nBearer <TOKEN>"}
    assert secret[2]["tool_calls"][0]["id"] == "c1" and secret[3]["tool_call_id"] == "c1"


def test_step_counts_redactions_per_record() -> None:
    out = RedactStep().redact(_batch())
    assert out.schema.field("redactions").type == REDACTION_COUNTS_TYPE
    assert out["redactions"].to_pylist() == [
        [],
        [("email", 2), ("phone", 1), ("api_key", 1), ("token", 1)],
        [],
    ]


def test_step_keeps_rows_order_and_other_columns() -> None:
    batch = _batch(7)
    out = RedactStep().redact(batch)
    assert out.num_rows == batch.num_rows
    assert out.select(["record_id", "source"]) == batch.select(["record_id", "source"])
    assert out.column_names == [*batch.column_names, "redactions"]
    assert out["messages"][0] == batch["messages"][0]  # clean rows untouched


def test_step_returns_a_record_batch_for_a_record_batch() -> None:
    out = RedactStep().redact(_batch().to_batches()[0])
    assert isinstance(out, pa.RecordBatch)
    assert out["redactions"].to_pylist()[1] != []


def test_step_handles_sliced_batches() -> None:
    step = RedactStep()
    table = _batch(10)
    whole = step.redact(table)
    parts = [step.redact(batch) for batch in table.to_batches(max_chunksize=4)]
    assert pa.Table.from_batches(parts) == whole.combine_chunks()


def test_step_adds_to_existing_counts_and_a_second_run_changes_nothing() -> None:
    step = RedactStep()
    once = step.redact(_batch())
    twice = step.redact(once)
    assert twice["messages"] == once["messages"]
    assert twice["redactions"] == once["redactions"]


def test_step_passes_rows_without_messages_through() -> None:
    batch = pa.table(
        {"record_id": ["a", "b"], "messages": pa.array([None, SECRET_CHAT], type=MESSAGES_TYPE)}
    )
    out = RedactStep().redact(batch)
    assert out["messages"][0].as_py() is None
    assert out["redactions"].to_pylist()[0] == []


def test_step_with_no_kinds_enabled_only_adds_empty_counts() -> None:
    out = RedactStep(RedactionConfig(kinds=())).redact(_batch())
    assert out["messages"] == _batch()["messages"]
    assert out["redactions"].to_pylist() == [[], [], []]


def test_step_is_picklable() -> None:
    step = pickle.loads(pickle.dumps(RedactStep(RedactionConfig(phone_regions=("FR",)))))
    assert step.redact(_batch())["redactions"].to_pylist()[1] == [
        ("email", 2),
        ("phone", 1),
        ("api_key", 1),
        ("token", 1),
    ]


def test_as_a_stage_it_keeps_every_row_and_counts_redactions_per_kind() -> None:
    result = RedactStep(RedactionConfig(phone_regions=("FR",)))(_batch())
    assert result.kept == RedactStep(RedactionConfig(phone_regions=("FR",))).redact(_batch())
    assert result.rejected.num_rows == 0
    assert result.counters == {
        "redactions.api_key": 1,
        "redactions.email": 2,
        "redactions.phone": 1,
        "redactions.token": 1,
    }


def test_step_refuses_a_batch_without_messages() -> None:
    with pytest.raises(InputFormatError, match="'messages' column"):
        RedactStep().redact(pa.table({"record_id": ["a"]}))


@pytest.mark.slow
def test_step_gives_the_same_batches_on_ray(ray_runtime: None) -> None:
    from posttrain.platform.execution import InProcessExecutor, RayExecutor, iter_batches

    table, step = _batch(12), RedactStep()
    local = list(InProcessExecutor().map_batches(step, iter_batches(table, 5), stage="redact"))
    remote = list(RayExecutor().map_batches(step, iter_batches(table, 5), stage="redact"))
    assert remote == local
