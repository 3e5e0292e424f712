"""Segments in the editor UI: the list, the editor (rule rows, a live count), bulk tags.

Routes do HTTP only: ``segment_form`` turns rule rows into rules, ``audience.segments`` checks,
saves, counts and tags. The editor works without JavaScript: its "Count" button posts the rows
and the page comes back with the count; ``segments.js`` posts the same form to
``/admin/segments/count`` while the editor types and shows the number.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Form, Request
from starlette.responses import Response

from newsletter.api.admin import views
from newsletter.api.admin.auth import protected_router
from newsletter.api.admin.segment_form import KINDS, OPS, rows_of, rules_from_rows
from newsletter.api.deps import SessionDep
from newsletter.api.inputs import Id
from newsletter.audience import segments, subscribers
from newsletter.exceptions import InvalidInput, UserError
from newsletter.models import Segment
from newsletter.newsletters import get_newsletter

router = protected_router()

Rows = Annotated[list[str], Form(max_length=200)]
EMPTY_ROWS = 3


def _rows(
    match: str, kind: list[str], key: list[str], op: list[str], value: list[str]
) -> dict[str, Any]:
    return rules_from_rows(match, kind, key, op, value)


def _nid(session: SessionDep, newsletter: str) -> int | None:
    return get_newsletter(session, newsletter).id if newsletter.strip() else None


def _editor(
    request: Request,
    session: SessionDep,
    *,
    segment: Segment | None,
    name: str,
    newsletter_id: int | None,
    rules: dict[str, Any],
    count: int | None = None,
    error: str | None = None,
) -> Response:
    newsletters = subscribers.list_newsletters(session)
    match, rows, nested = rows_of(rules, {n.id: n.name for n in newsletters if n.id})
    blank = {"kind": "", "key": "", "op": "", "value": ""}
    return views.render(
        request,
        "segment_form.html.j2",
        status=422 if error else 200,
        title=f"Segment: {segment.name}" if segment else "New segment",
        segment=segment,
        name=name,
        newsletter_id=newsletter_id,
        match=match,
        rows=rows + [blank] * EMPTY_ROWS,
        nested=nested,
        kinds=KINDS,
        ops=OPS,
        count=count,
        newsletters=newsletters,
        flash={"kind": "error", "text": error} if error else None,
    )


@router.get("/segments", include_in_schema=False)
def segment_list(request: Request, session: SessionDep) -> Response:
    found = segments.list_segments(session)
    return views.render(
        request,
        "segments.html.j2",
        title="Segments",
        segments=[(s, segments.count(session, s)) for s in found],
        newsletters=subscribers.list_newsletters(session),
    )


@router.get("/segments/new", include_in_schema=False)
def new_segment(request: Request, session: SessionDep) -> Response:
    return _editor(request, session, segment=None, name="", newsletter_id=None, rules={})


@router.get("/segments/{segment_id}", include_in_schema=False)
def edit_segment(request: Request, segment_id: Id, session: SessionDep) -> Response:
    seg = segments.get(session, segment_id)
    return _editor(
        request,
        session,
        segment=seg,
        name=seg.name,
        newsletter_id=seg.newsletter_id,
        rules=seg.rules,
        count=segments.count(session, seg),
    )


@router.post("/segments/count", include_in_schema=False)
def count_segment(
    session: SessionDep,
    match: Annotated[str, Form(max_length=3)] = "all",
    newsletter: Annotated[str, Form(max_length=100)] = "",
    kind: Rows = [],  # noqa: B006 - FastAPI copies form defaults
    key: Rows = [],  # noqa: B006
    op: Rows = [],  # noqa: B006
    value: Rows = [],  # noqa: B006
) -> Response:
    """The live count of the rows as they stand (JSON, for ``segments.js``)."""
    rules = segments.check_rules(_rows(match, kind, key, op, value), session)
    size = segments.count_rules(session, rules, newsletter_id=_nid(session, newsletter))
    return views.json_response({"count": size})


@dataclass
class EditorForm:
    """The segment editor's fields: a name, all/any, a newsletter, the save/count button, and
    one list per rule-row column."""

    name: str
    match: str
    newsletter: str
    action: str
    rows: tuple[list[str], list[str], list[str], list[str]]


def editor_form(
    name: Annotated[str, Form(max_length=200)] = "",
    match: Annotated[str, Form(max_length=3)] = "all",
    newsletter: Annotated[str, Form(max_length=100)] = "",
    action: Annotated[str, Form(max_length=10)] = "save",
    kind: Rows = [],  # noqa: B006
    key: Rows = [],  # noqa: B006
    op: Rows = [],  # noqa: B006
    value: Rows = [],  # noqa: B006
) -> EditorForm:
    return EditorForm(name, match, newsletter, action, (kind, key, op, value))


EditorFormDep = Annotated[EditorForm, Depends(editor_form)]


def _save(
    request: Request, session: SessionDep, segment_id: int | None, form: EditorForm
) -> Response:
    action, name, match, newsletter, rows = (
        form.action,
        form.name,
        form.match,
        form.newsletter,
        form.rows,
    )
    seg = segments.get(session, segment_id) if segment_id else None
    raw: dict[str, Any] = {"match": match if match in ("all", "any") else "all", "conditions": []}
    try:
        nid = _nid(session, newsletter)
        raw = _rows(match, *rows)
        rules = segments.check_rules(raw, session)
        if action == "count":
            size = segments.count_rules(session, rules, newsletter_id=nid)
            return _editor(
                request, session, segment=seg, name=name, newsletter_id=nid, rules=raw, count=size
            )
        if seg is None:
            seg = segments.create(
                session, name=name, rules=raw, newsletter=nid, created_by=_who(request)
            )
            request.state.audit_target = ("segment", seg.id)
        else:
            segments.update(
                session,
                seg.id or 0,
                name=name,
                rules=raw,
                newsletter=nid,
                clear_newsletter=nid is None,
            )
    except UserError as exc:
        session.rollback()
        return _editor(
            request, session, segment=seg, name=name, newsletter_id=None, rules=raw, error=str(exc)
        )
    return views.redirect(
        request, f"/admin/segments/{seg.id}", notice=f"Segment {seg.name!r} saved."
    )


def _who(request: Request) -> str:
    editor = getattr(request.state, "editor", None)
    return f"editor {getattr(editor, 'email', '')}".strip()


@router.post("/segments", include_in_schema=False)
def create_segment(request: Request, session: SessionDep, form: EditorFormDep) -> Response:
    return _save(request, session, None, form)


@router.post("/segments/{segment_id}", include_in_schema=False)
def update_segment(
    request: Request, segment_id: Id, session: SessionDep, form: EditorFormDep
) -> Response:
    return _save(request, session, segment_id, form)


@router.post("/segments/{segment_id}/delete", include_in_schema=False)
def delete_segment(request: Request, segment_id: Id, session: SessionDep) -> Response:
    segments.delete_segment(session, segment_id)
    return views.redirect(request, "/admin/segments", notice="Segment deleted.")


@router.post("/segments-tags", include_in_schema=False)
def tag_subscribers(
    request: Request,
    session: SessionDep,
    tag: Annotated[str, Form(max_length=64)],
    action: Annotated[str, Form(max_length=10)] = "add",
    segment: Annotated[str, Form(max_length=12)] = "",
    email: Annotated[str, Form(max_length=320)] = "",
    status: Annotated[str, Form(max_length=16)] = "",
    newsletter: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Add or remove a tag on everyone in a segment, or in a subscriber search result."""
    if segment.strip():
        if not segment.strip().isdigit():
            raise InvalidInput("choose a segment from the list")
        seg = segments.get(session, int(segment))
        rules, nid, what = segments.rules_of(seg), seg.newsletter_id, f"segment {seg.name!r}"
    else:
        nid, what = None, "the search result"
        rules = segments.search_rules(
            email=email, status=status or None, newsletter=_nid(session, newsletter)
        )
    done = segments.tag(session, rules, tag, remove=action == "remove", newsletter_id=nid)
    verb = f"removed from {done.removed:,}" if action == "remove" else f"added to {done.added:,}"
    return views.redirect(request, "/admin/segments", notice=f"Tag {done.tag!r} {verb} in {what}.")
