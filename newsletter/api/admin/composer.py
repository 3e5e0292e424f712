"""The issue composer: details, sections, items, preview, QA, test send, schedule, send now.

Routes do HTTP only: ``content.issues`` changes the outline, ``content.rendering`` and
``sending.previews`` render it, ``sending.testsend`` and ``sending.start`` send. Every change is a
plain form POST answered with a 303 back to the composer (so the pages work without
JavaScript); ``composer.js`` submits the same forms with fetch and swaps the outline, the QA panel
and the preview in place.

The preview is the real email (the MJML compiled by mjml-python, personalised with a sample
reader), served with ``Content-Security-Policy: sandbox`` and shown in an ``<iframe sandbox>``:
no script in it runs, even if something got past the article sanitiser.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Form, Request
from sqlmodel import Session
from starlette.responses import PlainTextResponse, Response

from newsletter.api.admin import views
from newsletter.api.admin.auth import protected_router
from newsletter.api.admin.composer_qa import qa_for, report_json
from newsletter.api.deps import DispatcherDep, SessionDep, SettingsDep
from newsletter.api.inputs import Id
from newsletter.audience import segments
from newsletter.config import Settings
from newsletter.content import articles, issues, review
from newsletter.exceptions import InvalidInput, NotFound
from newsletter.models import Issue, IssueItem, IssueSection, IssueStatus
from newsletter.sending import controls, previews, subject_tests, testsend, welcome
from newsletter.sending.checks import SpamMode, qa_config
from newsletter.sending.start import recipient_count, start_send
from newsletter.statuses import NOT_STARTED

router = protected_router()

PREVIEW_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    # sandbox: an opaque origin with scripts, forms and popups off, however the page is opened
    "Content-Security-Policy": (
        "sandbox; default-src 'none'; img-src https: http: data:; style-src 'unsafe-inline'; "
        "font-src https: data:; frame-ancestors 'self'"
    ),
}
EDITABLE = (*NOT_STARTED, IssueStatus.scheduled)

Text = Annotated[str, Form(max_length=20_000)]
Short = Annotated[str, Form(max_length=1000)]


def composer_url(issue_id: int) -> str:
    return f"/admin/issues/{issue_id}"


# ---------------------------------------------------------------- issues


@router.post("/issues", include_in_schema=False)
def create_issue(
    request: Request,
    session: SessionDep,
    newsletter: Annotated[str, Form(max_length=100)],
    title: Short,
) -> Response:
    issue = issues.create_issue(session, newsletter=newsletter, title=title)
    request.state.audit_target = ("issue", issue.id)  # its author, for the review rule
    return views.redirect(request, composer_url(issue.id or 0), notice="Draft created.")


@router.get("/issues/{issue_id}", include_in_schema=False)
def composer(
    request: Request, issue_id: Id, session: SessionDep, settings: SettingsDep, q: str = ""
) -> Response:
    return _composer_page(request, issue_id, session, settings, q=q, spam="cached")


@router.get("/issues/{issue_id}/qa/spam", include_in_schema=False)
def composer_spam(
    request: Request, issue_id: Id, session: SessionDep, settings: SettingsDep
) -> Response:
    """The composer with SpamAssassin run now (seconds): a plain link, or composer.js's fetch."""
    return _composer_page(request, issue_id, session, settings, q="", spam="run")


def _composer_page(
    request: Request,
    issue_id: int,
    session: Session,
    settings: Settings,
    *,
    q: str,
    spam: SpamMode,
) -> Response:
    outline = issues.load_outline(session, issue_id)
    if outline.issue.status not in EDITABLE:
        return views.redirect(request, f"/admin/issues/{issue_id}/sending")
    in_issue = {it.article.id for it in outline.items}
    library = articles.list_articles(session, search=q or None, limit=15)
    standing = welcome.about(session, outline.issue) if outline.issue.kind == "welcome" else None
    label = "welcome email" if standing else f"#{outline.issue.number}"
    return views.render(
        request,
        "composer.html.j2",
        title=f"{outline.newsletter.name} {label}: {outline.issue.title}",
        standing=standing,
        outline=outline,
        issue=outline.issue,
        editable=outline.issue.status in NOT_STARTED,
        qa=qa_for(settings, outline, spam=spam),
        spam_check=settings.spam_check,
        library=library,
        in_issue=in_issue,
        q=q,
        recipients=_reach(session, outline.issue),
        segments=segments.list_segments(session, newsletter_id=outline.newsletter.id),
        subject_test=subject_tests.get(session, issue_id),
        comments=review.comments(session, issue_id),
        item_titles={it.item.id: it.article.title for it in outline.items},
        last_author=review.last_author(session, issue_id),
        needs_approval=outline.newsletter.requires_review
        and outline.issue.status != IssueStatus.approved,
    )


@router.post("/issues/{issue_id}/details", include_in_schema=False)
def save_details(
    request: Request,
    issue_id: Id,
    session: SessionDep,
    title: Short,
    subject: Short = "",
    preheader: Short = "",
    intro_md: Text = "",
) -> Response:
    issues.update_issue(
        session,
        issue_id=issue_id,
        title=title,
        subject=subject.strip(),
        preheader=preheader.strip(),
        intro_md=intro_md,
    )
    return views.redirect(request, composer_url(issue_id), notice="Details saved.")


@router.post("/issues/{issue_id}/sections", include_in_schema=False)
def add_section(request: Request, issue_id: Id, session: SessionDep, title: Short) -> Response:
    issues.add_section(session, issue_id=issue_id, title=title)
    return views.redirect(request, composer_url(issue_id), notice=f"Section {title!r} added.")


def _section_issue(session: Session, section_id: int) -> int:
    section = session.get(IssueSection, section_id)
    if section is None:
        raise NotFound(f"no section with id {section_id}")
    return section.issue_id


def _item_issue(session: Session, item_id: int) -> int:
    item = session.get(IssueItem, item_id)
    if item is None:
        raise NotFound(f"no issue item with id {item_id}")
    return _section_issue(session, item.section_id)


@router.post("/sections/{section_id}/move", include_in_schema=False)
def move_section(
    request: Request, section_id: Id, session: SessionDep, position: Annotated[int, Form()]
) -> Response:
    section = issues.move_section(session, section_id=section_id, position=position)
    return views.redirect(request, composer_url(section.issue_id), notice="Section moved.")


@router.post("/sections/{section_id}/rename", include_in_schema=False)
def rename_section(request: Request, section_id: Id, session: SessionDep, title: Short) -> Response:
    section = issues.rename_section(session, section_id=section_id, title=title)
    return views.redirect(request, composer_url(section.issue_id), notice="Section renamed.")


@router.post("/sections/{section_id}/delete", include_in_schema=False)
def delete_section(request: Request, section_id: Id, session: SessionDep) -> Response:
    issue_id = _section_issue(session, section_id)
    issues.remove_section(session, section_id=section_id)
    return views.redirect(request, composer_url(issue_id), notice="Section removed.")


@router.post("/issues/{issue_id}/items", include_in_schema=False)
def add_item(
    request: Request,
    issue_id: Id,
    session: SessionDep,
    article_id: Annotated[Id, Form()],
    section_id: Annotated[Id, Form()],
) -> Response:
    if _section_issue(session, section_id) != issue_id:
        raise InvalidInput(f"section {section_id} is not in issue {issue_id}")
    issues.add_item(session, section_id=section_id, article_id=article_id)
    return views.redirect(request, composer_url(issue_id), notice="Article added.")


@router.post("/items/{item_id}/move", include_in_schema=False)
def move_item(
    request: Request,
    item_id: Id,
    session: SessionDep,
    position: Annotated[int | None, Form()] = None,
    section_id: Annotated[Id | None, Form()] = None,
) -> Response:
    issue_id = _item_issue(session, item_id)
    issues.move_item(
        session,
        item_id=item_id,
        position=position if position is not None else 10**6,
        section_id=section_id,
    )
    return views.redirect(request, composer_url(issue_id), notice="Item moved.")


@router.post("/items/{item_id}/blurb", include_in_schema=False)
def set_blurb(request: Request, item_id: Id, session: SessionDep, blurb: Text = "") -> Response:
    issue_id = _item_issue(session, item_id)
    issues.set_blurb(session, item_id=item_id, blurb=blurb.strip() or None)
    return views.redirect(request, composer_url(issue_id), notice="Blurb saved.")


@router.post("/items/{item_id}/delete", include_in_schema=False)
def delete_item(request: Request, item_id: Id, session: SessionDep) -> Response:
    issue_id = _item_issue(session, item_id)
    issues.remove_item(session, item_id=item_id)
    return views.redirect(request, composer_url(issue_id), notice="Item removed.")


# ---------------------------------------------------------------- preview and QA


@router.get("/issues/{issue_id}/preview.html", include_in_schema=False)
def preview_html(issue_id: Id, settings: SettingsDep) -> Response:
    html, _ = previews.preview(settings, issue_id=issue_id)
    return Response(html, media_type="text/html; charset=utf-8", headers=PREVIEW_HEADERS)


@router.get("/issues/{issue_id}/preview.txt", include_in_schema=False)
def preview_text(issue_id: Id, settings: SettingsDep) -> Response:
    _, text = previews.preview(settings, issue_id=issue_id)
    return PlainTextResponse(text, headers=PREVIEW_HEADERS)


@router.get("/issues/{issue_id}/qa.json", include_in_schema=False)
def qa_json(issue_id: Id, session: SessionDep, settings: SettingsDep) -> Response:
    report = qa_for(settings, issues.load_outline(session, issue_id))
    return views.json_response(report_json(report, settings))


# ---------------------------------------------------------------- test send, schedule, send


@router.post("/issues/{issue_id}/test-send", include_in_schema=False)
def test_send(request: Request, issue_id: Id, settings: SettingsDep, addresses: Short) -> Response:
    result = testsend.send_test(settings, issue_id=issue_id, addresses=addresses)
    if result.failed:
        failures = "; ".join(f"{a}: {why}" for a, why in result.failed.items())
        sent = f" Sent to {', '.join(result.sent)}." if result.sent else ""
        return views.redirect(
            request, composer_url(issue_id), error=f"Test send failed for {failures}.{sent}"
        )
    return views.redirect(
        request, composer_url(issue_id), notice=f"Test sent to {', '.join(result.sent)}."
    )


def _utc(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{value!r} is not a date and time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@router.post("/issues/{issue_id}/schedule", include_in_schema=False)
def schedule(
    request: Request,
    issue_id: Id,
    session: SessionDep,
    settings: SettingsDep,
    at: Annotated[str, Form(max_length=40)],
) -> Response:
    moment = _utc(at)
    controls.schedule(session, issue_id=issue_id, at=moment, checks=qa_config(settings))
    return views.redirect(
        request,
        composer_url(issue_id),
        notice=f"Scheduled for {moment:%Y-%m-%d %H:%M} UTC.",
    )


@router.post("/issues/{issue_id}/unschedule", include_in_schema=False)
def unschedule(request: Request, issue_id: Id, session: SessionDep) -> Response:
    controls.unschedule(session, issue_id=issue_id)
    return views.redirect(request, composer_url(issue_id), notice="Back to draft.")


def _reach(session: Session, issue: Issue) -> int:
    """The send's own count: the newsletter's active subscribers, within its segment."""
    return recipient_count(session, newsletter_id=issue.newsletter_id, segment_id=issue.segment_id)


@router.post("/issues/{issue_id}/segment", include_in_schema=False)
def choose_segment(
    request: Request,
    issue_id: Id,
    session: SessionDep,
    segment: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    """Send the issue to a segment of its newsletter's subscribers ("": to all of them)."""
    if segment and not (segment.isascii() and segment.isdigit()):
        raise InvalidInput("choose a segment from the list")
    issue = issues.get_issue(session, issue_id)
    segments.set_issue_segment(session, issue, int(segment) if segment else None)
    notice = f"Audience: {_reach(session, issue):,} recipients."
    return views.redirect(request, composer_url(issue_id), notice=notice)


@router.get("/issues/{issue_id}/send", include_in_schema=False)
def confirm_send(
    request: Request, issue_id: Id, session: SessionDep, settings: SettingsDep
) -> Response:
    outline = issues.load_outline(session, issue_id)
    if outline.issue.status not in EDITABLE:
        return views.redirect(request, f"/admin/issues/{issue_id}/sending")
    return views.render(
        request,
        "send_confirm.html.j2",
        title=f"Send #{outline.issue.number}: {outline.issue.title}",
        outline=outline,
        issue=outline.issue,
        qa=qa_for(settings, outline, spam="run"),
        recipients=_reach(session, outline.issue),
        segment=segments.get(session, outline.issue.segment_id)
        if outline.issue.segment_id
        else None,
        subject_test=subject_tests.summary(session, issue_id),
    )


@router.post("/issues/{issue_id}/send", include_in_schema=False)
def send_now(
    request: Request,
    issue_id: Id,
    session: SessionDep,
    settings: SettingsDep,
    dispatch: DispatcherDep,
    recipients: Annotated[int, Form()],
) -> Response:
    """Start the send the editor confirmed; refused when the audience changed since."""
    issue = issues.get_issue(session, issue_id)
    now = _reach(session, issue)
    if issue.status in EDITABLE and now != recipients:
        return views.redirect(
            request,
            f"/admin/issues/{issue_id}/send",
            error=f"The audience changed to {now:,} recipients since you looked; check again.",
        )
    start = start_send(settings, session, issue_id=issue_id, dispatch=dispatch)
    notice = f"Preparing the send to {start.recipients:,} recipients." if start.started else None
    return views.redirect(request, f"/admin/issues/{issue_id}/sending", notice=notice)
