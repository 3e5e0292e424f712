"""Several SMTP relays behind one ``Transport``: spread by weight, failover, a relay per newsletter.

``RelaySet.send`` picks a relay among those of the current choice (``Route``: a newsletter's
relay, or all of them) that are not out, by smooth weighted round robin (nginx's: a relay of
weight 3 takes three messages of every four next to one of weight 1, evenly interleaved), and
hands the message to its connection (one per relay, or per relay and receiving-domain group for
a relay marked ``caps``: ``domain_caps``).

Failover: a failure while connecting (refused, timed out, a bad greeting or EHLO, STARTTLS or
login; nothing of the message was written: ``TransportError.connecting``) takes the relay out
for its cool-down (``relay_health``) and the same message goes to the next relay at once. Any
other failure is the message's outcome as before (the ledger retries a temporary one later,
with the same Message-ID; a reply lost after the final dot stays ambiguous, as it always was),
and counts in the relay's own breaker, which takes the relay out when too many of its sends
fail. With every relay of the choice out the send fails as temporary, saying which relays are
out and why: the issue's circuit breaker then pauses it, and the beat's probe resumes it when a
relay answers (``relay_checks``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from newsletter.config import Settings
from newsletter.config_relays import Relay
from newsletter.exceptions import InvalidInput
from newsletter.models import utcnow
from newsletter.sending.domain_caps import GroupLimits, group_of, limits_for
from newsletter.sending.ratelimit import LimiterUnavailable
from newsletter.sending.relay_health import Health, RelayBreaker, State, health_for
from newsletter.transports import Announcing, TemporaryFailure, Transport, TransportError
from newsletter.transports.smtp import SMTPConfig, SMTPTransport

__all__ = [
    "RelaySet",
    "Route",
    "health_of",
    "relay_key",
    "relay_set",
    "route",
    "validate_relay",
]


@dataclass
class Route:
    """The relays the current batch may use (None: all, by weight); shared by the connections
    of one worker thread, set by the batch before it sends."""

    only: frozenset[str] | None = None


def validate_relay(settings: Settings, name: str) -> str:
    """``name`` as a newsletter's relay: "" (all relays, by weight) or a configured relay."""
    name = name.strip()
    if name and name not in settings.relay_names():
        known = ", ".join(settings.relay_names())
        raise InvalidInput(f"relay {name[:64]!r} is not configured (the relays: {known})")
    return name


class RelaySet:
    """A ``Transport`` over the configured relays; used by one thread at a time."""

    def __init__(
        self,
        relays: Sequence[Relay],
        *,
        health: Health,
        breaker: RelayBreaker,
        limits: GroupLimits,
        route: Route | None = None,
        make: Callable[[SMTPConfig], Transport] = SMTPTransport,
    ) -> None:
        self.relays = {relay.name: relay for relay in relays}
        self.health, self.breaker, self.limits = health, breaker, limits
        self.route = route or Route()
        self._make = make
        self._conns: dict[tuple[str, str], Transport] = {}
        self._announcers: dict[tuple[str, str], Announcing] = {}  # those of them that announce
        self._counts: dict[tuple[str, str], int] = {}  # messages on each capped connection
        self._current = dict.fromkeys(self.relays, 0)  # smooth weighted round robin
        self._alone = False  # the last pick had no other relay to choose from

    def send(self, envelope_from: str, to: str, data: bytes) -> str:
        return self._deliver(envelope_from, to, data, None, None)

    def send_then(
        self,
        envelope_from: str,
        to: str,
        data: bytes,
        then: str | None,
        meanwhile: Callable[[], None] | None = None,
    ) -> str:
        """``send``; ``then`` (the next recipient) is announced on the relay's connection when
        that relay is the only one the choice allows and has no caps: the next message will
        take the same connection."""
        if type(self).send is not RelaySet.send:  # a subclass takes each message itself
            return self.send(envelope_from, to, data)
        return self._deliver(envelope_from, to, data, then, meanwhile)

    def _deliver(
        self,
        envelope_from: str,
        to: str,
        data: bytes,
        then: str | None,
        meanwhile: Callable[[], None] | None,
    ) -> str:
        tried: list[str] = []
        while True:
            relay = self._pick(tried)
            if relay is None:  # nothing was written to any server: another try later
                raise TemporaryFailure(
                    self._none_left(tried), code=None, connecting=True, retry_at=self._back_at()
                )
            group = group_of(to) if relay.caps else ""
            ahead = then if self._alone and not relay.caps else None
            try:
                reply = self._send_on(relay, group, envelope_from, to, data, ahead, meanwhile)
            except TransportError as exc:
                if exc.connecting:
                    self.health.mark_out(relay.name, f"cannot connect: {exc}")
                    tried.append(relay.name)
                    continue
                self._record(relay.name, failed=isinstance(exc, TemporaryFailure), why=str(exc))
                raise
            self._record(relay.name, failed=False)
            return reply

    def abandon(self) -> None:
        """An announced recipient will not be sent: each connection undoes its announcement."""
        for conn in self._announcers.values():
            conn.abandon()

    def _send_on(
        self,
        relay: Relay,
        group: str,
        envelope_from: str,
        to: str,
        data: bytes,
        then: str | None = None,
        meanwhile: Callable[[], None] | None = None,
    ) -> str:
        key = (relay.name, group)
        if relay.caps:
            try:
                self.limits.wait_turn(relay.name, group)
            except LimiterUnavailable as exc:  # nothing sent: the ledger tries it later
                raise TemporaryFailure(f"group rate: {exc}", code=None) from exc
        conn = self._conns.get(key)
        if conn is None:
            conn = self._conns[key] = self._make(relay.smtp)
            if isinstance(conn, Announcing):
                self._announcers[key] = conn
        try:
            announcer = self._announcers.get(key)
            if announcer is not None:
                return announcer.send_then(envelope_from, to, data, then, meanwhile)
            return conn.send(envelope_from, to, data)
        finally:
            if relay.caps:
                self._count(key, self.limits.cap(group).per_connection)

    def _count(self, key: tuple[str, str], cap: int) -> None:
        """One more message on a capped connection; at the cap it is closed (QUIT), and the
        next message of the group opens a new one."""
        self._counts[key] = self._counts.get(key, 0) + 1
        if cap and self._counts[key] >= cap:
            self._counts[key] = 0
            self._conns[key].close()

    def _record(self, name: str, *, failed: bool, why: str = "") -> None:
        if not failed:
            self.health.mark_back(name)
            self.breaker.record(name, failed=False)
            return
        tripped = self.breaker.record(name, failed=True)
        if tripped:
            self.health.mark_out(name, f"{tripped} (last: {why[:300]})")

    def _pick(self, tried: list[str]) -> Relay | None:
        """The next relay by smooth weighted round robin among those allowed and not out."""
        out = self.health.out()
        only = self.route.only
        names = [
            n
            for n in self.relays
            if (only is None or n in only) and n not in tried and n not in out
        ]
        weights = {n: self.relays[n].weight or (1 if only else 0) for n in names}
        names = [n for n in names if weights[n] > 0]
        self._alone = len(names) == 1
        if not names:
            return None
        total = sum(weights.values())
        for n in names:
            self._current[n] += weights[n]
        best = max(names, key=lambda n: self._current[n])
        self._current[best] -= total
        return self.relays[best]

    def _back_at(self) -> datetime | None:
        """When the first relay of the choice that is out comes back (None: none is out)."""
        only = self.route.only
        ends = [
            state.out_until
            for name, state in self.health.out().items()
            if state.out_until is not None and (only is None or name in only)
        ]
        return min(ends) if ends else None

    def _none_left(self, tried: list[str]) -> str:
        states = self.health.out()
        only = sorted(self.route.only) if self.route.only is not None else list(self.relays)
        parts = [_why(n, states.get(n), n in tried) for n in only]
        return "no relay to send through: " + "; ".join(parts)

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()
        self._announcers.clear()


def _why(name: str, state: State | None, tried: bool) -> str:
    if state is not None and state.out(utcnow()):
        return f"{name} out until {state.out_until:%H:%M:%S} UTC ({state.reason[:200]})"
    if tried:
        return f"{name} failed just now"
    return f"{name} takes no share (weight 0)"


_shared = threading.Lock()
_breakers: dict[tuple[int, float], RelayBreaker] = {}


def relay_key(settings: Settings) -> tuple[object, ...]:
    """What a process's ``RelaySet`` is made of: another key, another set."""
    return (
        settings.relays(),
        tuple(sorted(settings.group_caps().items())),
        settings.database_url,
        settings.shared_redis_url,
        settings.relay_cooldown_seconds,
        settings.relay_cooldown_max_seconds,
        settings.relay_breaker_window,
        settings.relay_breaker_threshold,
    )


def relay_set(settings: Settings, route: Route | None = None) -> RelaySet:
    """The configured relays as one transport; its health and breakers are the process's."""
    health = health_for(
        settings.database_url, settings.relay_cooldown_seconds, settings.relay_cooldown_max_seconds
    )
    key = (settings.relay_breaker_window, settings.relay_breaker_threshold)
    with _shared:
        breaker = _breakers.setdefault(key, RelayBreaker(window=key[0], threshold=key[1]))
    limits = limits_for(settings.group_caps(), settings.shared_redis_url)
    return RelaySet(settings.relays(), health=health, breaker=breaker, limits=limits, route=route)


def health_of(transport: Transport) -> Health | None:
    """The relays' health a ``RelaySet`` writes (its pool's connections share the process's)."""
    return transport.health if isinstance(transport, RelaySet) else None


def route(transport: Transport, relay: str) -> None:
    """Send the coming batch through the newsletter's ``relay`` ("" all, by weight), when the
    transport is a ``RelaySet`` (its pool's connections share the same ``Route``)."""
    if not isinstance(transport, RelaySet):
        return
    if relay and relay not in transport.relays:
        known = ", ".join(transport.relays)
        raise InvalidInput(
            f"the newsletter's relay {relay!r} is not configured (the relays: {known})"
        )
    transport.route.only = frozenset({relay}) if relay else None
