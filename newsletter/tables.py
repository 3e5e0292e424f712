"""The Core ``Table`` of each SQLModel table, for set-based statements (one place, typed).

Modules that write ``INSERT ... SELECT``, guarded ``UPDATE``s or bulk reads import the short
names they use: ``from newsletter.tables import D, I``.
"""

from __future__ import annotations

from sqlalchemy import Table
from sqlmodel import SQLModel

from newsletter.models import (
    ConfirmationOutbox,
    Delivery,
    EngagementEvent,
    Issue,
    IssueCounter,
    Newsletter,
    Segment,
    SubjectTest,
    Subscriber,
    SubscriberEvent,
    SubscriberTag,
    Subscription,
    WebhookDelivery,
    WebhookEndpoint,
)


def table_of(model: type[SQLModel]) -> Table:
    return SQLModel.metadata.tables[str(model.__tablename__)]


D = table_of(Delivery)
IC = table_of(IssueCounter)
I = table_of(Issue)  # noqa: E741 - the ledger's short names read best in long statements
NL = table_of(Newsletter)
S = table_of(Subscription)
SUB = table_of(Subscriber)
EV = table_of(SubscriberEvent)
TAG = table_of(SubscriberTag)
SEG = table_of(Segment)
E = table_of(WebhookEndpoint)
W = table_of(WebhookDelivery)
OB = table_of(ConfirmationOutbox)
ST = table_of(SubjectTest)
EE = table_of(EngagementEvent)
