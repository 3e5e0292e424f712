"""A newsletter's autopilot settings: the schedule, the lead time and the drafting rules, read
and changed with every value checked (one line of ``InvalidInput`` for a bad one)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import Session, select

from newsletter import text
from newsletter.autopilot import schedule
from newsletter.exceptions import InvalidInput
from newsletter.models import Autopilot, Newsletter, utcnow

ORDERS = ("newest", "priority")
NOTHING_NEW = ("skip", "note")
MAX_LEAD_HOURS = 24 * 6  # a weekly run's draft is made within the week before it
#: how late a missed run may still be drafted: 24 h by default (a Monday issue out on Tuesday
#: morning is still this week's news; the beat of a machine off over the weekend catches up a
#: Monday run when it is back that Monday), at most six days (never into the next weekly run)
MAX_CATCH_UP_HOURS = 24 * 6
DEFAULT_NOTE = "No new stories this week: we will be back with the next issue."


def get_autopilot(session: Session, newsletter_id: int) -> Autopilot:
    """The newsletter's autopilot settings (the defaults, switched off, when never set)."""
    found = session.exec(select(Autopilot).where(Autopilot.newsletter_id == newsletter_id)).first()
    return found or Autopilot(newsletter_id=newsletter_id)


def enabled(session: Session) -> list[Autopilot]:
    return list(session.exec(select(Autopilot).where(Autopilot.enabled == True)).all())  # noqa: E712


def update_autopilot(
    session: Session, newsletter: Newsletter, changes: Mapping[str, Any]
) -> Autopilot:
    """Apply the given fields (others keep their values); the rule is read in the newsletter's
    time zone so a bad one is refused now, not at the beat."""
    assert newsletter.id is not None
    pilot = get_autopilot(session, newsletter.id)
    for key, value in changes.items():
        if key not in _CHECKS:
            raise InvalidInput(f"unknown autopilot setting {key!r}")
        setattr(pilot, key, _CHECKS[key](value))
    schedule.parse(pilot.rule, newsletter.time_zone)
    if (pilot.ordering == "priority" or pilot.lead == "priority") and not pilot.priority_tag:
        raise InvalidInput("'priority' needs a priority tag")
    pilot.updated_at = utcnow()
    session.add(pilot)
    session.flush()
    return pilot


def _rule(value: Any) -> str:
    return text.one_line(str(value), field="schedule", max_length=200, required=True).strip()


def _int(low: int, high: int, field: str) -> Any:
    def check(value: Any) -> int:
        try:
            number = int(str(value).strip())
        except ValueError:
            raise InvalidInput(f"{field} must be a whole number") from None
        if not low <= number <= high:
            raise InvalidInput(f"{field} must be between {low} and {high}")
        return number

    return check


def _choice(choices: tuple[str, ...], field: str) -> Any:
    def check(value: Any) -> str:
        if str(value) not in choices:
            raise InvalidInput(f"{field} must be one of: {', '.join(choices)}")
        return str(value)

    return check


def _line(field: str) -> Any:
    def check(value: Any) -> str:
        return text.one_line(str(value or ""), field=field, max_length=200).strip()

    return check


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def sections(value: Any) -> list[list[str]]:
    """The mapping tag or category -> section title, as pairs in order: from a list of pairs,
    a mapping, or lines of text "tag = Section"."""
    if isinstance(value, str):
        pairs: list[Any] = [line.split("=", 1) for line in value.splitlines() if line.strip()]
    elif isinstance(value, Mapping):
        pairs = list(value.items())
    else:
        pairs = list(value or [])
    out: list[list[str]] = []
    for pair in pairs:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise InvalidInput("write each section mapping as 'tag = Section title'")
        tag = text.one_line(str(pair[0]), field="tag", max_length=200).strip()
        title = text.one_line(str(pair[1]), field="section", max_length=200).strip()
        if not tag or not title:
            raise InvalidInput("each section mapping needs a tag and a section title")
        out.append([tag, title])
    return out


def mapping_text(pilot: Autopilot) -> str:
    """The section mapping as the form's lines."""
    return "\n".join(f"{tag} = {title}" for tag, title in pilot.sections)


_CHECKS: dict[str, Any] = {
    "enabled": _bool,
    "rule": _rule,
    "lead_hours": _int(0, MAX_LEAD_HOURS, "the lead time (hours)"),
    "sections": sections,
    "other_section": _line("the section for the rest"),
    "ordering": _choice(ORDERS, "the order"),
    "priority_tag": _line("the priority tag"),
    "per_section": _int(1, 50, "stories per section"),
    "lead": _choice(ORDERS, "the lead story rule"),
    "nothing_new": _choice(NOTHING_NEW, "nothing new"),
    "note_text": lambda v: text.multiline(str(v or ""), field="note", max_length=2000).strip(),
    "auto_schedule": _bool,
    "lookback_days": _int(1, 60, "the look-back (days)"),
    "catch_up_hours": _int(0, MAX_CATCH_UP_HOURS, "the catch-up time (hours)"),
}
