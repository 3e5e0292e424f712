"""One beat of the autopilot: fetch the feeds that are due (each at its own interval), draft the
issues whose lead time has begun or the run it missed while it was down, notify the editors.
Each step commits on its own: a feed that fails is recorded on its source and the others go on;
a draft and its claim commit together, before anyone is told."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from newsletter import db, outbound
from newsletter.autopilot import drafting, notify, rules, sources
from newsletter.autopilot.drafting import Drafted
from newsletter.config import Settings
from newsletter.content import qa
from newsletter.exceptions import InvalidInput, UserError
from newsletter.models import AutopilotRun, utcnow
from newsletter.transports import Transport

log = logging.getLogger(__name__)


@dataclass
class BeatResult:
    fetched: list[sources.Fetched] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # "source 3: could not fetch ..."
    drafted: list[Drafted] = field(default_factory=list)
    notified: int = 0
    missed: list[str] = field(default_factory=list)  # "newsletter 2, run ...: missed (why)"


def run(
    settings: Settings,
    *,
    checks: qa.QAConfig,
    transport: Callable[[], Transport],
    now: datetime | None = None,
) -> BeatResult:
    """The beat: ``transport`` is called only when there is a notification to send."""
    now = now or utcnow()
    result = BeatResult()
    with db.session_scope(settings.database_url) as session:
        newsletter_ids = [p.newsletter_id for p in rules.enabled(session)]
        due = [s.id for s in sources.due_feeds(session, now=now, newsletter_ids=newsletter_ids)]
    policy = outbound.OutboundPolicy.from_settings(settings)
    for source_id in due:
        fetch_one(settings, source_id, policy, now=now, into=result)
    for newsletter_id in newsletter_ids:
        try:
            with db.session_scope(settings.database_url) as session:
                missed: list[AutopilotRun] = []
                drafted = drafting.draft_due(
                    session, newsletter_id, checks=checks, now=now, missed=missed
                )
                result.missed += [_missed_line(run) for run in missed]
        except UserError as exc:  # e.g. its zone changed under a rule: the others go on
            result.failed.append(f"newsletter {newsletter_id}: {exc}")
            log.warning("autopilot of newsletter %s: %s", newsletter_id, exc)
            continue
        if drafted is not None:
            result.drafted.append(drafted)
            result.notified += notify_run(settings, drafted.run_id, transport)
    return result


def _missed_line(run: AutopilotRun) -> str:
    when = f"{run.run_at:%Y-%m-%d %H:%M} UTC"
    return f"newsletter {run.newsletter_id}, run {when}: missed ({run.detail['missed']})"


def fetch_one(
    settings: Settings,
    source_id: int | None,
    policy: outbound.OutboundPolicy,
    *,
    now: datetime,
    into: BeatResult,
) -> None:
    assert source_id is not None
    try:
        with db.session_scope(settings.database_url) as session:
            source = sources.get_source(session, source_id)
            into.fetched.append(sources.fetch(session, source, policy, now=now))
    except InvalidInput as exc:  # the failure is on the source already (committed below)
        with db.session_scope(settings.database_url) as session:
            source = sources.get_source(session, source_id)
            source.checked_at, source.last_result = now, f"failed: {exc}"[:2000]
            session.add(source)
        into.failed.append(f"source {source_id}: {exc}")
        log.warning("autopilot source %s: %s", source_id, exc)


def notify_run(settings: Settings, run_id: int, transport: Callable[[], Transport]) -> int:
    """Tell the editors about a run once; the number of notes sent."""
    with db.session_scope(settings.database_url) as session:
        if not notify.claim(session, run_id):
            return 0
        notes = notify.build(settings, session, run_id)
    return notify.send(settings, notes, transport()) if notes else 0
