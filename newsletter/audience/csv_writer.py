"""Writing one chunk of an import: subscribers, names, subscriptions and events, set-based.

A chunk of accepted rows goes in with a handful of statements whatever its size: the admission
gate asked once, the subscribers selected and the missing ones inserted, the names and the
subscriptions' status moves written as executemany, new rows inserted with COPY on PostgreSQL
(``INSERT ... ON CONFLICT DO NOTHING`` on SQLite, and when a concurrent writer got there first).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, TextClause, bindparam, select, text, update
from sqlmodel import Session

from newsletter.audience import csv_fresh, suppression
from newsletter.audience.csv_bulk import Bulk, JsonText
from newsletter.audience.csv_fresh import EVENT_COLUMNS, SUBSCRIPTION_COLUMNS
from newsletter.audience.csv_profile import Existing, People, Person
from newsletter.audience.csv_rows import Entry, Wanted
from newsletter.audience.subscribers import STICKY, Way, admission_refusals
from newsletter.models import SubscriptionStatus, moving, utcnow
from newsletter.tables import EV, NL, S

if TYPE_CHECKING:  # the report is the orchestration's; here it is only counted into
    from newsletter.audience.csv_report import ImportReport

CONSENT_FIELDS = ("consent_at", "consent_ip", "consent_source", "consent_text_version")


def next_status(current: str | None, incoming: str) -> str:
    """The import's transition rule: into a sticky status yes, out of one never."""
    if current is None:
        return incoming
    if current in STICKY:
        return current
    if incoming in STICKY:
        return incoming
    if current == SubscriptionStatus.active:
        return current  # a row saying pending does not undo a confirmation
    return incoming


class Outcome(StrEnum):
    made = "made"
    changed = "changed"
    same = "same"
    kept = "kept"  # a sticky subscription a row asked to (re-)activate


class Writer:
    """Writes one chunk of rows with a handful of set-based statements; counts each row."""

    def __init__(
        self,
        session: Session,
        report: ImportReport,
        *,
        existing: Existing = Existing.keep,
        newsletter_names: dict[int, str] | None = None,
    ) -> None:
        self.session = session
        self.report = report
        self.bulk = Bulk(session)
        self.people = People(self.bulk, existing)
        self.names = newsletter_names or {}

    def write(self, chunk: dict[str, Entry]) -> None:
        """Write ``chunk`` ({address_key: entry}) and count each of its rows once."""
        chunk = self._admit(chunk)
        if not chunk:
            return
        people, created = self.people.find_or_create(chunk)
        profile = self.people.update(chunk, people, created)
        tracked = self.report.verdicts is not None  # else the details are never read
        rest = chunk
        if self.people.copied and not tracked and self._fresh(chunk, people, created):
            rest = {k: e for k, e in chunk.items() if k not in created}
            self.report.imported += sum(len(chunk[k].rows) for k in created)
        outcomes, moves = self._subscriptions(rest, people, created)
        made_now = {pair for pair, outcome in outcomes.items() if outcome is Outcome.made}
        self._suppress(chunk)
        for key, entry in rest.items():
            sid = people[key].id
            for index, row in enumerate(entry.rows):
                done = {outcomes[(sid, nid)] for nid in row.wants}
                fields = profile.get(row.line, [])
                if Outcome.made in done or (index == 0 and key in created):
                    self.report.imported += 1
                    if tracked:
                        made = [
                            self.names.get(n, str(n)) for n in row.wants if (sid, n) in made_now
                        ]
                        known = key not in created or index > 0
                        detail = f"new subscription: {', '.join(made)}" if known else ""
                        verdict = "; ".join(filter(None, [detail, *fields]))
                        self.report.verdict(row.line, "new", verdict)
                elif Outcome.changed in done or fields:
                    self.report.updated += 1
                    moved = [moves[(sid, nid)] for nid in row.wants if (sid, nid) in moves]
                    self.report.verdict(row.line, "update", ", ".join(fields + moved))
                else:
                    self.report.unchanged += 1
                    kept = Outcome.kept in done
                    self.report.verdict(row.line, "unchanged", "kept as it was" if kept else "")
                self.report.kept += Outcome.kept in done

    def _fresh(self, chunk: dict[str, Entry], people: dict[str, Person], created: set[str]) -> bool:
        """Insert the subscriptions and events of the subscribers created now from their Fresh
        text (``csv_fresh``): every row of theirs makes its subscriptions, as ``_subscriptions``
        would; False, with nothing written, if one is there already after all."""
        pairs = [(people[k].id, e) for k, e in chunk.items() if k in created]  # file order
        # their subscribers were inserted by this transaction; their newsletters are held
        trusted = self.bulk.hold(NL, {n for _, e in pairs for row in e.rows for n in row.wants})
        subscriptions = csv_fresh.lines(pairs, "subscriptions")
        if not self.bulk.copy_lines(S, SUBSCRIPTION_COLUMNS, subscriptions, trusted=trusted):
            return False
        events = csv_fresh.lines(pairs, "events")
        self.bulk.copy_lines(EV, EVENT_COLUMNS, events, trusted=trusted)
        return True

    def _admit(self, chunk: dict[str, Entry]) -> dict[str, Entry]:
        """The chunk without the addresses the admission gate refuses (one query)."""
        refused = admission_refusals(
            self.session, {key: e.email for key, e in chunk.items()}, way=Way.import_
        )
        if not refused:
            return chunk
        admitted: dict[str, Entry] = {}
        for key, entry in chunk.items():
            reason = refused.get(entry.email)
            if reason is None:
                admitted[key] = entry
                continue
            for row in entry.rows:
                self.report.suppressed += 1
                self.report.warn(row.line, reason)
                self.report.verdict(row.line, "skip", reason)
        return admitted

    def _suppress(self, chunk: dict[str, Entry]) -> None:
        """Put the addresses of rows that say so (an unsubscribed or cleaned export's) on the
        suppression list, with the first such row's reason."""
        now = utcnow()
        rows = [
            {"email_hash": key, "reason": reason, "created_at": now}
            for key, entry in chunk.items()
            if (reason := next((row.suppress for row in entry.rows if row.suppress), None))
        ]
        self.bulk.insert(suppression.SUPPRESSION, rows)

    def _subscriptions(
        self, chunk: dict[str, Entry], people: dict[str, Person], created: set[str]
    ) -> tuple[dict[tuple[int, int], Outcome], dict[tuple[int, int], str]]:
        """Insert new subscriptions, move existing ones: ({(subscriber, newsletter): outcome},
        {(subscriber, newsletter): "slug: before -> after"} for the moves)."""
        # a subscriber created just now has no subscription yet: only the others are read
        current = self._statuses([people[k].id for k in chunk if k not in created])
        now = utcnow()
        inserts: list[dict[str, Any]] = []
        moves: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        outcomes: dict[tuple[int, int], Outcome] = {}
        described: dict[tuple[int, int], str] = {}
        as_text = self.bulk.dialect == "postgresql"  # COPY takes the events' detail as text
        for key, entry in chunk.items():
            sid = people[key].id
            for row in entry.rows:
                for nid, wanted in row.wants.items():
                    before = current.get((sid, nid))
                    after = next_status(before, wanted.status)
                    if before is None:
                        inserts.append(_subscription(sid, nid, wanted, now))
                        outcomes[(sid, nid)] = Outcome.made
                    elif after != before:
                        moves.append(_move(sid, nid, before, wanted, now))
                        outcomes[(sid, nid)] = Outcome.changed
                        name = self.names.get(nid, str(nid))
                        described[(sid, nid)] = f"{name}: {before} -> {after}"
                    else:
                        sticky = before in STICKY and wanted.status != before
                        outcomes[(sid, nid)] = Outcome.kept if sticky else Outcome.same
                        continue
                    events.append(_event(sid, nid, before, after, wanted, row.line, now, as_text))
        self.bulk.insert(S, inserts)
        self._move_all([m for m in moves if m["b_consent_at"] is not None], consent=True)
        self._move_all([m for m in moves if m["b_consent_at"] is None], consent=False)
        self.bulk.insert(EV, events)
        return outcomes, described

    def _statuses(self, subscriber_ids: list[int]) -> dict[tuple[int, int], str]:
        if not subscriber_ids:
            return {}
        rows = self.session.execute(
            select(S.c.subscriber_id, S.c.newsletter_id, S.c.status).where(
                self.bulk.among(S.c.subscriber_id, subscriber_ids)
            )
        ).all()
        return {(r.subscriber_id, r.newsletter_id): r.status for r in rows}

    def _move_all(self, moves: list[dict[str, Any]], *, consent: bool) -> None:
        """Guarded status changes; ``consent``: the rows record consent, else it stays as it was."""
        if not consent:  # a row without consent never erases the consent recorded on a subscription
            moves = [{k: v for k, v in m.items() if k[2:] not in CONSENT_FIELDS} for m in moves]
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for move in moves:
            groups.setdefault((move["b_before"], move["b_status"]), []).append(move)
        for (before, after), group in sorted(groups.items()):
            self._move_group(SubscriptionStatus(before), SubscriptionStatus(after), group, consent)

    def _move_group(
        self,
        before: SubscriptionStatus,
        after: SubscriptionStatus,
        moves: list[dict[str, Any]],
        consent: bool,
    ) -> None:
        """One executemany of the moves ``before`` -> ``after``, a move the table allows."""
        values: dict[str, Any] = {
            "status": after,
            "updated_at": bindparam("b_now"),
            "unsubscribed_at": bindparam("b_unsubscribed_at"),
        }
        if consent:
            values.update({c: bindparam(f"b_{c}") for c in CONSENT_FIELDS})
        # only if the status is still what we read: a concurrent unsubscribe is never undone
        guard = self._inline(moving(S.c.status, after, among=[before]))
        self.session.execute(
            update(S)
            .where(
                S.c.subscriber_id == bindparam("b_sid"),
                S.c.newsletter_id == bindparam("b_nid"),
                guard,
            )
            .values(values),
            [{k: v for k, v in m.items() if k not in ("b_before", "b_status")} for m in moves],
        )

    def _inline(self, clause: ColumnElement[bool]) -> TextClause:
        """``clause`` with its values written into the SQL: an executemany cannot expand an IN
        list, and these values are the table's own statuses, never input."""
        compiled = clause.compile(
            dialect=self.session.get_bind().dialect, compile_kwargs={"literal_binds": True}
        )
        return text(str(compiled))


def _subscription(sid: int, nid: int, wanted: Wanted, now: datetime) -> dict[str, Any]:
    return {
        "subscriber_id": sid,
        "newsletter_id": nid,
        "status": wanted.status,
        "consent_at": wanted.consent_at,
        "consent_ip": wanted.consent_ip,
        "consent_source": wanted.consent_source,
        "consent_text_version": wanted.consent_text_version,
        "created_at": now,
        "updated_at": now,
        "unsubscribed_at": now if wanted.status == SubscriptionStatus.unsubscribed else None,
        "soft_bounces": 0,
    }


def _move(sid: int, nid: int, before: str, wanted: Wanted, now: datetime) -> dict[str, Any]:
    values = _subscription(sid, nid, wanted, now)
    return {
        "b_sid": sid,
        "b_nid": nid,
        "b_before": before,
        "b_now": now,
        **{f"b_{k}": values[k] for k in ("status", "unsubscribed_at")},
        **{f"b_{k}": values[k] for k in values if k.startswith("consent_")},
    }


def _event(
    sid: int,
    nid: int,
    before: str | None,
    after: str,
    wanted: Wanted,
    line: int,
    now: datetime,
    as_text: bool = False,
) -> dict[str, Any]:
    return {
        "subscriber_id": sid,
        "newsletter_id": nid,
        "kind": "import",
        "at": now,
        "ip": wanted.consent_ip,
        "source": wanted.consent_source,
        "consent_text_version": wanted.consent_text_version,
        "detail": _detail(before, after, line, as_text),
    }


def _detail(before: str | None, after: str, line: int, as_text: bool) -> Any:
    """The event's detail; for COPY, its JSON text written here (what ``json.dumps`` writes:
    the statuses are plain words), a million ``json.dumps`` calls fewer."""
    if not as_text:
        return {"from": before, "status": after, "line": line}
    was = "null" if before is None else f'"{before}"'
    return JsonText(f'{{"from": {was}, "status": "{after}", "line": {line}}}')
