"""The article library: list with filters, new/edit form, import from a feed URL or a file.

Routes do HTTP only: the form's text goes to ``ArticleCreate.parse`` as typed, and
``newsletter.content.articles`` validates, sanitises and stores. An article's URL is its
identity: creating one with a URL already in the library, or moving one to another article's
URL, is refused with a message (never merged), and the form comes back with what was typed.
Imports answer with a result page: the counts and one line per rejected item.
"""

from __future__ import annotations

from datetime import UTC, date
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import Depends, File, Form, Request, UploadFile
from starlette.responses import Response

from newsletter.api.admin import views
from newsletter.api.admin.auth import protected_router
from newsletter.api.deps import SessionDep, SettingsDep
from newsletter.api.inputs import Id, Page
from newsletter.content import articles
from newsletter.content.articles import ArticleCreate
from newsletter.exceptions import InvalidInput, NotFound, UserError
from newsletter.models import Article
from newsletter.outbound import OutboundPolicy

router = protected_router()

PER_PAGE = 50
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
#: the longest text a form field takes (the page's inputs say the same); longer is refused
FIELD_MAX = 2000
FIELD_MAX_OF = {"summary": 500_000, "bullet": 500_000, "body_html": 500_000, "published_at": 40}


def edit_url(article_id: int | None) -> str:
    return f"/admin/articles/{article_id}"


def _day(value: str, label: str) -> date | None:
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"{label} {value!r} is not a date (YYYY-MM-DD)") from None


@router.get("/articles", include_in_schema=False)
def article_list(
    request: Request,
    session: SessionDep,
    q: str = "",
    section: str = "",
    tag: str = "",
    published_from: str = "",
    published_to: str = "",
    page: Page = 1,
) -> Response:
    page = max(page, 1)
    found = articles.list_articles(
        session,
        search=q or None,
        section=section or None,
        tag=tag or None,
        published_from=_day(published_from, "'Published from'"),
        published_to=_day(published_to, "'Published to'"),
        limit=PER_PAGE + 1,
        offset=(page - 1) * PER_PAGE,
    )
    filters = {
        "q": q,
        "section": section,
        "tag": tag,
        "published_from": published_from,
        "published_to": published_to,
    }

    def page_link(number: int) -> str:
        kept = {k: v for k, v in filters.items() if v}
        return "/admin/articles?" + urlencode({**kept, "page": number})

    return views.render(
        request,
        "articles.html.j2",
        title="Articles",
        items=found[:PER_PAGE],
        sections=articles.list_sections(session),
        filters=filters,
        filtered=any(filters.values()),
        page=page,
        previous_page=page_link(page - 1) if page > 1 else None,
        next_page=page_link(page + 1) if len(found) > PER_PAGE else None,
    )


def _form_values(article: Article | None) -> dict[str, str]:
    """What the form shows: the article's fields as text (published_at in UTC)."""
    if article is None:
        return dict.fromkeys(ArticleCreate.model_fields, "")
    published = article.published_at
    if published is not None and published.tzinfo is not None:
        published = published.astimezone(UTC)
    return {
        "url": article.url,
        "title": article.title,
        "summary": article.summary,
        "bullet": article.bullet,
        "body_html": article.body_html,
        "image_url": article.image_url or "",
        "image_alt": article.image_alt or "",
        "image_credit": article.image_credit or "",
        "author": article.author or "",
        "section": article.section or "",
        "tags": ", ".join(article.tags),
        "published_at": f"{published:%Y-%m-%dT%H:%M}" if published else "",
    }


def _form_page(
    request: Request,
    session: SessionDep,
    article: Article | None,
    *,
    values: dict[str, Any] | None = None,
    error: str | None = None,
) -> Response:
    return views.render(
        request,
        "article_form.html.j2",
        title=f"Edit: {article.title}" if article else "New article",
        article=article,
        values=values or _form_values(article),
        sections=articles.list_sections(session),
        flash={"kind": "error", "text": error} if error else None,
    )


@router.get("/articles/new", include_in_schema=False)
def new_article(request: Request, session: SessionDep) -> Response:
    return _form_page(request, session, None)


@router.get("/articles/import", include_in_schema=False)
def import_form(request: Request) -> Response:
    return views.render(request, "articles_import.html.j2", title="Import articles", result=None)


@router.get("/articles/{article_id}", include_in_schema=False)
def edit_article(request: Request, article_id: Id, session: SessionDep) -> Response:
    return _form_page(request, session, articles.get_article(session, article_id))


async def posted_fields(request: Request) -> dict[str, str]:
    """The article fields of the posted form, as typed (the CSRF token and the rest ignored);
    a missing field is empty."""
    form = await request.form()
    fields: dict[str, str] = {}
    for name in ArticleCreate.model_fields:
        value = form.get(name, "")
        if not isinstance(value, str):
            raise InvalidInput(f"'{name}' must be text, not a file")
        limit = FIELD_MAX_OF.get(name, FIELD_MAX)
        if len(value) > limit:
            raise InvalidInput(f"'{name}' is longer than {limit} characters")
        fields[name] = value
    return fields


PostedFields = Annotated[dict[str, str], Depends(posted_fields)]


@router.post("/articles", include_in_schema=False)
def create_article(request: Request, session: SessionDep, typed: PostedFields) -> Response:
    try:
        article = articles.create_article(session, ArticleCreate.parse(typed))
    except UserError as exc:
        return _refused_form(request, session, None, typed, exc)
    return views.redirect(request, edit_url(article.id), notice="Article created.")


def _refused_form(
    request: Request,
    session: SessionDep,
    article: Article | None,
    typed: dict[str, str],
    exc: UserError,
) -> Response:
    """The form again with what was typed and why it was refused (nothing was stored)."""
    session.rollback()
    response = _form_page(request, session, article, values=typed, error=str(exc))
    response.status_code = 422
    return response


@router.post("/articles/import/feed", include_in_schema=False)
def import_feed(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    feed_url: Annotated[str, Form(max_length=2000)],
) -> Response:
    source = feed_url.strip()
    parts = urlsplit(source)
    # import_feed also reads server paths: only web addresses come from a form
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise InvalidInput(f"the feed address must be an http(s) URL, got {source!r}")
    result = articles.import_feed(session, source, policy=OutboundPolicy.from_settings(settings))
    return _result_page(request, result, source=source)


@router.post("/articles/import/file", include_in_schema=False)
def import_file(
    request: Request, session: SessionDep, file: Annotated[UploadFile | None, File()] = None
) -> Response:
    if file is None or not file.filename:
        raise InvalidInput("choose a .json, .yaml, .yml or feed .xml file to import")
    file.file.seek(0)
    content = file.file.read(MAX_UPLOAD_BYTES + 1)
    if len(content) > MAX_UPLOAD_BYTES:
        raise InvalidInput(f"{file.filename}: larger than {MAX_UPLOAD_BYTES // 1024 // 1024} MB")
    result = articles.import_upload(session, content, file.filename)
    return _result_page(request, result, source=file.filename)


def _result_page(request: Request, result: articles.ImportResult, *, source: str) -> Response:
    return views.render(
        request, "articles_import.html.j2", title="Import result", result=result, source=source
    )


@router.post("/articles/{article_id}", include_in_schema=False)
def update_article(
    request: Request, article_id: Id, session: SessionDep, typed: PostedFields
) -> Response:
    try:
        articles.update_article(session, article_id, ArticleCreate.parse(typed))
    except NotFound:
        raise
    except UserError as exc:
        article = articles.get_article(session, article_id)
        return _refused_form(request, session, article, typed, exc)
    return views.redirect(request, edit_url(article_id), notice="Article saved.")
