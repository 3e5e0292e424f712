"""Analytics (issue 15): what readers did with an issue, counted for the newsroom.

The report's side: ``figures`` (live events plus tallies, in SQL), ``outcomes`` (delivered,
bounced, complained, unsubscribed), ``issue_report`` (one issue, per article and link),
``heat`` (the email with each link's share), ``trends`` (across issues) and ``tables`` (rows
and CSV).
"""

from __future__ import annotations

__all__ = ["issue_report", "trends"]
