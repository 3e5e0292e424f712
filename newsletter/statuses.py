"""The status enums of issues, subscriptions and deliveries, and the moves each allows.

Statuses are stored as short strings (not database enum types) so migrations stay simple on both
SQLite and PostgreSQL. Every status change in the code is a guarded UPDATE whose WHERE comes
from ``moving`` (so it names the statuses the row may be in, checked against the table when the
statement is built); tests/unit/test_statuses.py checks that no UPDATE sets a status otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any


class IssueStatus(StrEnum):
    draft = "draft"
    in_review = "in_review"
    approved = "approved"
    scheduled = "scheduled"
    preparing = "preparing"  # "send now" was accepted: a worker fills the ledger, then sends
    sending = "sending"
    paused = "paused"
    sent = "sent"
    cancelled = "cancelled"


class IssueKind(StrEnum):
    issue = "issue"  # sent to the list once
    welcome = "welcome"  # a standing issue: sent row by row to each subscriber who confirms


class SubscriptionStatus(StrEnum):
    pending = "pending"
    active = "active"
    unsubscribed = "unsubscribed"
    bounced = "bounced"
    complained = "complained"


class DeliveryStatus(StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    skipped = "skipped"
    cancelled = "cancelled"  # the issue was cancelled before this row was sent


class ImportStatus(StrEnum):
    draft = "draft"  # uploaded; the editor looks at the preview and sets the mapping
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


#: an issue not started yet: it can be edited (an edit to an approved one sends it back to review)
NOT_STARTED = (IssueStatus.draft, IssueStatus.in_review, IssueStatus.approved)

#: whether an unapproved issue may be scheduled or sent is the review gate's rule
#: (``content.review``, for newsletters that require review), not this table's
ISSUE_MOVES: dict[IssueStatus, frozenset[IssueStatus]] = {
    IssueStatus.draft: frozenset(
        {
            IssueStatus.in_review,
            IssueStatus.scheduled,
            IssueStatus.preparing,
            IssueStatus.sending,
            IssueStatus.cancelled,
        }
    ),
    IssueStatus.in_review: frozenset(
        {
            IssueStatus.draft,
            IssueStatus.approved,
            IssueStatus.scheduled,
            IssueStatus.preparing,
            IssueStatus.sending,
            IssueStatus.cancelled,
        }
    ),
    IssueStatus.approved: frozenset(
        {
            IssueStatus.draft,
            IssueStatus.in_review,
            IssueStatus.scheduled,
            IssueStatus.preparing,
            IssueStatus.sending,
            IssueStatus.cancelled,
        }
    ),
    IssueStatus.scheduled: frozenset(
        {
            IssueStatus.scheduled,
            IssueStatus.draft,
            IssueStatus.preparing,
            IssueStatus.sending,
            IssueStatus.cancelled,
        }
    ),
    #: the worker's fill moves it on to sending, in the transaction that inserts the ledger
    IssueStatus.preparing: frozenset({IssueStatus.sending, IssueStatus.cancelled}),
    IssueStatus.sending: frozenset({IssueStatus.paused, IssueStatus.sent, IssueStatus.cancelled}),
    IssueStatus.paused: frozenset({IssueStatus.sending, IssueStatus.cancelled}),
    IssueStatus.sent: frozenset({IssueStatus.sending}),  # resend to the failed
    IssueStatus.cancelled: frozenset(),
}

#: pending is only ever a first status; who may move a "no" back to active is the admission
#: gate's rule (``audience.subscribers``), not this table's
SUBSCRIPTION_MOVES: dict[SubscriptionStatus, frozenset[SubscriptionStatus]] = {
    SubscriptionStatus.pending: frozenset(
        {
            SubscriptionStatus.active,
            SubscriptionStatus.unsubscribed,
            SubscriptionStatus.bounced,
            SubscriptionStatus.complained,
        }
    ),
    SubscriptionStatus.active: frozenset(
        {SubscriptionStatus.unsubscribed, SubscriptionStatus.bounced, SubscriptionStatus.complained}
    ),
    SubscriptionStatus.unsubscribed: frozenset(
        {SubscriptionStatus.active, SubscriptionStatus.bounced, SubscriptionStatus.complained}
    ),
    SubscriptionStatus.bounced: frozenset(
        {SubscriptionStatus.active, SubscriptionStatus.unsubscribed, SubscriptionStatus.complained}
    ),
    SubscriptionStatus.complained: frozenset(
        {SubscriptionStatus.active, SubscriptionStatus.unsubscribed, SubscriptionStatus.bounced}
    ),
}

DELIVERY_MOVES: dict[DeliveryStatus, frozenset[DeliveryStatus]] = {
    DeliveryStatus.pending: frozenset({DeliveryStatus.sending, DeliveryStatus.cancelled}),
    DeliveryStatus.sending: frozenset(
        {
            DeliveryStatus.sent,
            DeliveryStatus.failed,
            DeliveryStatus.pending,  # a retry later, a released row, an expired lease
            DeliveryStatus.skipped,
            DeliveryStatus.cancelled,
        }
    ),
    DeliveryStatus.failed: frozenset({DeliveryStatus.pending}),  # resend to the failed
    # a row cancelled while its batch held it: the batch still records what became of it
    DeliveryStatus.cancelled: frozenset(
        {DeliveryStatus.sent, DeliveryStatus.failed, DeliveryStatus.cancelled}
    ),
    DeliveryStatus.sent: frozenset(),
    DeliveryStatus.skipped: frozenset(),
}

IMPORT_MOVES: dict[ImportStatus, frozenset[ImportStatus]] = {
    ImportStatus.draft: frozenset({ImportStatus.queued}),
    ImportStatus.queued: frozenset({ImportStatus.running, ImportStatus.failed}),
    # running -> queued: its worker went away (``import_reaper``), the job starts again
    ImportStatus.running: frozenset({ImportStatus.done, ImportStatus.failed, ImportStatus.queued}),
    ImportStatus.done: frozenset(),
    ImportStatus.failed: frozenset(),
}

MOVES: dict[type[StrEnum], Mapping[Any, frozenset[Any]]] = {
    ImportStatus: IMPORT_MOVES,
    IssueStatus: ISSUE_MOVES,
    SubscriptionStatus: SUBSCRIPTION_MOVES,
    DeliveryStatus: DELIVERY_MOVES,
}


class StatusMoveError(ValueError):
    """A status move the table does not allow: a programming error, never the user's."""


def sources(to: StrEnum, *, among: Iterable[StrEnum] | None = None) -> list[str]:
    """The statuses a row may be in to move to ``to`` (those of ``among``, when given).

    Raises ``StatusMoveError`` when ``among`` names a status the table does not let move there.
    """
    moves = MOVES[type(to)]
    allowed = [s for s in moves if to in moves[s]]
    if among is None:
        return sorted(str(s) for s in allowed)
    wanted = list(among)
    wrong = [str(s) for s in wanted if s not in allowed]
    if wrong:
        raise StatusMoveError(f"{type(to).__name__}: {', '.join(wrong)} -> {to} is not a move")
    return sorted(str(s) for s in wanted)


def moving(column: Any, to: StrEnum, *, among: Iterable[StrEnum] | None = None) -> Any:
    """``column IN (statuses that may move to `to`)``: the WHERE of a guarded status UPDATE."""
    return column.in_(sources(to, among=among))
