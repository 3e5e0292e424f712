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

import importlib
from typing import Any

#: the wing's public verbs and where they live; each module is imported when first asked for,
#: so that a caller of one part (the seeding's rules and sources) does not load the drafting
#: and the beat with it
_WHERE = {
    "BeatResult": "beat",
    "run": "beat",
    "Drafted": "drafting",
    "draft_due": "drafting",
    "get_autopilot": "rules",
    "update_autopilot": "rules",
    "due_run": "runs",
    "Schedule": "schedule",
    "parse": "schedule",
    "Fetched": "sources",
    "add_feed": "sources",
    "add_query": "sources",
    "fetch": "sources",
    "list_sources": "sources",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
