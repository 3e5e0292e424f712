"""Editor accounts: Argon2id hashes, sign-in, sessions that end, and section moves."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from sqlmodel import Session, col, select

from newsletter.access import editors
from newsletter.content import issues
from newsletter.exceptions import InvalidInput, InvalidState, NotFound
from newsletter.models import EditorSession, EditorUser, IssueSection, utcnow
from newsletter.sending import testsend
from tests.conftest import make_issue

PASSWORD = "a sufficiently long one"


def test_passwords_are_stored_as_argon2id_hashes(session: Session) -> None:
    user = editors.create_user(session, email="Desk@News.Example.org", password=PASSWORD)
    assert user.email == "Desk@news.example.org".lower() or user.email.endswith("news.example.org")
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    with pytest.raises(InvalidState):
        editors.create_user(session, email=user.email, password=PASSWORD)
    with pytest.raises(InvalidInput, match="at least"):
        editors.create_user(session, email="other@example.org", password="short")


def test_authenticate(session: Session) -> None:
    user = editors.create_user(session, email="desk@example.org", password=PASSWORD)
    assert editors.authenticate(session, email="desk@example.org", password="wrong") is None
    assert editors.authenticate(session, email="nobody@example.org", password=PASSWORD) is None
    found = editors.authenticate(session, email=" DESK@example.org ", password=PASSWORD)
    assert found is not None and found.id == user.id and found.last_login_at is not None
    editors.set_disabled(session, email="desk@example.org", disabled=True)
    assert editors.authenticate(session, email="desk@example.org", password=PASSWORD) is None


def test_a_weaker_hash_is_upgraded_at_sign_in(session: Session) -> None:
    user = editors.create_user(session, email="desk@example.org", password=PASSWORD)
    user.password_hash = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    weak = user.password_hash
    session.add(user)
    session.flush()
    assert editors.authenticate(session, email="desk@example.org", password=PASSWORD)
    assert user.password_hash != weak
    assert not editors.hasher().check_needs_rehash(user.password_hash)


def test_sessions_resolve_expire_and_end(session: Session) -> None:
    user = editors.create_user(session, email="desk@example.org", password=PASSWORD, name="Desk")
    token = editors.start_session(session, user)
    stored = session.exec(select(EditorSession)).one()
    assert stored.id != token and len(stored.id) == 64  # only the hash is kept
    me = editors.resolve(session, token)
    assert me is not None and me.label == "Desk" and me.csrf_token
    assert editors.resolve(session, token + "x") is None
    later = utcnow() + editors.SESSION_LIFETIME + timedelta(seconds=1)
    assert editors.resolve(session, token, now=later) is None
    editors.end_session(session, token)
    assert editors.resolve(session, token) is None


def test_a_new_password_or_disabling_ends_every_session(session: Session) -> None:
    user = editors.create_user(session, email="desk@example.org", password=PASSWORD)
    first, second = editors.start_session(session, user), editors.start_session(session, user)
    editors.set_password(session, email="desk@example.org", password="another long password")
    assert editors.resolve(session, first) is None and editors.resolve(session, second) is None
    third = editors.start_session(session, user)
    editors.set_disabled(session, email="desk@example.org", disabled=True)
    assert editors.resolve(session, third) is None
    with pytest.raises(NotFound):
        editors.set_password(session, email="nobody@example.org", password=PASSWORD)


def test_signing_in_sweeps_expired_sessions(session: Session) -> None:
    user = editors.create_user(session, email="desk@example.org", password=PASSWORD)
    editors.start_session(session, user, now=utcnow() - timedelta(days=2))
    editors.start_session(session, user)
    assert len(session.exec(select(EditorSession)).all()) == 1
    assert session.exec(select(EditorUser)).one().id == user.id


def test_sections_move_rename_and_go(session: Session) -> None:
    fx = make_issue(session, layout=(1, 1, 1))
    issue_id = fx.issue.id
    assert issue_id is not None

    def titles() -> list[str]:
        session.expire_all()
        rows = session.exec(
            select(IssueSection)
            .where(IssueSection.issue_id == issue_id)
            .order_by(col(IssueSection.position))
        ).all()
        return [s.title for s in rows]

    issues.move_section(session, section_id=fx.sections[2].id, position=0)  # type: ignore[arg-type]
    assert titles() == ["Section 3", "Section 1", "Section 2"]
    issues.move_section(session, section_id=fx.sections[2].id, position=99)  # type: ignore[arg-type]
    assert titles() == ["Section 1", "Section 2", "Section 3"]
    issues.rename_section(session, section_id=fx.sections[0].id, title=" Politics ")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        issues.rename_section(session, section_id=fx.sections[0].id, title=" ")  # type: ignore[arg-type]
    issues.remove_section(session, section_id=fx.sections[1].id)  # type: ignore[arg-type]
    assert titles() == ["Politics", "Section 3"]
    outline = issues.load_outline(session, issue_id)
    assert [s.section.position for s in outline.sections] == [0, 1]
    assert len(outline.items) == 2


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("", "at least one"),
        ("a@example.org, not-an-address", "invalid email"),
        (" ".join(f"r{i}@example.org" for i in range(11)), "at most 10"),
    ],
)
def test_test_send_addresses_are_checked(typed: str, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        testsend.parse_addresses(typed)


def test_test_send_addresses_split_and_dedupe() -> None:
    typed = "a@example.org,b@example.org;\n a@example.org  c@example.org"
    assert testsend.parse_addresses(typed) == ["a@example.org", "b@example.org", "c@example.org"]
