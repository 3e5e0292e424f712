"""One row of an import file: its cells parsed and checked, and the consent rule.

``Parser`` turns a record's cells into a ``Row`` (what the row asks, per newsletter) or raises
``RowError`` with the reason the report gives. Addresses go through ``EmailNormaliser``, which
gives ``addresses.normalise_email``'s results with the domains' validation cached.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter

from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES

from newsletter.audience.csv_mapping import ATTRIBUTE, MULTI, Mapping
from newsletter.audience.csv_reader import CONSENT, unneutralise
from newsletter.audience.subscribers import NAME_MAX, clean_name
from newsletter.exceptions import InvalidInput
from newsletter.models import SubscriptionStatus, utcnow
from newsletter.newsletters import language_tag, time_zone

CONSENT_YES = frozenset({"yes", "true", "1"})
CONSENT_NO = frozenset({"no", "false", "0"})
CONSENT_RULE = (
    "Consent: without a consent column the import itself is the record, as before: an active "
    "row gets consent_at from its cell or the import time and consent_source from its cell or "
    "'import'. With a consent column, each row's cell decides (case and spaces aside): "
    "yes/true/1 records consent (consent_at from its cell or the import time, consent_source "
    "from its cell or 'import') and the row's status stands; no/false/0 records none and never "
    "makes a subscription active (a row asking for active, or naming no status, becomes "
    "pending; pending, unsubscribed, bounced and complained rows stay so); an empty cell is no "
    "evidence of consent, so the same as no, with a warning if the row asked for active; any "
    "other value rejects the row."
)
MAX_LOCAL, MAX_ADDRESS = 64, 254  # RFC 5321 limits, as email-validator checks them
_ATEXT = r"a-zA-Z0-9_!#\$%&\'\*\+\-/=\?\^`\{\|\}~"  # email-validator's rfc_constants.ATEXT
_DOT_ATOM = re.compile(f"[{_ATEXT}]+(?:\\.[{_ATEXT}]+)*\\Z")
TAG_MAX = 64  # SubscriberTag.tag
# the one-column targets, in the order ``Parser.parse`` takes their cells
_PLAIN = (
    "email",
    "newsletters",
    "status",
    "opted_out",
    CONSENT,
    "consent_at",
    "consent_ip",
    "consent_source",
    "consent_text_version",
    "language",
    "time_zone",
)
SHORT_TEXT = 32  # consent_source and consent_text_version columns of SubscriberEvent
# the members themselves, looked up once: an enum class's attribute costs a lookup per row
ACTIVE, PENDING = SubscriptionStatus.active, SubscriptionStatus.pending
UNSUBSCRIBED = SubscriptionStatus.unsubscribed
_STATUS_NAMES = frozenset(SubscriptionStatus.__members__)


@dataclass(slots=True)
class Wanted:
    """What a row asks for one subscription."""

    status: str
    consent_at: datetime | None
    consent_ip: str | None
    consent_source: str
    consent_text_version: str | None


@dataclass(slots=True)
class Row:
    line: int
    email: str
    name: str
    wants: dict[int, Wanted]
    notes: list[str]  # warnings, reported only if the row is not rejected after all
    language: str | None = None
    time_zone: str | None = None
    tags: list[str] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)
    suppress: str | None = None  # the address goes on the suppression list, for this reason

    def forget_profile(self) -> None:
        """A later row of an address adds subscriptions and tags; its first row names it."""
        self.name, self.language, self.time_zone, self.attributes = "", None, None, {}


class RowError(Exception):
    """A row the import rejects; the message is the reason the report gives."""


class Parser:
    """Turns the cells of one record into a ``Row``; raises ``RowError`` with the reason."""

    def __init__(self, mapping: Mapping, newsletters: dict[str, int], default: list[int]) -> None:
        self.mapping = mapping
        self.width = len(mapping.fields)
        fields = list(enumerate(mapping.fields))
        # by kind, so that a row is one item getter and a few comprehensions
        self.names = [i for i, t in fields if t == "name"]
        self.tags = [i for i, t in fields if t == "tags"]
        self.attributes = [(i, t[len(ATTRIBUTE) :]) for i, t in fields if t.startswith(ATTRIBUTE)]
        # each one-column target's cell, "" (the padding after the last cell) for a missing one
        column = {t: i for i, t in fields if t not in MULTI and not t.startswith(ATTRIBUTE)}
        self._take = itemgetter(*(column.get(t, -1) for t in _PLAIN))
        self._padding = [""] * (self.width + 1)
        self.newsletters = newsletters
        self._refs: dict[str, list[int]] = {}  # a newsletters cell -> ids (few distinct cells)
        self.default = default
        self.consent_column = CONSENT in mapping.fields
        self.now = utcnow()
        self._emails = EmailNormaliser()
        self._checked: dict[tuple[str, str], str | None] = {}

    def parse(self, line: int, cells: list[str]) -> Row:
        width = len(cells)
        if width > self.width:
            raise RowError(f"{len(cells)} fields, but the header names {self.width}")
        joined = "\n".join(cells)  # a cell starting with an apostrophe: "\n'" or at [0]
        if joined[:1] == "'" or "\n'" in joined:
            cells = [_cell(c) for c in cells]
        # a short row's missing cells read as empty ones; the last "" is every missing column's
        padded = cells + self._padding[width:]
        (address, newsletters, status, opted_out, consent, consent_at, consent_ip, source,
         version, language, zone) = self._take(padded)  # fmt: skip
        email = self._email(address)
        notes: list[str] = []
        names = [padded[i] for i in self.names]
        raw_name = names[0] if len(names) == 1 else " ".join(n for n in names if n.strip())
        name = self._name(raw_name if raw_name.strip() else "", notes)
        wanted = self._wanted(
            status, opted_out, consent, consent_at, consent_ip, source, version, notes
        )
        ids = self._newsletters(newsletters)
        row = Row(
            line,
            email,
            name,
            {nid: wanted for nid in ids},
            notes,
            self._checked_value("language", language, notes) if language else None,
            self._checked_value("time_zone", zone, notes) if zone else None,
            list(dict.fromkeys(self._tag_list(padded))) if self.tags else [],
            self._attributes(padded) if self.attributes else {},
            self.mapping.suppress,
        )
        if self.mapping.format == "substack" and UNSUBSCRIBED in {
            w.status for w in row.wants.values()
        }:  # Substack's email_disabled: they left there
            row.suppress = "unsubscribed"
        return row

    def _tag_list(self, cells: list[str]) -> list[str]:
        return [tag for i in self.tags for tag in split_tags(cells[i])]

    def _attributes(self, cells: list[str]) -> dict[str, str]:
        return {key: clean_name(cells[i]) for i, key in self.attributes if cells[i].strip()}

    def _checked_value(self, column: str, raw: str, notes: list[str]) -> str | None:
        """A language tag or time zone, checked as the newsletters' are; a bad one is a warning
        and left out (an export's junk never costs a subscriber)."""
        text = raw.strip()
        if not text:
            return None
        key = (column, text)
        if key not in self._checked:
            check = language_tag if column == "language" else time_zone
            try:
                self._checked[key] = check(text)
            except InvalidInput:
                self._checked[key] = None
        value = self._checked[key]
        if value is None:
            notes.append(f"{column} {text[:40]!r} is not valid: left out")
        return value

    def _email(self, raw: str) -> str:
        address = raw.strip()
        if not address:
            raise RowError("no email address")
        try:
            return self._emails.normalise(address)
        except EmailNotValidError as exc:
            raise RowError(f"invalid email address {address!r}: {exc}") from exc

    def _name(self, raw: str, notes: list[str]) -> str:
        if raw.isprintable():  # the common case, without clean_name's walk over each character
            return " ".join(raw.split())[:NAME_MAX]
        name = clean_name(raw)
        if not all(ch.isprintable() for ch in raw.strip()):
            notes.append("name: line breaks and control characters replaced by spaces")
        elif len(name) < len(" ".join(raw.split())):
            notes.append(f"name: cut to {len(name)} characters")
        return name

    def _wanted(
        self,
        raw_status: str,
        opted_out: str,
        raw_consent: str,
        raw_at: str,
        raw_ip: str,
        raw_source: str,
        raw_version: str,
        notes: list[str],
    ) -> Wanted:
        status = self._status(raw_status, opted_out)
        consent = self._consent(raw_consent, status, raw_status, notes)
        consent_at = _when(raw_at) if raw_at else None
        consent_ip = _ip(raw_ip) if raw_ip else None
        source = (_short("consent_source", raw_source) if raw_source else None) or "import"
        version = _short("consent_text_version", raw_version) if raw_version else None
        if consent is False:  # no evidence of consent: never active, nothing recorded
            if status == ACTIVE:
                status = PENDING
            return Wanted(status, None, None, source, None)
        if consent is None and status != ACTIVE:
            return Wanted(status, consent_at, consent_ip, source, version)
        return Wanted(status, consent_at or self.now, consent_ip, source, version)

    def _status(self, raw: str, opted_out: str) -> str:
        if self.mapping.status is not None:  # the export says it for every row
            return self.mapping.status
        if opted_out.strip().lower() in CONSENT_YES:
            return UNSUBSCRIBED
        value = raw.strip().lower() or ACTIVE
        if value not in _STATUS_NAMES:
            choices = ", ".join(SubscriptionStatus)
            raise RowError(f"status {raw!r} is not one of {choices}")
        return value

    def _consent(self, raw: str, status: str, asked: str, notes: list[str]) -> bool | None:
        """The consent cell: True or False; None without a consent column (the import is the
        record). A row that would have been active but is not gets a warning, unless its cell
        plainly says no and its status cell does not say active."""
        if not self.consent_column:
            return None
        value = raw.strip().lower()
        if value in CONSENT_YES:
            return True
        if value and value not in CONSENT_NO:
            raise RowError(f"consent {raw!r} is not yes or no (nor true/false, 1/0)")
        asked = asked.strip().lower()
        if status != ACTIVE:
            return False
        if not value and asked in ("", ACTIVE):
            notes.append("consent is empty (no evidence of consent): pending, not active")
        elif value and asked == ACTIVE:
            notes.append(f"consent {raw.strip()!r}: pending, not active")
        return False

    def _newsletters(self, raw: str) -> list[int]:
        known = self._refs.get(raw)
        if known is not None:
            return known
        ids = self._newsletter_ids(raw)
        if len(self._refs) < 1000:
            self._refs[raw] = ids
        return ids

    def _newsletter_ids(self, raw: str) -> list[int]:
        refs = [r.strip() for r in raw.replace("|", ";").split(";") if r.strip()]
        if not refs:
            if not self.default:
                raise RowError("no newsletter: fill the newsletters column or give a default")
            return self.default
        unknown = [r for r in refs if r not in self.newsletters]
        if unknown:
            raise RowError(f"unknown newsletter {unknown[0]!r}")
        return list(dict.fromkeys(self.newsletters[r] for r in refs))


def _cell(cell: str) -> str:
    """``unneutralise`` without the call for the cells that need none (nearly all)."""
    return unneutralise(cell) if cell[:1] == "'" else cell


def split_tags(cell: str) -> list[str]:
    """Tags from one cell: separated by commas or semicolons, quotes around each dropped
    (Mailchimp writes ``"Tag A","Tag B"``), each one line of at most ``TAG_MAX`` characters."""
    tags = []
    for part in cell.replace(";", ",").split(","):
        tag = clean_name(part.strip().strip('"').strip())[:TAG_MAX]
        if tag:
            tags.append(tag)
    return tags


class EmailNormaliser:
    """``addresses.normalise_email`` with the domain's validation cached.

    email-validator spends most of its time on the domain (IDNA checks per character), and an
    import repeats a few thousand domains at most. A plain ASCII dot-atom local part is checked
    here with email-validator's own grammar and joined to the cached normalised domain; anything
    else (quoting, non-ASCII, a bad domain, a length limit) goes through ``validate_email`` whole,
    so the result and the error messages are the same as ``normalise_email``'s.
    """

    CACHE_MAX = 10_000

    def __init__(self) -> None:
        self._domains: dict[str, str | None] = {}

    def normalise(self, address: str) -> str:
        local, at, domain = address.rpartition("@")
        if at and len(local) <= MAX_LOCAL and _DOT_ATOM.match(local) and domain.isascii():
            normal = self._domain(domain)
            if normal is not None and len(local) + 1 + len(normal) <= MAX_ADDRESS:
                if local.lower() in CASE_INSENSITIVE_MAILBOX_NAMES:
                    local = local.lower()
                return local + "@" + normal
        return str(validate_email(address, check_deliverability=False).normalized)

    def _domain(self, domain: str) -> str | None:
        if domain not in self._domains:
            if len(self._domains) >= self.CACHE_MAX:
                self._domains.clear()
            try:
                checked = validate_email("a@" + domain, check_deliverability=False)
                self._domains[domain] = checked.domain
            except EmailNotValidError:
                self._domains[domain] = None  # the full validation gives the message
        return self._domains[domain]


def _when(raw: str) -> datetime | None:
    text = raw.strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise RowError(f"consent_at {raw!r} is not an ISO 8601 date and time") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # naive: taken as UTC


def _ip(raw: str) -> str | None:
    text = raw.strip()
    if not text:
        return None
    if text.isascii() and text.isprintable():
        try:  # glibc's IPv4 grammar is ipaddress's (no leading zeros), ten times faster
            socket.inet_pton(socket.AF_INET, text)
            return text
        except OSError:
            pass
    try:
        return str(ipaddress.ip_address(text))
    except ValueError as exc:
        raise RowError(f"consent_ip {raw!r} is not an IP address") from exc


def _short(column: str, raw: str) -> str | None:
    text = " ".join(raw.split()) if raw.isprintable() else clean_name(raw)
    if len(text) > SHORT_TEXT:
        raise RowError(f"{column} is longer than {SHORT_TEXT} characters")
    return text or None


@dataclass(slots=True)
class Fresh:
    """An entry's rows as COPY text after the subscriber id, for when its address is new
    (``csv_fresh``)."""

    subscriber: str
    subscriptions: list[str]
    events: list[str]


@dataclass
class Entry:
    """The rows of one address in a chunk; their newsletters are distinct (``FirstRows``)."""

    email: str  # as its first row in the chunk spells it
    rows: list[Row]
    fresh: Fresh | None = None  # written ahead by csv_fresh.prepare
