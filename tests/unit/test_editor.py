"""Tests for newsletter.content.issues: numbering, subjects, items in sections, blurbs and edit
guards."""

from __future__ import annotations

import pytest
from sqlmodel import Session, col, select

from newsletter import newsletters
from newsletter.content import issues
from newsletter.exceptions import InvalidInput, InvalidState, NotFound
from newsletter.models import IssueItem, IssueStatus
from tests.conftest import make_article, make_issue, make_newsletter


def _items(session: Session, section_id: int) -> list[tuple[int, int]]:
    """(item id, position) of a section's items as stored, in position order."""
    session.expire_all()
    rows = session.exec(
        select(IssueItem)
        .where(IssueItem.section_id == section_id)
        .order_by(col(IssueItem.position))
    ).all()
    return [(row.id, row.position) for row in rows]  # type: ignore[misc]


def _ids(session: Session, section_id: int) -> list[int]:
    return [item_id for item_id, _ in _items(session, section_id)]


def _positions(session: Session, section_id: int) -> list[int]:
    return [position for _, position in _items(session, section_id)]


# ---------------------------------------------------------------- numbering and subjects


def test_issues_are_numbered_consecutively_per_newsletter(session: Session) -> None:
    nl = make_newsletter(session)
    numbers = [
        issues.create_issue(session, newsletter=nl.slug, title=f"Issue {i}").number
        for i in range(3)
    ]
    assert numbers == [1, 2, 3]


def test_issue_numbers_are_independent_between_newsletters(session: Session) -> None:
    first, second = make_newsletter(session), make_newsletter(session)
    issues.create_issue(session, newsletter=first.slug, title="A1")
    issues.create_issue(session, newsletter=first.slug, title="A2")
    other = issues.create_issue(session, newsletter=second.slug, title="B1")
    third = issues.create_issue(session, newsletter=first.slug, title="A3")
    assert (other.number, third.number) == (1, 3)


def test_default_subject_is_the_lead_headline_without_the_sender_name(session: Session) -> None:
    fx = make_issue(session)
    outline = issues.load_outline(session, fx.issue.id)  # type: ignore[arg-type]
    assert outline.subject == fx.articles[0].title
    assert "Belarus Weekly" not in outline.subject  # the From line names the newsletter


def test_explicit_subject_wins_over_default(session: Session) -> None:
    fx = make_issue(session)
    issues.update_issue(session, issue_id=fx.issue.id, subject="Minsk votes")  # type: ignore[arg-type]
    assert issues.load_outline(session, fx.issue.id).subject == "Minsk votes"  # type: ignore[arg-type]


def test_empty_subject_restores_the_default(session: Session) -> None:
    fx = make_issue(session)
    issue_id: int = fx.issue.id  # type: ignore[assignment]
    issues.update_issue(session, issue_id=issue_id, subject="Minsk votes")
    issues.update_issue(session, issue_id=issue_id, subject="")
    assert issues.load_outline(session, issue_id).subject == fx.articles[0].title


# ---------------------------------------------------------------- adding items


def test_add_item_without_position_appends_at_end(session: Session) -> None:
    fx = make_issue(session, layout=(2,))
    section_id: int = fx.sections[0].id  # type: ignore[assignment]
    article = make_article(session)
    item = issues.add_item(session, section_id=section_id, article_id=article.id)  # type: ignore[arg-type]
    assert _ids(session, section_id) == [fx.items[0].id, fx.items[1].id, item.id]
    assert _positions(session, section_id) == [0, 1, 2]


def test_add_item_at_position_inserts_and_shifts_the_rest(session: Session) -> None:
    fx = make_issue(session, layout=(2,))
    section_id: int = fx.sections[0].id  # type: ignore[assignment]
    article = make_article(session)
    item = issues.add_item(
        session,
        section_id=section_id,
        article_id=article.id,  # type: ignore[arg-type]
        position=1,
    )
    assert _ids(session, section_id) == [fx.items[0].id, item.id, fx.items[1].id]
    assert _positions(session, section_id) == [0, 1, 2]


def test_adding_the_same_article_twice_is_refused(session: Session) -> None:
    fx = make_issue(session, layout=(1, 1))
    with pytest.raises(InvalidInput, match="already in this issue"):
        issues.add_item(
            session,
            section_id=fx.sections[1].id,  # type: ignore[arg-type]
            article_id=fx.articles[0].id,  # type: ignore[arg-type]
        )


# ---------------------------------------------------------------- moving and removing


def test_move_item_within_section_reorders_contiguously(session: Session) -> None:
    fx = make_issue(session, layout=(4,))
    section_id: int = fx.sections[0].id  # type: ignore[assignment]
    a, b, c, d = (it.id for it in fx.items)
    issues.move_item(session, item_id=d, position=0)  # type: ignore[arg-type]
    issues.move_item(session, item_id=a, position=2)  # type: ignore[arg-type]
    assert _ids(session, section_id) == [d, b, a, c]
    assert _positions(session, section_id) == [0, 1, 2, 3]


def test_move_item_past_the_end_puts_it_last(session: Session) -> None:
    fx = make_issue(session, layout=(3,))
    section_id: int = fx.sections[0].id  # type: ignore[assignment]
    a, b, c = (it.id for it in fx.items)
    issues.move_item(session, item_id=a, position=99)  # type: ignore[arg-type]
    assert _ids(session, section_id) == [b, c, a]
    assert _positions(session, section_id) == [0, 1, 2]


def test_move_item_into_another_section_renumbers_both(session: Session) -> None:
    fx = make_issue(session, layout=(3, 2))
    first: int = fx.sections[0].id  # type: ignore[assignment]
    second: int = fx.sections[1].id  # type: ignore[assignment]
    a, b, c, x, y = (it.id for it in fx.items)
    issues.move_item(session, item_id=b, position=1, section_id=second)  # type: ignore[arg-type]
    assert (_ids(session, first), _positions(session, first)) == ([a, c], [0, 1])
    assert (_ids(session, second), _positions(session, second)) == ([x, b, y], [0, 1, 2])


def test_moved_item_shows_in_its_new_section_in_the_outline(session: Session) -> None:
    fx = make_issue(session, layout=(2, 1))
    moved = fx.items[0]
    issues.move_item(
        session,
        item_id=moved.id,  # type: ignore[arg-type]
        position=0,
        section_id=fx.sections[1].id,
    )
    outline = issues.load_outline(session, fx.issue.id)  # type: ignore[arg-type]
    titles = [[it.article.title for it in sec.items] for sec in outline.sections]
    assert titles == [
        [fx.articles[1].title],
        [fx.articles[0].title, fx.articles[2].title],
    ]


def test_move_item_to_another_issues_section_is_refused(session: Session) -> None:
    fx = make_issue(session, layout=(2,))
    other = make_issue(session, newsletter=fx.newsletter, layout=(1,))
    with pytest.raises(InvalidInput, match="not in the same issue"):
        issues.move_item(
            session,
            item_id=fx.items[0].id,  # type: ignore[arg-type]
            position=0,
            section_id=other.sections[0].id,
        )
    assert _ids(session, other.sections[0].id) == [other.items[0].id]  # type: ignore[arg-type]


def test_remove_item_renumbers_the_rest(session: Session) -> None:
    fx = make_issue(session, layout=(3,))
    section_id: int = fx.sections[0].id  # type: ignore[assignment]
    a, b, c = (it.id for it in fx.items)
    issues.remove_item(session, item_id=a)  # type: ignore[arg-type]
    assert _ids(session, section_id) == [b, c]
    assert _positions(session, section_id) == [0, 1]


# ---------------------------------------------------------------- blurbs


def _outline_blurb(session: Session, issue_id: int, item_id: int) -> str:
    outline = issues.load_outline(session, issue_id)
    return next(it.blurb for it in outline.items if it.item.id == item_id)


def test_set_blurb_overrides_the_article_summary(session: Session) -> None:
    fx = make_issue(session, layout=(1,))
    item_id: int = fx.items[0].id  # type: ignore[assignment]
    issues.set_blurb(session, item_id=item_id, blurb="Editor's own words.")
    assert _outline_blurb(session, fx.issue.id, item_id) == "Editor's own words."  # type: ignore[arg-type]


def test_empty_blurb_restores_the_article_summary(session: Session) -> None:
    fx = make_issue(session, layout=(1,))
    item_id: int = fx.items[0].id  # type: ignore[assignment]
    issues.set_blurb(session, item_id=item_id, blurb="Editor's own words.")
    issues.set_blurb(session, item_id=item_id, blurb="")
    assert _outline_blurb(session, fx.issue.id, item_id) == fx.articles[0].summary  # type: ignore[arg-type]


# ---------------------------------------------------------------- guards


_EDITS = ["update_issue", "add_section", "add_item", "move_item", "remove_item", "set_blurb"]


@pytest.mark.parametrize("edit", _EDITS)
def test_editing_a_sent_issue_raises_invalid_state(session: Session, edit: str) -> None:
    fx = make_issue(session, layout=(2,))
    fx.issue.status = IssueStatus.sent
    session.add(fx.issue)
    session.commit()
    article = make_article(session)
    edits = {
        "update_issue": lambda: issues.update_issue(session, issue_id=fx.issue.id, title="New"),
        "add_section": lambda: issues.add_section(session, issue_id=fx.issue.id, title="More"),
        "add_item": lambda: issues.add_item(
            session, section_id=fx.sections[0].id, article_id=article.id
        ),
        "move_item": lambda: issues.move_item(session, item_id=fx.items[1].id, position=0),
        "remove_item": lambda: issues.remove_item(session, item_id=fx.items[0].id),
        "set_blurb": lambda: issues.set_blurb(session, item_id=fx.items[0].id, blurb="x"),
    }
    with pytest.raises(InvalidState, match="not yet scheduled or sent can be edited"):
        edits[edit]()  # type: ignore[no-untyped-call]


def test_a_sending_issue_cannot_be_edited(session: Session) -> None:
    fx = make_issue(session, layout=(2,))
    fx.issue.status = IssueStatus.sending
    session.add(fx.issue)
    session.commit()
    with pytest.raises(InvalidState, match="is sending"):
        issues.move_item(session, item_id=fx.items[1].id, position=0)  # type: ignore[arg-type]
    assert _ids(session, fx.sections[0].id) == [fx.items[0].id, fx.items[1].id]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "call",
    [
        "get_issue",
        "get_newsletter",
        "add_section",
        "add_item_section",
        "add_item_article",
        "move_item",
        "remove_item",
        "set_blurb",
    ],
)
def test_unknown_ids_raise_not_found(session: Session, call: str) -> None:
    fx = make_issue(session, layout=(1,))
    missing = 999_999
    calls = {
        "get_issue": lambda: issues.get_issue(session, missing),
        "get_newsletter": lambda: newsletters.get_newsletter(session, "no-such-newsletter"),
        "add_section": lambda: issues.add_section(session, issue_id=missing, title="x"),
        "add_item_section": lambda: issues.add_item(
            session, section_id=missing, article_id=fx.articles[0].id
        ),
        "add_item_article": lambda: issues.add_item(
            session, section_id=fx.sections[0].id, article_id=missing
        ),
        "move_item": lambda: issues.move_item(session, item_id=missing, position=0),
        "remove_item": lambda: issues.remove_item(session, item_id=missing),
        "set_blurb": lambda: issues.set_blurb(session, item_id=missing, blurb="x"),
    }
    with pytest.raises(NotFound):
        calls[call]()  # type: ignore[no-untyped-call]


def test_update_issue_refuses_a_blank_title(session: Session) -> None:
    fx = make_issue(session)
    with pytest.raises(InvalidInput):
        issues.update_issue(session, issue_id=fx.issue.id, title="   ")  # type: ignore[arg-type]


# ---------------------------------------------------------------- control characters


@pytest.mark.parametrize(
    "bad", ["Hello\r\nBcc: all@example.org", "a\nb", "nul\x00here", "bell\x07"]
)
@pytest.mark.parametrize("field", ["title", "subject", "preheader"])
def test_control_characters_are_refused_when_an_issue_is_saved(
    session: Session, field: str, bad: str
) -> None:
    fx = make_issue(session)
    with pytest.raises(InvalidInput, match=field):
        issues.update_issue(session, issue_id=fx.issue.id, **{field: bad})  # type: ignore[arg-type]
    nl = make_newsletter(session)
    values = {"title": "A title", field: bad}
    with pytest.raises(InvalidInput, match=field):
        issues.create_issue(session, newsletter=nl.slug, **values)  # type: ignore[arg-type]


def test_a_tab_is_allowed_in_a_subject(session: Session) -> None:
    fx = make_issue(session)
    issue = issues.update_issue(session, issue_id=fx.issue.id, subject="Weekly\tdigest")  # type: ignore[arg-type]
    assert issue.subject == "Weekly\tdigest"


def test_a_subject_longer_than_the_cap_is_refused(session: Session) -> None:
    fx = make_issue(session)
    with pytest.raises(InvalidInput, match="at most 200"):
        issues.update_issue(session, issue_id=fx.issue.id, subject="x" * 201)  # type: ignore[arg-type]


def test_section_titles_refuse_line_breaks(session: Session) -> None:
    fx = make_issue(session)
    with pytest.raises(InvalidInput, match="section title"):
        issues.add_section(session, issue_id=fx.issue.id, title="Top\r\nstories")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="section title"):
        issues.rename_section(session, section_id=fx.sections[0].id, title="A\nB")  # type: ignore[arg-type]


def test_the_intro_keeps_line_breaks_but_refuses_nul(session: Session) -> None:
    fx = make_issue(session)
    issue = issues.update_issue(session, issue_id=fx.issue.id, intro_md="One.\n\nTwo.")  # type: ignore[arg-type]
    assert issue.intro_md == "One.\n\nTwo."
    with pytest.raises(InvalidInput, match="intro"):
        issues.update_issue(session, issue_id=fx.issue.id, intro_md="One.\x00")  # type: ignore[arg-type]
