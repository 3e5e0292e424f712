"""The relays as an operator sees them, and their health checks (EHLO + NOOP on a new connection).

``statuses`` lists each configured relay with its weight and state (in service, out until when
and why, or due for a check), read fresh from ``relay_health``: the CLI's ``newsletter relays``,
/metrics and the sending view show it. ``check`` says hello to each relay and puts the ones that
answer back in service (and the ones that do not out). The beat's tick calls ``recheck_due`` for
relays whose cool-down ended, so a relay that came back is in service again even while no
message tries it; and ``any_relay`` is the probe that resumes a send the issue's breaker paused
because every relay was out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from newsletter.config import Settings
from newsletter.config_relays import Relay
from newsletter.models import utcnow
from newsletter.sending import probe
from newsletter.sending.relay_health import Health, State, health_for, read_states

__all__ = ["RelayStatus", "any_relay", "check", "recheck_due", "statuses"]


@dataclass(frozen=True)
class RelayStatus:
    relay: Relay
    state: str  # "up", "out" (cooling down) or "due" (cool-down over, not answered yet)
    out_until: datetime | None
    reason: str
    changed_at: datetime | None

    @property
    def up(self) -> bool:
        return self.state == "up"


def _status(relay: Relay, state: State | None, now: datetime) -> RelayStatus:
    if state is None:
        return RelayStatus(relay, "up", None, "", None)
    if state.out(now):
        kind = "out"
    elif state.out_until is not None:
        kind = "due"
    else:
        kind = "up"
    return RelayStatus(relay, kind, state.out_until, state.reason, state.changed_at)


def _health(settings: Settings) -> Health:
    return health_for(
        settings.database_url, settings.relay_cooldown_seconds, settings.relay_cooldown_max_seconds
    )


def statuses(settings: Settings) -> list[RelayStatus]:
    """Every configured relay and its state, in the settings' order (read now, not cached)."""
    states = read_states(_health(settings).engine)
    now = utcnow()
    return [_status(relay, states.get(relay.name), now) for relay in settings.relays()]


def check(settings: Settings, names: list[str] | None = None) -> dict[str, str | None]:
    """EHLO + NOOP to each relay (or those named): name -> None when it answered, else why
    not. Answering puts a relay back in service; not answering takes it out."""
    health = _health(settings)
    results: dict[str, str | None] = {}
    for relay in settings.relays():
        if names is not None and relay.name not in names:
            continue
        try:
            probe.smtp_probe(relay.smtp)()
        except probe.RelayDown as exc:
            results[relay.name] = str(exc)
            health.mark_out(relay.name, f"health check: {exc}")
            continue
        results[relay.name] = None
        health.mark_back(relay.name)
    return results


def recheck_due(settings: Settings) -> dict[str, str | None]:
    """Check the relays whose cool-down is over and that did not answer since."""
    due = [s.relay.name for s in statuses(settings) if s.state == "due"]
    return check(settings, due) if due else {}


def any_relay(settings: Settings) -> probe.Probe:
    """The probe of a send paused with its relays out: it passes when one relay of the
    newsletter's choice answers (its own relay; "": any configured relay)."""

    def probe_them(choice: str) -> str:
        results = check(settings, [choice] if choice else None)
        if not results:  # a relay no longer configured: nothing could ever resume the send
            raise probe.RelayDown(f"relay {choice!r} is not configured")
        answered = [name for name, why in results.items() if why is None]
        if not answered:
            raise probe.RelayDown("; ".join(f"{n}: {why}" for n, why in results.items()))
        return f"{', '.join(answered)} answered"

    return probe_them
