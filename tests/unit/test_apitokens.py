"""Admin API tokens: only hashes are stored, unknown and revoked tokens fail differently."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlmodel import Session

from newsletter.access import api_tokens
from newsletter.exceptions import InvalidInput, InvalidToken, NotFound, RevokedToken
from newsletter.models import ApiToken, utcnow


def test_create_returns_a_prefixed_token_and_stores_only_its_hash(session: Session) -> None:
    token = api_tokens.create(session, "ci")
    session.commit()

    assert token.startswith("nl_")
    assert len(token) > 40  # 32 random bytes, url-safe base64
    rows = session.execute(text("SELECT * FROM apitoken")).mappings().all()
    assert len(rows) == 1
    stored = " ".join(str(value) for value in rows[0].values())
    assert token not in stored
    assert token.removeprefix("nl_") not in stored
    assert rows[0]["token_hash"] == api_tokens.hash_token(token)
    assert len(rows[0]["token_hash"]) == 64


def test_each_token_is_new(session: Session) -> None:
    assert api_tokens.create(session, "one") != api_tokens.create(session, "two")


@pytest.mark.parametrize("name", ["", "   "])
def test_a_token_needs_a_name(session: Session, name: str) -> None:
    with pytest.raises(InvalidInput, match="needs a name"):
        api_tokens.create(session, name)


def test_a_name_longer_than_the_column_is_refused(session: Session) -> None:
    with pytest.raises(InvalidInput, match="at most 100"):
        api_tokens.create(session, "x" * 101)


def test_a_name_is_taken_even_by_a_revoked_token(session: Session) -> None:
    api_tokens.create(session, "ci")
    with pytest.raises(InvalidInput, match="already exists"):
        api_tokens.create(session, " ci ")
    api_tokens.revoke(session, "ci")
    with pytest.raises(InvalidInput, match="already exists"):
        api_tokens.create(session, "ci")


def test_authenticate_returns_the_token_and_records_its_use(session: Session) -> None:
    token = api_tokens.create(session, "ci")
    session.commit()

    found = api_tokens.authenticate(session, token)
    session.commit()

    assert found.name == "ci"
    session.expire_all()
    stored = api_tokens.list_tokens(session)[0]
    assert stored.last_used_at is not None
    assert abs(stored.last_used_at - utcnow()) < timedelta(minutes=1)


def test_last_used_is_written_at_most_once_a_minute(session: Session) -> None:
    token = api_tokens.create(session, "ci")
    first = utcnow()
    api_tokens.authenticate(session, token, now=first)
    session.commit()

    api_tokens.authenticate(session, token, now=first + timedelta(seconds=30))
    session.commit()
    session.expire_all()
    assert api_tokens.list_tokens(session)[0].last_used_at == first

    later = first + api_tokens.TOUCH_INTERVAL
    api_tokens.authenticate(session, token, now=later)
    session.commit()
    session.expire_all()
    assert api_tokens.list_tokens(session)[0].last_used_at == later


@pytest.mark.parametrize("presented", ["nl_" + "A" * 43, "not-even-prefixed", "", "nl_"])
def test_unknown_tokens_are_invalid(session: Session, presented: str) -> None:
    api_tokens.create(session, "ci")
    with pytest.raises(InvalidToken):
        api_tokens.authenticate(session, presented)


def test_a_revoked_token_is_refused_as_revoked_not_unknown(session: Session) -> None:
    token = api_tokens.create(session, "ci")
    revoked = api_tokens.revoke(session, "ci")
    session.commit()

    assert revoked.revoked_at is not None
    with pytest.raises(RevokedToken, match="'ci' was revoked"):
        api_tokens.authenticate(session, token)


def test_revoking_twice_keeps_the_first_time(session: Session) -> None:
    api_tokens.create(session, "ci")
    first = api_tokens.revoke(session, "ci").revoked_at
    session.commit()
    assert api_tokens.revoke(session, "ci").revoked_at == first


def test_revoking_an_unknown_name_is_not_found(session: Session) -> None:
    with pytest.raises(NotFound, match="no token named 'nobody'"):
        api_tokens.revoke(session, "nobody")


def test_list_tokens_in_creation_order_with_their_state(session: Session) -> None:
    api_tokens.create(session, "b")
    api_tokens.create(session, "a")
    api_tokens.revoke(session, "b")
    session.commit()

    tokens = api_tokens.list_tokens(session)

    assert [t.name for t in tokens] == ["b", "a"]
    assert [t.revoked_at is not None for t in tokens] == [True, False]
    assert all(isinstance(t, ApiToken) for t in tokens)
