"""The composer's QA panel: the report for a page (SpamAssassin only if already scored) and the
SpamAssassin run itself, which costs seconds and so has its own routes.

``GET /admin/issues/{id}/qa/spam`` (in ``composer``) is the composer page with the draft scored
now: a link that works without JavaScript, and what ``composer.js`` fetches to swap the panel
in; ``.../qa/spam.json`` answers the whole report as JSON. Both read the cache first.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from newsletter.api.admin import views
from newsletter.api.admin.auth import protected_router
from newsletter.api.deps import SessionDep, SettingsDep
from newsletter.api.inputs import Id
from newsletter.config import Settings
from newsletter.content import issues, qa, rendering
from newsletter.content.spam_check import SpamReport
from newsletter.sending.checks import SpamMode, qa_config

router = protected_router()


def qa_for(
    settings: Settings, outline: issues.IssueOutline, *, spam: SpamMode = "cached"
) -> qa.QAReport:
    compiled = rendering.compile_issue(outline) if outline.items else None
    return qa.qa_report(outline, compiled=compiled, checks=qa_config(settings, spam=spam))


def spam_json(spam: SpamReport | None, settings: Settings) -> dict[str, Any]:
    """What the panel shows of SpamAssassin, as data; ``state`` says which of it applies."""
    if settings.spam_check == "off":
        return {"state": "off"}
    if spam is None:
        return {"state": "pending"}
    result = spam.result
    if not result.available:
        return {"state": "unavailable", "problem": result.problem}
    return {
        "state": "scored",
        "score": result.score,
        "threshold": spam.threshold,
        "blocking": spam.blocking,
        "engine": result.engine,
        "seconds": result.seconds,
        "rules": [
            {"name": r.name, "points": r.points, "description": r.description} for r in result.rules
        ],
    }


def report_json(report: qa.QAReport, settings: Settings) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "findings": [
            {"code": f.code, "message": f.message, "blocking": f.blocking} for f in report.findings
        ],
        "spam": spam_json(report.spam, settings),
    }


@router.get("/issues/{issue_id}/qa/spam.json", include_in_schema=False)
def spam_check_json(issue_id: Id, session: SessionDep, settings: SettingsDep) -> Response:
    report = qa_for(settings, issues.load_outline(session, issue_id), spam="run")
    return views.json_response(report_json(report, settings))
