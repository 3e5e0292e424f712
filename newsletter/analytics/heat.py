"""The heat view: an issue's frozen email with each tracked link's share of human clicks
written beside it.

Tracked links in the frozen HTML point at ``{base_url}/r/{issue_id}/{n}/{token}``; ``n`` is read
from the href and a small badge is put just before the link. The result is shown in a sandboxed
frame (no script, no forms), like the composer's preview.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

from sqlmodel import Session

from newsletter.analytics.issue_report import LinkRow
from newsletter.content.rendering import Personaliser
from newsletter.exceptions import NotFound
from newsletter.models import RenderedIssue

__all__ = ["annotate", "heat_html"]

_TAG = re.compile(r"<a\b[^>]*?\bhref\s*=\s*(['\"])(?P<href>[^'\"]*)\1[^>]*>", re.IGNORECASE)
BADGE = (
    '<span data-link="{n}" title="{title}" style="display:inline-block;margin:0 4px 2px 0;'
    "padding:1px 5px;border-radius:3px;font:bold 12px/1.4 Arial,sans-serif;"
    'color:#fff;background:{colour};text-decoration:none;vertical-align:middle">{label}</span>'
)


def _tracked(issue_id: int) -> re.Pattern[str]:
    return re.compile(rf"/r/{issue_id}/(\d+)(?:/|$)")


def _colour(share: float) -> str:
    """Darker for a larger share: five steps of one hue (text stays white, contrast >= 4.5)."""
    steps = ("#5b6b7a", "#8a4b08", "#a33a00", "#b3261e", "#7f0000")
    return steps[min(int(share * 10), len(steps) - 1)] if share > 0 else steps[0]


def annotate(frozen: str, issue_id: int, links: Mapping[int, LinkRow]) -> str:
    """``frozen`` with a badge before each tracked link of ``issue_id``: its share and clicks."""
    tracked = _tracked(issue_id)

    def badge(match: re.Match[str]) -> str:
        found = tracked.search(html.unescape(match.group("href")))
        row = links.get(int(found.group(1))) if found else None
        if row is None:
            return match.group(0)
        label = f"{row.share * 100:.1f}%"
        title = (
            f"link {row.n}: {row.clicks} human clicks ({row.clickers} readers), "
            f"{row.machine_clicks} machine clicks"
        )
        return BADGE.format(
            n=row.n, title=html.escape(title), colour=_colour(row.share), label=label
        ) + match.group(0)

    return _TAG.sub(badge, frozen)


def heat_html(session: Session, issue_id: int, links: list[LinkRow]) -> str:
    """The frozen email of a sent issue, annotated (NotFound before it was frozen)."""
    frozen = session.get(RenderedIssue, issue_id)
    if frozen is None:
        raise NotFound(f"issue {issue_id} has no frozen email yet: it was never sent")
    # no reader's values: the greeting a nameless reader gets, the personal links left empty
    shown = Personaliser(frozen.html, html_escape=True)({"greeting": "Dear reader,"})
    return annotate(shown, issue_id, {row.n: row for row in links})
