"""Subject tests, set up: two to four subjects, each sent to a share of the recipients, the
winner by unique human clicks (or opens) after a wait going to the rest (issue 15, item 4).

An editor sets the test on an issue not started yet (``configure``; the API, the CLI and the
send card call it before ``start_send``, in the same transaction). The ledger's fill draws the
sample (``subject_pick.assign``); the tick picks the winner when the wait is over
(``subject_pick.decide_due``), or an editor picks it early (``subject_pick.decide``). ``summary``
is what the sending view, the status and the CLI show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from newsletter import text
from newsletter.content.issues import SUBJECT_MAX
from newsletter.exceptions import InvalidInput, InvalidState
from newsletter.models import Issue, IssueStatus, Newsletter, SubjectTest
from newsletter.sending.local_time import NOT_WITH_SUBJECT_TEST
from newsletter.statuses import NOT_STARTED

METRICS = ("clicks", "opens")
#: a variant's figures as kept at the pick (openers and clickers: unique humans of each)
FIGURES = ("recipients", "sent", "uniques", "openers", "clickers")
MIN_SUBJECTS, MAX_SUBJECTS = 2, 4
MIN_WAIT, MAX_WAIT = 60, 14 * 86_400  # a minute .. two weeks
_WAIT = re.compile(r"(\d+)\s*([dhms])")
_UNIT = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}


@dataclass(frozen=True)
class TestSpec:
    """What an editor asks for: the subjects (variant n is the n-th), the percent of the
    recipients each gets, the wait before the pick and what the pick counts."""

    subjects: tuple[str, ...]
    sample: int  # percent of the recipients per subject
    wait_seconds: int
    metric: str = "clicks"


def parse_wait(value: str) -> int:
    """``4h``, ``90m``, ``1d12h``, ``45s`` (or bare minutes, ``30``) as seconds."""
    raw = value.strip().lower()
    if raw.isdigit():
        return int(raw) * 60
    parts = _WAIT.findall(raw)
    if not parts or _WAIT.sub("", raw).strip():
        raise InvalidInput(f"wait {value[:40]!r}: write it as 4h, 90m, 1d or 1h30m")
    return sum(int(n) * _UNIT[unit] for n, unit in parts)


def spec(subjects: list[str], *, sample: int, wait: str | int, metric: str) -> TestSpec:
    """A checked ``TestSpec`` from the form's, the API's or the CLI's values."""
    cleaned = tuple(
        text.one_line(s, field=f"subject {i}", max_length=SUBJECT_MAX, required=True)
        for i, s in enumerate(subjects, 1)
    )
    if not MIN_SUBJECTS <= len(cleaned) <= MAX_SUBJECTS:
        raise InvalidInput(f"a subject test needs 2 to 4 subjects, not {len(cleaned)}")
    if len({s.casefold() for s in cleaned}) != len(cleaned):
        raise InvalidInput("the subjects of a test must differ from each other")
    if not 1 <= sample <= 100 or sample * len(cleaned) > 100:
        raise InvalidInput(
            f"the sample is {sample}% per subject: between 1 and {100 // len(cleaned)}% for "
            f"{len(cleaned)} subjects (their shares cannot sum over 100%)"
        )
    seconds = wait if isinstance(wait, int) else parse_wait(wait)
    if not MIN_WAIT <= seconds <= MAX_WAIT:
        raise InvalidInput("the wait before the pick is between 1 minute and 14 days")
    if metric not in METRICS:
        raise InvalidInput(f"a subject test picks by clicks or opens, not {metric[:20]!r}")
    return TestSpec(cleaned, sample, seconds, metric)


def refuse_untracked(newsletter: Newsletter, metric: str) -> None:
    """A test by clicks needs tracked links, by opens the open pixel: nothing to count else."""
    if metric == "clicks" and not newsletter.track_clicks:
        raise InvalidInput(
            f"{newsletter.name} does not track clicks: turn click tracking on in its settings, "
            "or test by opens"
        )
    if metric == "opens" and not newsletter.track_opens:
        raise InvalidInput(
            f"{newsletter.name} does not track opens: turn open tracking on in its settings, "
            "or test by clicks"
        )


def configure(session: Session, issue: Issue, test: TestSpec | None) -> SubjectTest | None:
    """Set (or with None drop) the issue's subject test; only before its send starts."""
    if issue.status not in (*NOT_STARTED, IssueStatus.scheduled):
        raise InvalidState(f"issue {issue.id} is {issue.status}: its subject test is fixed")
    row = session.get(SubjectTest, issue.id)
    if test is None:
        if row is not None:
            session.delete(row)
            session.flush()
        return None
    if issue.local_time:
        raise InvalidInput(NOT_WITH_SUBJECT_TEST)
    newsletter = session.get(Newsletter, issue.newsletter_id)
    assert newsletter is not None
    refuse_untracked(newsletter, test.metric)
    assert issue.id is not None
    row = row or SubjectTest(issue_id=issue.id, variants=[], wait_seconds=test.wait_seconds)
    row.variants = [{"subject": s, "share": test.sample} for s in test.subjects]
    row.metric, row.wait_seconds = test.metric, test.wait_seconds
    session.add(row)
    session.flush()
    return row


def get(session: Session, issue_id: int) -> SubjectTest | None:
    return session.get(SubjectTest, issue_id)


def subjects(session: Session, issue_id: int) -> dict[int, str]:
    """Variant number -> subject ({} without a test): what the message template needs."""
    row = get(session, issue_id)
    if row is None:
        return {}
    return {n: str(v["subject"]) for n, v in enumerate(row.variants, 1)}


def letter(variant: int) -> str:
    return "ABCD"[variant - 1] if 1 <= variant <= 4 else str(variant)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)  # SQLite gives times back without their zone


def _wait_text(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    return " ".join(
        p for p in (f"{hours}h" if hours else "", f"{minutes}m" if minutes else "") if p
    )


def headline(row: SubjectTest) -> str:
    """One line: the test set up, running (winner at HH:MM UTC) or decided (who won, why)."""
    count = "unique human clickers" if row.metric == "clicks" else "unique human openers"
    if row.winner is not None:
        return row.reason or f"{letter(row.winner)} won"
    decide_at = _aware(row.decide_at)
    if decide_at is None:
        return (
            f"subject test: {len(row.variants)} subjects, {row.variants[0]['share']}% each, "
            f"winner by {count} after {_wait_text(row.wait_seconds) or '0m'}"
        )
    return f"testing subjects, winner at {decide_at:%H:%M} UTC (by {count})"


def summary(session: Session, issue_id: int) -> dict[str, Any] | None:
    """The test as the status shows it (None without one): each variant with its figures."""
    row = get(session, issue_id)
    if row is None:
        return None
    shown = {f["variant"]: f for f in row.figures}
    decide_at = _aware(row.decide_at)
    return {
        "metric": row.metric,
        "wait_seconds": row.wait_seconds,
        "decide_at": decide_at.isoformat() if decide_at else None,
        "winner": row.winner,
        "decided_by": row.decided_by,
        "headline": headline(row),
        "variants": [
            {
                "variant": n,
                "letter": letter(n),
                "subject": v["subject"],
                "share": v["share"],
                **{k: shown.get(n, {}).get(k) for k in FIGURES},
            }
            for n, v in enumerate(row.variants, 1)
        ],
    }
