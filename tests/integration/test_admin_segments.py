"""The segment pages of the editor UI over HTTP: save, count without JavaScript, the live count
endpoint, bad rows as a message (never a 500), bulk tags on a search result, the audience of an
issue and the confirmation's count."""

from __future__ import annotations

from sqlmodel import Session, select

from newsletter.models import Issue, Segment, SubscriberTag, SubscriptionStatus
from tests.conftest import make_issue, make_subscribers
from tests.integration.admin_support import Editor


def _rows(*rows: tuple[str, str, str, str]) -> dict[str, object]:
    return {
        "kind": [r[0] for r in rows],
        "key": [r[1] for r in rows],
        "op": [r[2] for r in rows],
        "value": [r[3] for r in rows],
    }


def test_segment_pages_count_save_tag_and_send_card(editor: Editor, session: Session) -> None:
    fx = make_issue(session)
    people = make_subscribers(session, fx.newsletter, 6)
    make_subscribers(session, fx.newsletter, 2, status=SubscriptionStatus.unsubscribed)
    for n, p in enumerate(people):
        p.attributes = {"age": 20 + n * 5}  # 20, 25, 30, 35, 40, 45
        session.add(p)
    session.commit()
    rows = _rows(("attribute", "age", "ge", "30"), ("", "", "equals", ""))

    live = editor.post("/admin/segments/count", {"match": "all", **rows})
    assert live.json() == {"count": 4}
    counted = editor.post("/admin/segments", {"name": "30+", "action": "count", **rows})
    assert counted.status_code == 200
    assert "<strong>4</strong> subscribers now" in counted.text
    assert session.exec(select(Segment)).first() is None  # counting saves nothing

    bad = editor.post("/admin/segments", {"name": "x", **_rows(("attribute", "age", "lt", "ten"))})
    assert bad.status_code == 422 and "not a number" in bad.text
    refused = editor.post(
        "/admin/segments/count",
        _rows(("nope", "", "", "")),
        headers={"X-Requested-With": "fetch"},  # as segments.js asks
    )
    assert refused.status_code == 422 and "unknown condition" in refused.json()["error"]

    saved = editor.post(
        "/admin/segments", {"name": "30+", "newsletter": fx.newsletter.slug, **rows}
    )
    assert saved.status_code == 303
    seg = session.exec(select(Segment)).one()
    assert editor.client.get(f"/admin/segments/{seg.id}").status_code == 200

    tagged = editor.post(
        "/admin/segments-tags", {"tag": "early", "email": people[0].email.split("@")[0]}
    )
    assert tagged.status_code == 303
    assert session.exec(select(SubscriberTag.subscriber_id)).all() == [people[0].id]

    chosen = editor.post(f"/admin/issues/{fx.issue.id}/segment", {"segment": str(seg.id)})
    assert chosen.status_code == 303
    session.expire_all()
    assert session.get(Issue, fx.issue.id).segment_id == seg.id  # type: ignore[union-attr]
    confirm = editor.client.get(f"/admin/issues/{fx.issue.id}/send")
    assert 'name="recipients" value="4"' in confirm.text and "30+" in confirm.text
