"""The relays half of the settings: several SMTP relays with weights (NEWSLETTER_SMTP_RELAYS),
how long a failing one stays out, and the caps per receiving-domain group. ``config.Settings``
inherits it; read it there.

Without NEWSLETTER_SMTP_RELAYS there is one relay, "default", made of NEWSLETTER_SMTP_*: an
existing setup sends as it did.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from newsletter.config_providers import ProviderSettings
from newsletter.transports.smtp import SMTPConfig

#: a relay's name: what a newsletter's ``relay`` and the metrics' label say
RELAY_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
DEFAULT_RELAY = "default"
#: receiving-domain groups, in the order they are shown ("others" is every other domain)
GROUPS = ("gmail", "yahoo", "microsoft", "others")


@dataclass(frozen=True)
class GroupCap:
    """At most ``per_connection`` messages on one connection (then it is closed and opened
    again) and ``rate`` messages a second over all workers; 0 is no cap."""

    per_connection: int = 0
    rate: float = 0.0


#: the caps of a relay marked ``caps`` (NEWSLETTER_DOMAIN_CAPS changes them): the receivers'
#: published or observed comfort for a new sender's bulk mail, on the careful side
DEFAULT_CAPS = {
    "gmail": GroupCap(per_connection=100, rate=20.0),
    "yahoo": GroupCap(per_connection=20, rate=5.0),
    "microsoft": GroupCap(per_connection=50, rate=10.0),
    "others": GroupCap(per_connection=100, rate=0.0),
}


@dataclass(frozen=True)
class Relay:
    name: str
    smtp: SMTPConfig
    weight: int = 1  # share of the default choice; 0: only for a newsletter that names it
    caps: bool = False  # the per receiving-domain group caps apply


class _RelayEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=f"^{RELAY_NAME.pattern}$", max_length=64)
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(25, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    weight: int = Field(1, ge=0, le=1000)
    caps: bool = False


class _CapEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    per_connection: int = Field(0, ge=0, le=100_000)
    rate: float = Field(0.0, ge=0, le=100_000)


class RelaySettings(ProviderSettings):
    smtp_relays: str = Field(
        "",
        description="several SMTP relays, a JSON list of {name, host, port, username, password, "
        "starttls, weight, caps}; empty: one relay named default from NEWSLETTER_SMTP_*",
    )
    smtp_caps: bool = Field(
        False, description="the receiving-domain group caps for the one NEWSLETTER_SMTP_* relay"
    )
    domain_caps: str = Field(
        "",
        description="JSON {group: {per_connection, rate}} over the default caps of the groups "
        "gmail, yahoo, microsoft, others (for relays marked caps)",
    )
    relay_cooldown_seconds: float = Field(
        60.0, gt=0, description="how long a failing relay stays out first (doubling, up to max)"
    )
    relay_cooldown_max_seconds: float = Field(
        900.0, gt=0, description="the longest a failing relay stays out before it is tried again"
    )
    relay_breaker_window: int = Field(
        20, ge=1, description="a relay's last sends (per process) its own breaker looks at"
    )
    relay_breaker_threshold: float = Field(
        0.5, gt=0, le=1, description="share of temporary failures in that window that takes it out"
    )

    def relays(self) -> tuple[Relay, ...]:
        """The configured relays, in the order given."""
        if not self.smtp_relays.strip():
            return (Relay(DEFAULT_RELAY, self.smtp_config(), 1, self.smtp_caps),)
        timeout = self.smtp_config().timeout
        return tuple(
            Relay(
                e.name,
                SMTPConfig(e.host, e.port, e.username, e.password, e.starttls, timeout),
                e.weight,
                e.caps,
            )
            for e in _entries(self.smtp_relays)
        )

    def relay_names(self) -> tuple[str, ...]:
        return tuple(relay.name for relay in self.relays())

    def group_caps(self) -> dict[str, GroupCap]:
        caps = dict(DEFAULT_CAPS)
        for group, entry in _caps(self.domain_caps).items():
            caps[group] = GroupCap(entry.per_connection, entry.rate)
        return caps

    @model_validator(mode="after")
    def _relays_parse(self) -> RelaySettings:
        if self.smtp_relays.strip():
            _entries(self.smtp_relays)
        _caps(self.domain_caps)
        return self


def _load(value: str, setting: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{setting} is not JSON: {exc}") from None


def _entries(value: str) -> list[_RelayEntry]:
    raw = _load(value, "NEWSLETTER_SMTP_RELAYS")
    if not isinstance(raw, list) or not raw:
        raise ValueError("NEWSLETTER_SMTP_RELAYS must be a JSON list of at least one relay")
    try:
        entries = [_RelayEntry.model_validate(item) for item in raw]
    except ValidationError as exc:
        raise ValueError(f"NEWSLETTER_SMTP_RELAYS: {exc}") from None
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise ValueError("NEWSLETTER_SMTP_RELAYS: each relay needs a name of its own")
    if not any(e.weight for e in entries):
        raise ValueError("NEWSLETTER_SMTP_RELAYS: at least one relay needs a weight above 0")
    return entries


def _caps(value: str) -> dict[str, _CapEntry]:
    if not value.strip():
        return {}
    raw = _load(value, "NEWSLETTER_DOMAIN_CAPS")
    if not isinstance(raw, dict) or set(raw) - set(GROUPS):
        raise ValueError(f"NEWSLETTER_DOMAIN_CAPS must be a JSON object keyed by {GROUPS}")
    try:
        return {group: _CapEntry.model_validate(item) for group, item in raw.items()}
    except ValidationError as exc:
        raise ValueError(f"NEWSLETTER_DOMAIN_CAPS: {exc}") from None
