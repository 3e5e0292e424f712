"""Saved segments: create, list, change, delete, count; the segment an issue goes to; tags in
bulk on a segment or a search result.

A segment's rules are ``segment_rules.Group`` (checked when saved, stored as JSON). Counting,
tagging and sending compile them to one statement (``segment_rules.where``): a segment of a
newsletter counts that newsletter's recipients (``reach``: active, not suppressed) matching the
rules, the number a send to it would reach; a segment of no newsletter counts every subscriber
matching them. Tagging is one ``INSERT ... SELECT`` (insert-or-ignore) or one ``DELETE ...
WHERE subscriber_id IN (SELECT ...)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, func, literal, select
from sqlmodel import Session, col
from sqlmodel import select as sm_select

from newsletter.audience import reach, segment_rules
from newsletter.audience.segment_rules import Group
from newsletter.db import insert_ignore
from newsletter.exceptions import InvalidInput, InvalidState, NotFound
from newsletter.models import Issue, Segment, utcnow
from newsletter.newsletters import get_newsletter, list_newsletters
from newsletter.statuses import NOT_STARTED
from newsletter.tables import SUB, TAG
from newsletter.text import one_line

__all__ = [
    "TagResult",
    "as_mapping",
    "check_rules",
    "clean_tag",
    "count",
    "count_rules",
    "create",
    "delete_segment",
    "get",
    "issue_rules",
    "list_segments",
    "rules_of",
    "search_rules",
    "set_issue_segment",
    "tag",
    "update",
]

MAX_NAME = 200


def check_rules(data: Any, session: Session | None = None) -> Group:
    """Rules from JSON-like data, or ``InvalidInput`` naming the first problem; with a session,
    an engagement rule's newsletter (id, slug or name) must exist and becomes its id."""
    try:
        rules = segment_rules.parse_rules(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "rules"
        raise InvalidInput(f"rules: {where}: {first['msg']}") from None
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"rules: {exc}") from None
    if session is not None:
        rules = _engaged_newsletters(rules, _newsletter_refs(session))
    return rules


def _newsletter_refs(session: Session) -> dict[str, int]:
    """Every way an editor names a newsletter (id, slug, name, any case) -> its id."""
    refs: dict[str, int] = {}
    for n in list_newsletters(session):
        assert n.id is not None
        for ref in (str(n.id), n.slug, n.name):
            refs.setdefault(ref.casefold().strip(), n.id)
    return refs


def _engaged_newsletters(group: Group, refs: dict[str, int]) -> Group:
    """The rules with each engagement rule's newsletter as its id (InvalidInput: no such one)."""
    conditions: list[Any] = []
    for c in group.conditions:
        if isinstance(c, Group):
            c = _engaged_newsletters(c, refs)
        elif isinstance(c, segment_rules.EngagementCondition):
            found = refs.get(str(c.newsletter).casefold().strip())
            if found is None:
                names = sorted({k for k in refs if not k.isdigit()})
                raise InvalidInput(
                    f"rules: engagement: no newsletter {str(c.newsletter)[:60]!r}; "
                    f"choose one of: {', '.join(names[:12]) or 'none exists yet'}"
                )
            c = c.model_copy(update={"newsletter": found})
        conditions.append(c)
    return group.model_copy(update={"conditions": conditions})


def _name(name: str) -> str:
    return one_line(name, field="segment name", max_length=MAX_NAME, required=True)


def _newsletter_id(session: Session, newsletter: str | int | None) -> int | None:
    if newsletter in (None, ""):
        return None
    return get_newsletter(session, newsletter).id


def create(
    session: Session,
    *,
    name: str,
    rules: Any,
    newsletter: str | int | None = None,
    created_by: str = "",
) -> Segment:
    segment = Segment(
        name=_name(name),
        rules=check_rules(rules, session).model_dump(mode="json"),
        newsletter_id=_newsletter_id(session, newsletter),
        created_by=created_by[:320],
    )
    session.add(segment)
    session.flush()
    return segment


def get(session: Session, segment_id: int) -> Segment:
    segment = session.get(Segment, segment_id)
    if segment is None:
        raise NotFound(f"no segment with id {segment_id}")
    return segment


def list_segments(session: Session, *, newsletter_id: int | None = None) -> list[Segment]:
    """Every segment, or those usable for one newsletter's issues (its own and the shared)."""
    stmt = sm_select(Segment).order_by(col(Segment.name), col(Segment.id))
    if newsletter_id is not None:
        stmt = stmt.where(
            (col(Segment.newsletter_id) == newsletter_id) | col(Segment.newsletter_id).is_(None)
        )
    return list(session.exec(stmt).all())


def update(
    session: Session,
    segment_id: int,
    *,
    name: str | None = None,
    rules: Any = None,
    newsletter: str | int | None = None,
    clear_newsletter: bool = False,
) -> Segment:
    segment = get(session, segment_id)
    if name is not None:
        segment.name = _name(name)
    if rules is not None:
        segment.rules = check_rules(rules, session).model_dump(mode="json")
    if clear_newsletter:
        segment.newsletter_id = None
    elif newsletter not in (None, ""):
        segment.newsletter_id = _newsletter_id(session, newsletter)
    segment.updated_at = utcnow()
    session.add(segment)
    session.flush()
    return segment


def delete_segment(session: Session, segment_id: int) -> None:
    """Delete a segment no issue names (an issue keeps the segment it was sent to)."""
    segment = get(session, segment_id)
    used = session.exec(sm_select(Issue.id).where(col(Issue.segment_id) == segment_id)).first()
    if used is not None:
        raise InvalidState(f"issue {used} is sent to this segment; it cannot be deleted")
    session.delete(segment)
    session.flush()


def rules_of(segment: Segment) -> Group:
    return segment_rules.parse_rules(segment.rules)


def count_rules(
    session: Session,
    rules: Group,
    *,
    newsletter_id: int | None = None,
    now: datetime | None = None,
) -> int:
    """A newsletter's recipients matching ``rules`` (the send's query); without a newsletter,
    every subscriber matching them. One statement either way."""
    if newsletter_id is not None:
        return reach.count(session, newsletter_id=newsletter_id, rules=rules, now=now)
    stmt = select(func.count()).select_from(SUB).where(segment_rules.where(rules, now=now))
    return int(session.execute(stmt).scalar_one())


def count(session: Session, segment: Segment) -> int:
    return count_rules(session, rules_of(segment), newsletter_id=segment.newsletter_id)


# ---------------------------------------------------------------- issues


def issue_rules(session: Session, issue: Issue) -> Group | None:
    """The rules of the segment an issue goes to; None: all the newsletter's subscribers."""
    if issue.segment_id is None:
        return None
    return rules_of(get(session, issue.segment_id))


def set_issue_segment(session: Session, issue: Issue, segment_id: int | None) -> None:
    """Send an issue not started yet to a segment (of its newsletter, or shared), or to all."""
    if segment_id == issue.segment_id:
        return
    if issue.status not in (*NOT_STARTED, "scheduled"):
        raise InvalidState(f"issue {issue.id} is {issue.status}: its audience is fixed")
    if segment_id is not None:
        segment = get(session, segment_id)
        if segment.newsletter_id not in (None, issue.newsletter_id):
            raise InvalidInput(f"segment {segment_id} belongs to another newsletter")
    issue.segment_id = segment_id
    session.add(issue)
    session.flush()


# ---------------------------------------------------------------- tags in bulk


@dataclass(frozen=True)
class TagResult:
    tag: str
    added: int
    removed: int

    def as_dict(self) -> dict[str, Any]:
        return {"tag": self.tag, "added": self.added, "removed": self.removed}


def clean_tag(tag: str) -> str:
    return one_line(tag, field="tag", max_length=64, required=True)


def search_rules(
    *, email: str | None = None, status: str | None = None, newsletter: int | None = None
) -> Group:
    """The subscriber search (address contains, a subscription with status and newsletter) as
    rules, so a search result is tagged like a segment."""
    conditions: list[dict[str, Any]] = []
    if email and email.strip():
        conditions.append({"kind": "email", "value": email.strip()})
    if status or newsletter:
        conditions.append({"kind": "subscription", "status": status, "newsletter": newsletter})
    return check_rules({"match": "all", "conditions": conditions})


def tag(
    session: Session,
    rules: Group,
    tag_name: str,
    *,
    remove: bool = False,
    newsletter_id: int | None = None,
) -> TagResult:
    """Add (insert-or-ignore) or remove ``tag_name`` on everyone ``rules`` match (within a
    newsletter's recipients when ``newsletter_id`` is given): one statement."""
    name = clean_tag(tag_name)
    now = utcnow()
    if newsletter_id is not None:
        ids = reach.recipients(newsletter_id, SUB.c.id, rules=rules, now=now)
    else:
        ids = segment_rules.select_ids(rules, now=now)
    before = _tagged(session, name)
    if remove:
        session.execute(delete(TAG).where(TAG.c.tag == name, TAG.c.subscriber_id.in_(ids)))
    else:
        source = ids.with_only_columns(SUB.c.id, literal(name), literal(now, TAG.c.created_at.type))
        insert_ignore(session, TAG, source, columns=["subscriber_id", "tag", "created_at"])
    after = _tagged(session, name)
    return TagResult(name, max(after - before, 0), max(before - after, 0))


def _tagged(session: Session, name: str) -> int:
    stmt = select(func.count()).select_from(TAG).where(TAG.c.tag == name)
    return int(session.execute(stmt).scalar_one())


def as_mapping(segment: Segment, size: int | None = None) -> Mapping[str, Any]:
    return {
        "id": segment.id,
        "name": segment.name,
        "newsletter_id": segment.newsletter_id,
        "rules": segment.rules,
        "created_at": segment.created_at,
        "updated_at": segment.updated_at,
        "created_by": segment.created_by,
        "size": size,
    }
