"""Detectors of secrets and personal data in text, tuned for precision on code and math.

Each detector finds :class:`Span` values of one :class:`RedactionKind`. Credentials are
recognised by the fixed shape their issuer gives them (a prefix and a length), never by
entropy alone, so hex hashes, UUIDs and base64 blobs in code are left alone. Phone numbers
are confirmed by Google's libphonenumber (the ``phonenumbers`` package) against real
numbering plans, after a structural pre-filter that only lets through phone-shaped text:

* international: ``+`` and a country code (``+44 20 7946 0958``, ``+14155552671``);
* North American: ``(415) 555-2671``, ``415-555-2671``, ``415.555.2671``, ``1-800-…``;
* national with a trunk ``0``: ``020 7946 0958``, ``01 23 45 67 89``, ``(030) 1234567``.

National formats need separators, so bare digit runs (ids, timestamps, long integers) are
never phones; dates, dotted IPs and versions are excluded by shape, and a candidate glued
to letters, digits or operators (``x+14155552671``, ``v1.415.555.2671``) is not one.

Every detector lets a match start right after a JSON/C string escape (``\\n``, ``\\t``,
``\\r``), so text inside tool-call arguments is treated like plain text.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

import phonenumbers


class RedactionKind(StrEnum):
    """What was redacted; the value is the key in ``silver.conversations.redactions``."""

    EMAIL = "email"
    PHONE = "phone"
    API_KEY = "api_key"  # a provider-issued credential: OpenAI, Anthropic, GitHub, AWS, ...
    TOKEN = "token"  # a bearer credential of any shape: JWTs, ``Authorization: Bearer`` values
    PRIVATE_KEY = "private_key"  # a PEM private key block


class Span(NamedTuple):
    """``text[start:end]`` is a secret of ``kind``."""

    start: int
    end: int
    kind: RedactionKind


def _start(excluded: str) -> str:
    """A match may not start after any of ``excluded``, except after an escape like ``\\n``."""
    return rf"(?:(?<![{excluded}\\])|(?<=\\[nrt]))"


_WORD_START = _start("A-Za-z0-9_")
_TOKEN_START = _start(r"A-Za-z0-9_\-")
_TOKEN_END = r"(?![A-Za-z0-9_\-])"


class Detector(ABC):
    """Finds the secrets of one kind in a text."""

    kind: RedactionKind

    @property
    @abstractmethod
    def gate(self) -> str:
        """An RE2 pattern found in every text where :meth:`find` finds something.

        Arrow evaluates it over whole columns in C++, so only the few texts that pass are
        handed to Python.
        """

    @abstractmethod
    def find(self, text: str) -> Iterator[Span]:
        """Every match in ``text``, in order."""


def looks_generated(secret: str) -> bool:
    """True for machine-generated strings: digits, upper- and lower-case letters all occur.

    Keeps kebab-case identifiers and CSS classes (``sk-estimator-toggle-2``) apart from keys;
    a random base64url string of 32 characters lacks a digit with probability 0.4%.
    """
    return (
        any(c.isdigit() for c in secret)
        and any(c.isupper() for c in secret)
        and any(c.islower() for c in secret)
    )


def _mixed_case(secret: str) -> bool:
    return any(c.isupper() for c in secret) and any(c.islower() for c in secret)


def _has_digit_and_letter(secret: str) -> bool:
    return any(c.isdigit() for c in secret) and any(c.isalpha() for c in secret)


@dataclass(frozen=True)
class RegexDetector(Detector):
    """A compiled pattern, tried only when one of ``triggers`` occurs in the text.

    ``group`` selects the secret inside the match (``Bearer <token>`` keeps ``Bearer``);
    ``accept`` is a module-level predicate on the secret, for what a regex says badly.
    """

    kind: RedactionKind
    pattern: re.Pattern[str]
    triggers: tuple[str, ...]
    group: int = 0
    accept: Callable[[str], bool] | None = None

    @property
    def gate(self) -> str:
        return "|".join(re.escape(trigger) for trigger in self.triggers)

    def find(self, text: str) -> Iterator[Span]:
        if not any(trigger in text for trigger in self.triggers):
            return
        for match in self.pattern.finditer(text):
            if self.accept is None or self.accept(match.group(self.group)):
                yield Span(match.start(self.group), match.end(self.group), self.kind)


def _key(
    pattern: str, triggers: tuple[str, ...], accept: Callable[[str], bool] | None = None
) -> RegexDetector:
    compiled = re.compile(_TOKEN_START + pattern + _TOKEN_END)
    return RegexDetector(RedactionKind.API_KEY, compiled, triggers, accept=accept)


_PEM_BEGIN = r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----"
_PEM_END = r"-----END[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----"
# A truncated block (no END line) runs on while base64 lines follow.
_PEM_TRUNCATED_BODY = r"(?:(?:\s|\\[nr])*[A-Za-z0-9+/=]{16,})*"

SECRET_DETECTORS: tuple[RegexDetector, ...] = (
    RegexDetector(
        RedactionKind.PRIVATE_KEY,
        re.compile(
            rf"{_PEM_BEGIN}(?:(?:(?!-----BEGIN ).)*?{_PEM_END}|{_PEM_TRUNCATED_BODY})", re.DOTALL
        ),
        ("PRIVATE KEY",),
    ),
    RegexDetector(  # header.payload.signature, both JSON parts base64url of '{"...'
        RedactionKind.TOKEN,
        re.compile(
            _start(r"A-Za-z0-9_\-.") + r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}"
            r"\.[A-Za-z0-9_-]{16,}(?![A-Za-z0-9_\-.])"
        ),
        ("eyJ",),
    ),
    # OpenAI (sk-, sk-proj-, sk-svcacct-, sk-admin-), Anthropic (sk-ant-api03-…) and others.
    _key(r"sk-[A-Za-z0-9_-]{32,}", ("sk-",), looks_generated),
    # GitHub classic (ghp_ personal, gho_ OAuth, ghu_/ghs_ app, ghr_ refresh) and fine-grained.
    _key(r"gh[pousr]_[A-Za-z0-9]{36,255}", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_")),
    _key(r"github_pat_[A-Za-z0-9_]{40,255}", ("github_pat_",)),
    # AWS access key ids: long-term (AKIA), temporary (ASIA), and two service prefixes.
    _key(r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}", ("AKIA", "ASIA", "ABIA", "ACCA")),
    _key(r"hf_[A-Za-z0-9]{30,}", ("hf_",), _mixed_case),  # Hugging Face
    _key(r"xox[abposr]-[A-Za-z0-9-]{10,}", ("xox",), _has_digit_and_letter),  # Slack
    _key(r"AIza[0-9A-Za-z_-]{35}", ("AIza",)),  # Google API keys
    _key(r"[rs]k_(?:live|test)_[A-Za-z0-9]{20,}", ("k_live_", "k_test_")),  # Stripe secret
    RegexDetector(  # an AWS secret access key only has a shape next to its name
        RedactionKind.API_KEY,
        re.compile(
            r"(?i:aws_?secret_?access_?key)[\"']?\s*[:=]\s*[\"']?"
            r"([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"
        ),
        ("ecret", "ECRET"),
        group=1,
        accept=_has_digit_and_letter,
    ),
    RegexDetector(  # RFC 6750 token68; placeholders like YOUR_TOKEN have no digit
        RedactionKind.TOKEN,
        re.compile(
            _WORD_START + r"(?i:bearer)[ \t]+([A-Za-z0-9._~+/-]{16,}=*)"
            r"(?![A-Za-z0-9._~+/=-])"
        ),
        ("earer", "EARER"),
        group=1,
        accept=_has_digit_and_letter,
    ),
)

# Generic TLDs common in real addresses; any two-letter TLD is a country code. Without
# this list, compact matrix code such as ``y = x@self.weight`` would read as an address.
_GENERIC_TLDS = frozenset(
    {
        "com",
        "org",
        "net",
        "edu",
        "gov",
        "mil",
        "int",
        "info",
        "biz",
        "name",
        "pro",
        "mobi",
        "io",
        "ai",
        "co",
        "dev",
        "app",
        "tech",
        "online",
        "site",
        "xyz",
        "me",
        "tv",
        "cc",
        "email",
        "mail",
        "cloud",
        "store",
        "shop",
        "blog",
        "live",
        "life",
        "world",
        "today",
        "news",
        "page",
        "digital",
        "space",
        "website",
        "network",
        "systems",
        "solutions",
        "agency",
        "company",
        "group",
        "studio",
        "design",
        "media",
        "academy",
        "center",
        "club",
        "family",
        "finance",
        "global",
        "guru",
        "health",
        "law",
        "legal",
        "ltd",
        "marketing",
        "money",
        "one",
        "plus",
        "social",
        "team",
        "top",
        "work",
        "works",
        "zone",
        "berlin",
        "london",
        "nyc",
        "paris",
        "tokyo",
        "asia",
        "eu",
        "museum",
        "coop",
        "aero",
        "jobs",
        "travel",
        "icu",
        "vip",
        "fun",
        "art",
        "inc",
        "llc",
    }
)
# RFC 2606 / RFC 6761 names: never anyone's address, and everywhere in code samples.
_RESERVED_DOMAIN = re.compile(
    r"(?:^|\.)(?:example\.(?:com|net|org)|example|test|invalid|localhost)$", re.IGNORECASE
)
_EMAIL = re.compile(
    _start(r"A-Za-z0-9._%+\-")
    + r"[A-Za-z0-9._%+-]{1,64}@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,24})(?![A-Za-z0-9_(\[-])"  # not a call: ``x@w.to(device)``
    r"(?!:[^\s])"  # not scp-style ``git@host:path``
)


@dataclass(frozen=True)
class EmailDetector(Detector):
    """E-mail addresses with a real-looking TLD; reserved example domains optionally kept."""

    keep_reserved_domains: bool = True
    kind: RedactionKind = RedactionKind.EMAIL

    @property
    def gate(self) -> str:
        return "@"

    def find(self, text: str) -> Iterator[Span]:
        if "@" not in text:
            return
        for match in _EMAIL.finditer(text):
            domain = match.group(1)
            tld = domain.rsplit(".", 1)[1]
            if not (tld.islower() or tld.isupper()):  # ``A@B.mT`` is a matrix product
                continue
            if len(tld) != 2 and tld.lower() not in _GENERIC_TLDS:
                continue
            if self.keep_reserved_domains and _RESERVED_DOMAIN.search(domain):
                continue
            yield Span(match.start(), match.end(), self.kind)


# Not glued to a word, an operator or another number; not an operand of arithmetic.
_PHONE_START = _start(r"A-Za-z0-9_+.\-/:@") + r"(?<!\d[ .\-/])(?<![+*^×÷=] )"
_PHONE_END = r"(?![A-Za-z0-9_@/]|[ .\-/:]\d| ?[+*/^×÷=])"
_INTERNATIONAL = r"\+[1-9]\d{0,2}(?:[ .\-]?(?:\(\d{1,4}\)|\d{1,6})){1,6}"
_NANP = r"(?:1[ .\-])?(?:\(\d{3}\)[ .\-]?|\d{3}[ .\-])\d{3}[ .\-]\d{4}"
_TRUNK_AREA = r"(?:\(0[1-9]\d{0,3}\) ?|0[1-9]\d{0,3}[ .\-])"
_TRUNK = _TRUNK_AREA + r"\d{2,8}(?:[ .\-]\d{2,8}){0,3}"
_PHONE_CANDIDATE = re.compile(
    _PHONE_START
    + rf"(?:(?P<intl>{_INTERNATIONAL})|(?P<nanp>{_NANP})|(?P<trunk>{_TRUNK}))"
    + _PHONE_END,
    re.ASCII,  # the RE2 gate's \d is ASCII too; other scripts' digits are never phones here
)
_MIN_PHONE_DIGITS, _MAX_PHONE_DIGITS = 8, 15
# The candidate without lookarounds (RE2 has none): a start the lookbehind allows, then a
# shape. A trunk number with one group after the area code has 8+ digits, so that group
# has 3+ (this keeps dates like 2024-03-20 out of the gate).
_PHONE_GATE = (
    r"(?:^|[^A-Za-z0-9_+.\-/:@\\]|\\[nrt])"
    rf"(?:{_INTERNATIONAL}|{_NANP}|{_TRUNK_AREA}(?:\d{{3,8}}|\d{{2,8}}[ .\-]\d{{2}}))"
)
_IP_OR_DATE = re.compile(
    r"\d{1,3}(?:\.\d{1,3}){3}|\d{1,2}[./\-]\d{1,2}[./\-]\d{2,4}|\d{4}[./\-]\d{1,2}[./\-]\d{1,2}"
)


def _digit_count(text: str) -> int:
    return sum(c.isdigit() for c in text)


@dataclass(frozen=True)
class PhoneDetector(Detector):
    """Phone numbers valid in libphonenumber's numbering plans.

    International numbers are accepted from any country. National formats are tried
    against ``regions``: North American shapes for the regions of country code 1, trunk-0
    shapes for regions whose national prefix is ``0``; a region without a trunk prefix
    (Italy, Spain) is only recognised in international format.
    """

    regions: tuple[str, ...]
    kind: RedactionKind = RedactionKind.PHONE
    _nanp_regions: tuple[str, ...] = field(init=False, repr=False)
    _trunk_regions: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        nanp, trunk = [], []
        for region in self.regions:
            metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
            if metadata is None:
                continue
            if metadata.country_code == 1:
                nanp.append(region)
            elif metadata.national_prefix == "0":
                trunk.append(region)
        object.__setattr__(self, "_nanp_regions", tuple(nanp))
        object.__setattr__(self, "_trunk_regions", tuple(trunk))

    @property
    def gate(self) -> str:
        return _PHONE_GATE

    def _is_valid(self, candidate: str, regions: tuple[str | None, ...]) -> bool:
        for region in regions:
            try:
                number = phonenumbers.parse(candidate, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(number):
                return True
        return False

    def _regions_for(self, match: re.Match[str]) -> tuple[str | None, ...]:
        if match.group("intl"):
            return (None,)
        return self._nanp_regions if match.group("nanp") else self._trunk_regions

    def find(self, text: str) -> Iterator[Span]:
        for match in _PHONE_CANDIDATE.finditer(text):
            candidate = match.group()
            digits = _digit_count(candidate)
            if not _MIN_PHONE_DIGITS <= digits <= _MAX_PHONE_DIGITS:
                continue
            if _IP_OR_DATE.fullmatch(candidate):
                continue
            if self._is_valid(candidate, self._regions_for(match)):
                yield Span(match.start(), match.end(), self.kind)
