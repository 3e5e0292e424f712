"""A segment's rules, and their compilation to SQL: one boolean over the ``subscriber`` row.

Rules are a pydantic model, stored as JSON on the segment: a group (``match`` ``all`` or
``any``) of conditions and nested groups. An empty ``all`` group matches everyone, an empty
``any`` group nobody. The conditions (``kind``):

- ``subscription``: a subscription with this ``status`` and/or to this ``newsletter`` (an id),
  both on the same subscription
- ``attribute``: the subscriber's JSON attribute ``key``: ``exists``, ``equals`` (a string
  equals a string, a number a number), ``contains`` (a string, case-insensitive), ``lt``,
  ``le``, ``gt``, ``ge`` (a number against a number); a value of another JSON type never matches
- ``tag``: has (``has`` true) or has not the tag (``SubscriberTag`` rows)
- ``signed_up``: the subscriber's creation ``before`` or ``after`` a moment, or ``within_days``
- ``source``: a subscription whose consent source is ``value`` (``form``, ``import``, a page...)
- ``language`` / ``time_zone``: equals ``value`` (null: not set, i.e. the newsletter's)
- ``bounces``: ``soft_at_least`` N soft bounces in a row on a subscription, ``bounced_within_days``
  (a subscription's last bounce), ``bounce_event`` (any bounce ever recorded)
- ``email``: the address contains ``value`` (case-insensitive; how a search result is a segment)
- ``engagement``: ``opened`` or ``clicked`` (a human did: the verdict of ``engagement_event``)
  any of the ``last`` N issues of ``newsletter`` (its id, slug or name) that were sent (by
  when their send started); ``has`` false: did not (a re-engagement segment)

``where(rules)`` is the boolean over ``SUB`` (EXISTS subqueries correlated on the subscriber,
JSON extraction through SQLAlchemy's JSON index, typed per dialect; the column is JSONB on
PostgreSQL), so ``select_ids(rules)`` is ONE statement and the send's recipients query adds it
to its own WHERE: nothing is loaded into Python. Engagement is one EXISTS over
``engagement_event`` whose issue is among the newsletter's last N sent (a LIMIT subquery).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Select, and_, case, exists, false, func, literal, not_, or_, select, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import Boolean

from newsletter.models import SubscriptionStatus
from newsletter.statuses import IssueKind
from newsletter.tables import EE, EV, SUB, TAG, I, S

__all__ = [
    "AttributeCondition",
    "BounceCondition",
    "Condition",
    "EmailCondition",
    "EngagementCondition",
    "Group",
    "LanguageCondition",
    "SignedUpCondition",
    "SourceCondition",
    "SubscriptionCondition",
    "TagCondition",
    "TimeZoneCondition",
    "parse_rules",
    "select_ids",
    "where",
]

#: attribute keys a rule may name: no quote, backslash or control character (a JSON path)
KEY = re.compile(r'^[^"\\\x00-\x1f\x7f]{1,100}$')
MAX_DEPTH = 4
# aliases, so that an EXISTS correlates on the subscriber only, also inside a statement that
# reads ``subscription`` (the send's recipients) or writes ``subscribertag`` (bulk tags)
S_ = S.alias("seg_subscription")
TAG_ = TAG.alias("seg_tag")
EV_ = EV.alias("seg_event")
EE_ = EE.alias("seg_engagement")
I_ = I.alias("seg_issue")
MAX_CONDITIONS = 50


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SubscriptionCondition(_Rule):
    kind: Literal["subscription"] = "subscription"
    status: SubscriptionStatus | None = None
    newsletter: int | None = Field(None, ge=1)


class AttributeCondition(_Rule):
    kind: Literal["attribute"] = "attribute"
    key: str
    op: Literal["exists", "equals", "contains", "lt", "le", "gt", "ge"]
    value: str | float | None = None

    @field_validator("key")
    @classmethod
    def _key(cls, key: str) -> str:
        if not KEY.match(key):
            raise ValueError("an attribute key is 1-100 characters, no quotes or backslashes")
        return key

    def model_post_init(self, _context: Any) -> None:
        if self.op == "exists":
            return
        if self.value is None:
            raise ValueError(f"attribute {self.op} needs a value")
        if self.op == "contains" and not isinstance(self.value, str):
            raise ValueError("attribute contains needs a text value")
        if self.op in ("lt", "le", "gt", "ge") and not isinstance(self.value, float | int):
            raise ValueError(f"attribute {self.op} needs a number")


class TagCondition(_Rule):
    kind: Literal["tag"] = "tag"
    tag: str = Field(min_length=1, max_length=64)
    has: bool = True


class SignedUpCondition(_Rule):
    kind: Literal["signed_up"] = "signed_up"
    op: Literal["before", "after", "within_days"]
    at: AwareDatetime | None = None
    days: int | None = Field(None, ge=0, le=36_500)

    def model_post_init(self, _context: Any) -> None:
        if self.op == "within_days" and self.days is None:
            raise ValueError("signed_up within_days needs days")
        if self.op != "within_days" and self.at is None:
            raise ValueError(f"signed_up {self.op} needs at (a moment with its time zone)")


class SourceCondition(_Rule):
    kind: Literal["source"] = "source"
    value: str = Field(min_length=1, max_length=200)


class LanguageCondition(_Rule):
    kind: Literal["language"] = "language"
    value: str | None = Field(None, max_length=35)


class TimeZoneCondition(_Rule):
    kind: Literal["time_zone"] = "time_zone"
    value: str | None = Field(None, max_length=64)


class BounceCondition(_Rule):
    kind: Literal["bounces"] = "bounces"
    op: Literal["soft_at_least", "bounced_within_days", "bounce_event"]
    value: int = Field(1, ge=0, le=36_500)


class EmailCondition(_Rule):
    kind: Literal["email"] = "email"
    value: str = Field(min_length=1, max_length=320)


class EngagementCondition(_Rule):
    kind: Literal["engagement"] = "engagement"
    action: Literal["opened", "clicked"]
    #: the newsletter: its id, or its slug or name (``segments.check_rules`` makes it the id)
    newsletter: int | str
    last: int = Field(1, ge=1, le=100, description="the newsletter's last N sent issues")
    has: bool = True  # false: did not open/click any of them


Condition = Annotated[
    SubscriptionCondition
    | AttributeCondition
    | TagCondition
    | SignedUpCondition
    | SourceCondition
    | LanguageCondition
    | TimeZoneCondition
    | BounceCondition
    | EmailCondition
    | EngagementCondition,
    Field(discriminator="kind"),
]


class Group(_Rule):
    kind: Literal["group"] = "group"
    match: Literal["all", "any"] = "all"
    conditions: list[Annotated[Condition | Group, Field(union_mode="left_to_right")]] = Field(
        default_factory=list
    )

    def model_post_init(self, _context: Any) -> None:
        if _depth(self) > MAX_DEPTH:
            raise ValueError(f"rules nest at most {MAX_DEPTH} groups deep")
        if _size(self) > MAX_CONDITIONS:
            raise ValueError(f"rules hold at most {MAX_CONDITIONS} conditions")


def _depth(group: Group) -> int:
    return 1 + max((_depth(c) for c in group.conditions if isinstance(c, Group)), default=0)


def _size(group: Group) -> int:
    return sum(_size(c) if isinstance(c, Group) else 1 for c in group.conditions)


def parse_rules(data: Any) -> Group:
    """Rules from JSON-like data (a ``ValueError``, pydantic's, when they are not rules)."""
    return Group.model_validate(data if data else {})


# ---------------------------------------------------------------- the JSON type, per dialect


class _JsonIs(FunctionElement[bool]):
    """True when ``attributes[key]`` is a JSON string (``kind`` "string") or number."""

    type = Boolean()
    inherit_cache = True
    name = "json_is"


@compiles(_JsonIs, "postgresql")
def _json_is_pg(element: _JsonIs, compiler: Any, **kw: Any) -> str:
    column, key, kind = list(element.clauses)
    return (
        f"(jsonb_typeof({compiler.process(column, **kw)} -> "
        f"{compiler.process(key, **kw)}) = {compiler.process(kind, **kw)})"
    )


@compiles(_JsonIs, "sqlite")
def _json_is_sqlite(element: _JsonIs, compiler: Any, **kw: Any) -> str:
    column, key, kind = list(element.clauses)
    # json_type: 'text' for a string, 'integer' or 'real' for a number
    path = f"'$.\"' || {compiler.process(key, **kw)} || '\"'"
    sql_type = f"json_type({compiler.process(column, **kw)}, {path})"
    return (
        f"(CASE {compiler.process(kind, **kw)} WHEN 'string' THEN {sql_type} = 'text' "
        f"ELSE {sql_type} IN ('integer', 'real') END)"
    )


def _is(key: str, kind: str) -> ColumnElement[bool]:
    return _JsonIs(SUB.c.attributes, literal(key), literal(kind))


def _present(key: str) -> ColumnElement[bool]:
    return _JsonPresent(SUB.c.attributes, literal(key))


class _JsonPresent(FunctionElement[bool]):
    type = Boolean()
    inherit_cache = True
    name = "json_present"


@compiles(_JsonPresent, "postgresql")
def _present_pg(element: _JsonPresent, compiler: Any, **kw: Any) -> str:
    column, key = list(element.clauses)
    return (
        f"(jsonb_typeof({compiler.process(column, **kw)} -> "
        f"{compiler.process(key, **kw)}) IS NOT NULL)"
    )


@compiles(_JsonPresent, "sqlite")
def _present_sqlite(element: _JsonPresent, compiler: Any, **kw: Any) -> str:
    column, key = list(element.clauses)
    path = f"'$.\"' || {compiler.process(key, **kw)} || '\"'"
    return f"(json_type({compiler.process(column, **kw)}, {path}) IS NOT NULL)"


# ---------------------------------------------------------------- compilation


def where(rules: Group, *, now: datetime | None = None) -> ColumnElement[bool]:
    """The rules as one boolean over the ``subscriber`` table (correlated EXISTS inside)."""
    return _group(rules, now or datetime.now(UTC))


def select_ids(rules: Group, *, now: datetime | None = None) -> Select[Any]:
    """SELECT subscriber.id WHERE the rules: one statement, evaluated by the database."""
    return select(SUB.c.id).where(where(rules, now=now))


def _group(group: Group, now: datetime) -> ColumnElement[bool]:
    parts = [
        _group(c, now) if isinstance(c, Group) else _condition(c, now) for c in group.conditions
    ]
    if not parts:
        return true() if group.match == "all" else false()
    return and_(*parts) if group.match == "all" else or_(*parts)


def _subscription(*match: ColumnElement[bool]) -> ColumnElement[bool]:
    return exists().where(S_.c.subscriber_id == SUB.c.id, *match)


def _condition(c: Any, now: datetime) -> ColumnElement[bool]:
    if isinstance(c, SubscriptionCondition):
        match = []
        if c.status is not None:
            match.append(S_.c.status == str(c.status))
        if c.newsletter is not None:
            match.append(S_.c.newsletter_id == c.newsletter)
        return _subscription(*match)
    if isinstance(c, AttributeCondition):
        return _attribute(c)
    if isinstance(c, TagCondition):
        has = exists().where(TAG_.c.subscriber_id == SUB.c.id, TAG_.c.tag == c.tag)
        return has if c.has else not_(has)
    if isinstance(c, SignedUpCondition):
        if c.op == "within_days":
            return SUB.c.created_at >= now - timedelta(days=c.days or 0)
        assert c.at is not None
        return SUB.c.created_at < c.at if c.op == "before" else SUB.c.created_at > c.at
    if isinstance(c, SourceCondition):
        return _subscription(S_.c.consent_source == c.value)
    if isinstance(c, LanguageCondition | TimeZoneCondition):
        column = SUB.c.language if isinstance(c, LanguageCondition) else SUB.c.time_zone
        return column.is_(None) if c.value is None else column == c.value
    if isinstance(c, BounceCondition):
        return _bounces(c, now)
    if isinstance(c, EngagementCondition):
        return _engagement(c)
    assert isinstance(c, EmailCondition)
    return func.lower(SUB.c.email).like(func.lower(literal(_like(c.value))), escape="/")


def _like(term: str) -> str:
    escaped = term.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


def _attribute(c: AttributeCondition) -> ColumnElement[bool]:
    if c.op == "exists":
        return _present(c.key)
    value = SUB.c.attributes[c.key]
    if isinstance(c.value, str):
        if c.op not in ("equals", "contains"):
            return false()
        text = value.as_string()
        if c.op == "equals":
            return and_(_is(c.key, "string"), text == c.value)
        pattern = func.lower(literal(_like(c.value)))
        return and_(_is(c.key, "string"), func.lower(text).like(pattern, escape="/"))
    # a number: CASE keeps the cast away from values that are not numbers (PostgreSQL errs)
    number = case((_is(c.key, "number"), value.as_float()), else_=None)
    target = float(c.value or 0)
    compare = {
        "equals": number == target,
        "lt": number < target,
        "le": number <= target,
        "gt": number > target,
        "ge": number >= target,
    }
    return compare.get(c.op, false())  # "contains" with a number was refused by the model


def _bounces(c: BounceCondition, now: datetime) -> ColumnElement[bool]:
    if c.op == "soft_at_least":
        return _subscription(S_.c.soft_bounces >= c.value)
    if c.op == "bounced_within_days":
        return _subscription(S_.c.last_bounce_at >= now - timedelta(days=c.value))
    return exists().where(EV_.c.subscriber_id == SUB.c.id, EV_.c.kind == "bounce")


def _engagement(c: EngagementCondition) -> ColumnElement[bool]:
    """A human open (click) of one of the newsletter's last N issues whose send started."""
    last = (
        select(I_.c.id)
        .where(
            I_.c.newsletter_id == c.newsletter,
            I_.c.kind == IssueKind.issue,
            I_.c.send_started_at.is_not(None),
        )
        .order_by(I_.c.send_started_at.desc(), I_.c.id.desc())
        .limit(c.last)
    )
    did = exists().where(
        EE_.c.subscriber_id == SUB.c.id,
        EE_.c.kind == ("open" if c.action == "opened" else "click"),
        EE_.c.verdict == "human",
        EE_.c.issue_id.in_(last.scalar_subquery()),
    )
    return did if c.has else not_(did)
