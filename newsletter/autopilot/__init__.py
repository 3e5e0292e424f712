"""The digest autopilot (issue 16): sources, a recurring schedule, the issue drafted before it.

- ``sources``: a newsletter's feed URLs (RSS/Atom/JSON Feed, conditional GET) and library queries
- ``schedule``: "mon 08:00" or a cron expression in the newsletter's zone, across DST changes
- ``rules``: the autopilot's settings (schedule, lead time, section mapping, order, caps)
- ``selection``: the new stories, grouped into sections, ordered, capped, the lead picked
- ``runs``: the run due now: the next in its lead time, or the one the beat missed, late
- ``drafting``: the run claimed once and its issue drafted, to review or scheduled
- ``notify``: the editors' e-mail about a drafted run, with a link to the composer
- ``beat``: one beat: due feeds fetched, due issues drafted, editors told

The Celery task ``worker.tasks.autopilot`` calls ``beat.run``; the names below are the wing's
public verbs, in one place.
"""

from __future__ import annotations

from newsletter.autopilot.beat import BeatResult, run
from newsletter.autopilot.drafting import Drafted, draft_due
from newsletter.autopilot.rules import get_autopilot, update_autopilot
from newsletter.autopilot.runs import due_run
from newsletter.autopilot.schedule import Schedule, parse
from newsletter.autopilot.sources import Fetched, add_feed, add_query, fetch, list_sources

__all__ = [
    "BeatResult",
    "Drafted",
    "Fetched",
    "Schedule",
    "add_feed",
    "add_query",
    "draft_due",
    "due_run",
    "fetch",
    "get_autopilot",
    "list_sources",
    "parse",
    "run",
    "update_autopilot",
]
