"""Analytics (issue 15): click and open tracking, human-or-machine verdicts, retention, and
what readers did with an issue, counted for the newsroom.

The tracking side:

- ``tokens``: the signed per-recipient part of the tracking links.
- ``links``: link rewriting once per issue at freeze time, the ``IssueLink`` rows.
- ``verdicts``: the rules that tell a person from a machine, with their sources.
- ``recording``: the redirect's lookup and the event's record.
- ``retention``: folding old events into counts without subscriber ids; GDPR erase/export.

The report's side: ``figures`` (live events plus tallies, in SQL), ``outcomes`` (delivered,
bounced, complained, unsubscribed), ``issue_report`` (one issue, per article and link),
``heat`` (the email with each link's share), ``trends`` (across issues) and ``tables`` (rows
and CSV).
"""

from __future__ import annotations

from newsletter.analytics.tokens import make_token, read_token
from newsletter.analytics.verdicts import Decision, Limits, Seen, decide

__all__ = ["Decision", "Limits", "Seen", "decide", "make_token", "read_token"]
