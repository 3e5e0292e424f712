"""Which column of an import file goes where: the mapping, and the exports it recognises.

A mapping names one target per column: a subscriber field (``email``, ``name``, ``language``,
``time_zone``, ``tags``), a subscription field (``newsletters``, ``status``, ``consent`` and the
``consent_*`` record), ``opted_out`` (yes: the row is unsubscribed), ``attribute:<key>`` (the
cell goes into the subscriber's attributes under ``key``) or ``ignore``. Several columns may go
to ``name`` (joined by a space: first and last name), to ``tags`` and to distinct attributes;
every other target takes one column at most.

``detect`` reads a header row and proposes the mapping. Mailchimp's audience exports
("Email Address", "First Name", ..., ``MEMBER_RATING``, ``OPTIN_TIME``, ``LEID``, ``EUID``) and
Substack's subscriber exports (``email``, ``active_subscription``, ``expiry``, ``plan``,
``email_disabled``, ``created_at``) are recognised by their headers and mapped without asking:
Mailchimp's unsubscribed export (an ``UNSUB_TIME`` column) imports every row as unsubscribed and
its cleaned export (``CLEAN_TIME``) as bounced, a Substack row with ``email_disabled`` true as
unsubscribed; each such address goes on the suppression list (reason ``unsubscribed`` or
``bounced``), so no later import or editor makes it active: only the person's own confirmed
sign-up lifts an ``unsubscribed`` entry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping as MappingType
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from newsletter.exceptions import InvalidInput

__all__ = [
    "FIELDS",
    "MULTI",
    "Format",
    "Mapping",
    "attribute_key",
    "detect",
    "from_choices",
    "target_label",
]

ATTRIBUTE = "attribute:"
IGNORE = "ignore"
FIELDS = (
    "email",
    "name",
    "language",
    "time_zone",
    "tags",
    "newsletters",
    "status",
    "consent",
    "consent_at",
    "consent_ip",
    "consent_source",
    "consent_text_version",
    "opted_out",
)
MULTI = frozenset({"name", "tags", IGNORE})  # targets that may take several columns
LABELS = {
    "email": "Email address",
    "name": "Name (several columns are joined)",
    "language": "Language",
    "time_zone": "Time zone",
    "tags": "Tags",
    "newsletters": "Newsletters (slugs)",
    "status": "Status",
    "consent": "Consent (yes/no)",
    "consent_at": "Consent: when",
    "consent_ip": "Consent: IP address",
    "consent_source": "Consent: source",
    "consent_text_version": "Consent: text version",
    "opted_out": "Opted out (yes: unsubscribed)",
    IGNORE: "Ignore",
}
KEY_MAX = 64
_KEY = re.compile(r"[^a-z0-9]+")

ALIASES = {
    "email": "email",
    "e-mail": "email",
    "email address": "email",
    "email_address": "email",
    "e-mail address": "email",
    "name": "name",
    "full name": "name",
    "full_name": "name",
    "first name": "name",
    "first_name": "name",
    "firstname": "name",
    "last name": "name",
    "last_name": "name",
    "lastname": "name",
    "surname": "name",
    "language": "language",
    "lang": "language",
    "locale": "language",
    "time zone": "time_zone",
    "time_zone": "time_zone",
    "timezone": "time_zone",
    "tz": "time_zone",
    "tags": "tags",
    "tag": "tags",
    "newsletters": "newsletters",
    "newsletter": "newsletters",
    **{name: name for name in FIELDS if name.startswith("consent") or name == "status"},
}


class Format(StrEnum):
    plain = "plain"
    mailchimp = "mailchimp"
    mailchimp_unsubscribed = "mailchimp_unsubscribed"
    mailchimp_cleaned = "mailchimp_cleaned"
    substack = "substack"


FORMAT_LABELS = {
    Format.plain: "CSV file",
    Format.mailchimp: "Mailchimp audience export (subscribed)",
    Format.mailchimp_unsubscribed: "Mailchimp export of unsubscribed contacts",
    Format.mailchimp_cleaned: "Mailchimp export of cleaned (bounced) contacts",
    Format.substack: "Substack subscriber export",
}

MAILCHIMP_MARKS = frozenset({"email address", "member_rating", "optin_time", "leid", "euid"})
MAILCHIMP = {
    "email address": "email",
    "first name": "name",
    "last name": "name",
    "tags": "tags",
    "timezone": "time_zone",
    "language": "language",
    "confirm_time": "consent_at",
    "confirm_ip": "consent_ip",
}
MAILCHIMP_IGNORED = frozenset(
    {
        "member_rating",
        "optin_time",
        "optin_ip",
        "latitude",
        "longitude",
        "gmtoff",
        "dstoff",
        "cc",
        "region",
        "last_changed",
        "leid",
        "euid",
        "notes",
        "ssub_time",
        "unsub_time",
        "unsub_campaign_title",
        "unsub_campaign_id",
        "unsub_reason",
        "unsub_reason_other",
        "clean_time",
        "clean_campaign_title",
        "clean_campaign_id",
    }
)
SUBSTACK_MARKS = frozenset({"email", "active_subscription", "email_disabled"})
SUBSTACK = {
    "email": "email",
    "name": "name",
    "email_disabled": "opted_out",
    "created_at": "consent_at",
    "plan": "attribute:substack_plan",
    "active_subscription": "attribute:substack_paid",
    "expiry": "attribute:substack_expiry",
}


@dataclass
class Mapping:
    """One target per column, and what the file's format says about every row."""

    fields: list[str]
    format: Format = Format.plain
    status: str | None = None  # every row's status (a Mailchimp unsubscribed/cleaned export)
    #: the suppression reason every row's address gets (an unsubscribed or cleaned export's)
    suppress: str | None = None
    header: list[str] = field(default_factory=list)

    def check(self) -> None:
        """InvalidInput without an email column, or with a one-column target named twice."""
        if "email" not in self.fields:
            shown = ", ".join(repr(h.strip().lower()) for h in self.header[:10]) or "nothing"
            raise InvalidInput(f"the header row has no 'email' column (found {shown})")
        seen: dict[str, int] = {}
        for index, target in enumerate(self.fields):
            if target in MULTI:
                continue
            if target in seen:
                first, second = self.header[seen[target]], self.header[index]
                if first.strip().lower() == second.strip().lower():
                    raise InvalidInput(f"the header row names a column twice: {first}")
                raise InvalidInput(
                    f"columns {first!r} and {second!r} are both mapped to {target_label(target)}"
                )
            seen[target] = index

    def ignored(self) -> list[str]:
        return [
            h.strip().lower() for h, t in zip(self.header, self.fields, strict=False) if t == IGNORE
        ]

    def as_dict(self) -> dict[str, Any]:
        return {"fields": list(self.fields), "format": str(self.format)}


def target_label(target: str) -> str:
    if target.startswith(ATTRIBUTE):
        return f"attribute {target[len(ATTRIBUTE) :]!r}"
    return LABELS.get(target, target)


def attribute_key(name: str) -> str:
    """An attribute key from a column name: lower case, runs of other characters as ``_``."""
    return _KEY.sub("_", name.strip().lower()).strip("_")[:KEY_MAX] or "column"


def detect(header: Sequence[str]) -> Mapping:
    """The mapping a header row asks for: a Mailchimp or Substack export's, or by column names.

    In a plain file a column whose name is not a known field is ignored (the editor can map it
    to an attribute in the preview); in an export the provider's own bookkeeping columns are
    ignored and its other columns (merge fields) become attributes.
    """
    names = [h.strip().lower() for h in header]
    present = set(names)
    if present >= MAILCHIMP_MARKS:
        fmt = Format.mailchimp
        status, suppress = None, None
        if "clean_time" in present:
            fmt, status, suppress = Format.mailchimp_cleaned, "bounced", "bounced"
        elif "unsub_time" in present:
            fmt, status, suppress = Format.mailchimp_unsubscribed, "unsubscribed", "unsubscribed"
        fields = [_provider(n, MAILCHIMP, MAILCHIMP_IGNORED) for n in names]
        return Mapping(fields, fmt, status, suppress, list(header))
    if present >= SUBSTACK_MARKS:
        fields = [_provider(n, SUBSTACK, frozenset(), default=IGNORE) for n in names]
        return Mapping(fields, Format.substack, None, None, list(header))
    return Mapping([ALIASES.get(n, IGNORE) for n in names], Format.plain, None, None, list(header))


def _provider(
    name: str, known: dict[str, str], ignored: frozenset[str], default: str | None = None
) -> str:
    if name in known:
        return known[name]
    if name in ignored or not name:
        return IGNORE
    return default or ATTRIBUTE + attribute_key(name)


def from_choices(detected: Mapping, choices: MappingType[int, str]) -> Mapping:
    """``detected`` with the editor's choices ({column index: target}); InvalidInput for a target
    that is not one (an attribute key is tidied as ``attribute_key`` does)."""
    fields = list(detected.fields)
    for index, raw in choices.items():
        if not 0 <= index < len(fields):
            raise InvalidInput(f"there is no column {index + 1}")
        target = raw.strip()
        if target.startswith(ATTRIBUTE):
            target = ATTRIBUTE + attribute_key(target[len(ATTRIBUTE) :])
        elif target not in FIELDS and target != IGNORE:
            raise InvalidInput(f"{raw[:40]!r} is not a column target")
        fields[index] = target
    mapping = Mapping(fields, detected.format, detected.status, detected.suppress, detected.header)
    mapping.check()
    return mapping
