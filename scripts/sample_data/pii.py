"""Fake personal data and credentials for the redaction stage to find.

Every value has the shape of the real thing (provider prefixes and lengths) and is drawn
from the seeded generator, so none is a working credential.
"""

from __future__ import annotations

import random
import re
import string

FIRST_NAMES = [
    "maria",
    "james",
    "aisha",
    "wei",
    "lucas",
    "sofia",
    "omar",
    "priya",
    "noah",
    "elena",
    "kenji",
    "fatima",
    "liam",
    "chloe",
    "diego",
    "hannah",
    "ivan",
    "zara",
    "tomas",
    "mei",
]
LAST_NAMES = [
    "gonzalez",
    "smith",
    "khan",
    "zhang",
    "martin",
    "rossi",
    "haddad",
    "patel",
    "brown",
    "petrova",
    "tanaka",
    "diallo",
    "murphy",
    "dubois",
    "ramirez",
    "schmidt",
    "novak",
    "ali",
]
# Microsoft's fictitious documentation companies: real-looking, not RFC 2606 reserved (a
# redactor may rightly keep example.com addresses), and no one's personal mailbox.
EMAIL_DOMAINS = ["contoso.com", "fabrikam.com", "northwindtraders.com", "adventure-works.com"]
_ALNUM = string.ascii_letters + string.digits

# What silver's redaction stage is expected to catch; used here to keep the *unplanted*
# records clean, so every hit in the sample data is a planted one.
PATTERNS = {
    "email": re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"),
    "openai_key": re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9]{20,}"),
    "github_token": re.compile(r"\bghp_[A-Za-z0-9]{36}\b"),
    "aws_access_key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "hf_token": re.compile(r"\bhf_[A-Za-z]{30,}\b"),
    "phone": re.compile(r"(?:\+\d{1,3}[ .-]?)?\(?\d{2,4}\)?[ .-]\d{3,4}[ .-]\d{3,4}\b"),
}


def email(rng: random.Random) -> str:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    local = rng.choice(
        [f"{first}.{last}", f"{first[0]}{last}", f"{first}_{last}{rng.randint(1, 99)}"]
    )
    return f"{local}@{rng.choice(EMAIL_DOMAINS)}"


def phone(rng: random.Random) -> str:
    n = rng.randint
    return rng.choice(
        [
            f"+1 415 555 {n(100, 199):04d}",
            f"(212) 555-{n(100, 199):04d}",
            f"+44 20 7946 {n(0, 999):04d}",
            f"+49 30 {n(100, 999)} {n(1000, 9999)}",
            f"+33 1 {n(10, 99)} {n(10, 99)} {n(10, 99)} {n(10, 99)}",
        ]
    )


def _token(rng: random.Random, alphabet: str, length: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def openai_key(rng: random.Random) -> str:
    return rng.choice(["sk-", "sk-proj-"]) + _token(rng, _ALNUM, 48)


def github_token(rng: random.Random) -> str:
    return "ghp_" + _token(rng, _ALNUM, 36)


def aws_access_key(rng: random.Random) -> str:
    return "AKIA" + _token(rng, string.ascii_uppercase + string.digits, 16)


def aws_secret_key(rng: random.Random) -> str:
    return _token(rng, _ALNUM + "+/", 40)


def hf_token(rng: random.Random) -> str:
    return "hf_" + _token(rng, string.ascii_letters, 34)


SECRET_MAKERS = {
    "openai_key": openai_key,
    "github_token": github_token,
    "aws_access_key": aws_access_key,
    "hf_token": hf_token,
}


def found_pii(text: str) -> list[str]:
    """Kinds of personal data or credentials in ``text`` (used to keep base rows clean)."""
    return [kind for kind, pattern in PATTERNS.items() if pattern.search(text)]
