"""The composer's editions page: each language's text side by side with the default's.

``/admin/issues/{id}/editions?lang=be`` shows the default edition's subject, preheader, title,
intro and every story's headline, blurb and image alt text on the left and the chosen edition's
fields on the right (empty: not translated; the newsletter's ``missing_translation`` says what
then). Routes do HTTP only (``content.editions``); every change is a form POST answered with
a 303.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from starlette.responses import Response

from newsletter.api.admin import views
from newsletter.api.admin.auth import protected_router
from newsletter.api.admin.composer import PREVIEW_HEADERS
from newsletter.api.deps import SessionDep, SettingsDep
from newsletter.api.inputs import Id
from newsletter.config import Settings
from newsletter.content import editions, issues, rendering
from newsletter.content.archive_editions import language_name
from newsletter.content.edition_render import edition_outline
from newsletter.content.editions import EditionText
from newsletter.content.issues import IssueOutline
from newsletter.exceptions import NotFound
from newsletter.sending import edition_freeze, recipients
from newsletter.sending.checks import qa_config
from newsletter.statuses import NOT_STARTED

router = protected_router()
Language = Annotated[str, Form(max_length=35)]


def page_url(issue_id: int, language: str | None = None) -> str:
    url = f"/admin/issues/{issue_id}/editions"
    return f"{url}?lang={language}" if language else url


def _findings(settings: Settings, outline: IssueOutline, text: EditionText | None) -> list[str]:
    """The chosen edition's QA, as the send's freeze will see it (``edition_freeze.check``)."""
    if text is None or not outline.items:
        return []
    edition = edition_outline(outline, text)
    compiled = rendering.compile_issue(edition.outline)
    return edition_freeze.check(edition, compiled, qa_config(settings, spam="skip"))


@router.get("/issues/{issue_id}/editions", include_in_schema=False)
def editions_page(
    request: Request, issue_id: Id, session: SessionDep, settings: SettingsDep, lang: str = ""
) -> Response:
    outline = issues.load_outline(session, issue_id)
    found = editions.list_editions(session, issue_id)
    chosen = next((t for t in found if t.edition.language == lang), found[0] if found else None)
    missing = edition_outline(outline, chosen).missing if chosen else []
    return views.render(
        request,
        "editions.html.j2",
        title=f"{outline.newsletter.name} #{outline.issue.number}: editions",
        outline=outline,
        issue=outline.issue,
        editions=found,
        chosen=chosen,
        names={t.edition.language: language_name(t.edition.language) for t in found},
        default_name=language_name(outline.newsletter.language),
        editable=outline.issue.status in NOT_STARTED,
        missing=missing,
        missing_fields=[m for m in missing if not m.startswith("story ")],
        missing_stories=sum(1 for m in missing if m.startswith("story ")),
        blocking=_findings(settings, outline, chosen),
    )


@router.get("/issues/{issue_id}/editions/{language}/preview.html", include_in_schema=False)
def edition_preview(
    issue_id: Id, language: str, session: SessionDep, settings: SettingsDep
) -> Response:
    """The edition's email as a reader of it would get it now (the composer's preview's twin)."""
    outline = issues.load_outline(session, issue_id)
    found = [t for t in editions.list_editions(session, issue_id) if t.edition.language == language]
    if not found:
        raise NotFound(f"issue {issue_id} has no {language[:35]!r} edition")
    edition = edition_outline(outline, found[0])
    url = edition_freeze.edition_view_url(settings.base_url, outline, language)
    compiled = edition_freeze.edition_values(
        rendering.compile_issue(edition.outline), url, language, greeting=True
    )
    values, _ = recipients.recipient_values(
        settings, outline.newsletter, outline.issue, subscriber_id=0, email="", name=""
    )
    html, _text = rendering.personalise(compiled, values)
    return Response(html, media_type="text/html; charset=utf-8", headers=PREVIEW_HEADERS)


@router.post("/issues/{issue_id}/editions", include_in_schema=False)
def add_edition(
    request: Request, issue_id: Id, session: SessionDep, language: Language
) -> Response:
    edition = editions.add_edition(session, issue_id=issue_id, language=language)
    notice = f"{language_name(edition.language)} edition added."
    return views.redirect(request, page_url(issue_id, edition.language), notice=notice)


@router.post("/issues/{issue_id}/editions/{language}", include_in_schema=False)
async def save_edition(
    request: Request, issue_id: Id, language: str, session: SessionDep
) -> Response:
    form = await request.form()
    fields = {f: str(form.get(f, "")) for f in editions.FIELDS if f in form}
    edition = editions.set_fields(session, issue_id=issue_id, language=language, values=fields)
    outline = issues.load_outline(session, issue_id)
    for sec in outline.sections:
        if f"section_{sec.section.id}" in form:
            editions.set_section(
                session,
                issue_id=issue_id,
                language=edition.language,
                section_id=sec.section.id or 0,
                title=str(form.get(f"section_{sec.section.id}", "")),
            )
    for item in outline.items:
        key = item.item.id
        if any(f"{field}_{key}" in form for field in ("headline", "blurb", "alt")):
            editions.set_item(
                session,
                issue_id=issue_id,
                language=edition.language,
                item_id=key or 0,
                headline=str(form.get(f"headline_{key}", "")),
                blurb=str(form.get(f"blurb_{key}", "")),
                image_alt=str(form.get(f"alt_{key}", "")) if f"alt_{key}" in form else None,
            )
    notice = f"{language_name(edition.language)} edition saved."
    return views.redirect(request, page_url(issue_id, edition.language), notice=notice)


@router.post("/issues/{issue_id}/editions/{language}/remove", include_in_schema=False)
def remove_edition(request: Request, issue_id: Id, language: str, session: SessionDep) -> Response:
    editions.remove_edition(session, issue_id=issue_id, language=language)
    return views.redirect(request, page_url(issue_id), notice="Edition removed.")
