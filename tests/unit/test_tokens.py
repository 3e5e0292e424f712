"""Tests for newsletter.audience.links: signed, purpose-bound, optionally expiring personal-link
tokens."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from newsletter.audience.links import Purpose, TokenData, _serializer, make_token, read_token
from newsletter.exceptions import InvalidInput

SECRET = "token-test-secret"


def test_token_round_trips_subscriber_and_newsletter() -> None:
    token = make_token(SECRET, Purpose.unsubscribe, 42, 7)
    assert read_token(SECRET, Purpose.unsubscribe, token) == TokenData(42, 7)


def test_token_without_newsletter_round_trips_none() -> None:
    token = make_token(SECRET, Purpose.preferences, 42, None)
    assert read_token(SECRET, Purpose.preferences, token) == TokenData(42, None)


def test_token_for_another_purpose_is_refused() -> None:
    token = make_token(SECRET, Purpose.preferences, 42, 7)
    with pytest.raises(InvalidInput, match="not valid"):
        read_token(SECRET, Purpose.unsubscribe, token)


def test_altered_token_is_refused() -> None:
    token = make_token(SECRET, Purpose.unsubscribe, 42, 7)
    payload, rest = token.split(".", 1)
    forged_payload = make_token(SECRET, Purpose.unsubscribe, 43, 7).split(".", 1)[0]
    assert forged_payload != payload
    with pytest.raises(InvalidInput, match="not valid"):
        read_token(SECRET, Purpose.unsubscribe, f"{forged_payload}.{rest}")


def test_token_with_an_altered_signature_is_refused() -> None:
    token = make_token(SECRET, Purpose.unsubscribe, 42, 7)
    signed, signature = token.rsplit(".", 1)
    # the first base64 character carries the signature's top six bits, so this changes a byte
    altered = ("A" if signature[0] != "A" else "g") + signature[1:]
    with pytest.raises(InvalidInput, match="not valid"):
        read_token(SECRET, Purpose.unsubscribe, f"{signed}.{altered}")


def test_token_signed_with_another_secret_is_refused() -> None:
    token = make_token("some-other-secret", Purpose.unsubscribe, 42, 7)
    with pytest.raises(InvalidInput, match="not valid"):
        read_token(SECRET, Purpose.unsubscribe, token)


def test_garbage_token_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not valid"):
        read_token(SECRET, Purpose.unsubscribe, "not-a-token")


def test_token_older_than_max_age_is_expired(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1_760_000_000]
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: now[0])
    token = make_token(SECRET, Purpose.confirm, 42, 7)
    now[0] += 3601
    with pytest.raises(InvalidInput, match="expired"):
        read_token(SECRET, Purpose.confirm, token, max_age=3600)


def test_token_within_max_age_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1_760_000_000]
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: now[0])
    token = make_token(SECRET, Purpose.confirm, 42, 7)
    now[0] += 3599
    assert read_token(SECRET, Purpose.confirm, token, max_age=3600) == TokenData(42, 7)


_IDS = st.integers(min_value=0, max_value=2**31 - 1)


@settings(max_examples=300, deadline=None)
@given(
    purpose=st.sampled_from([Purpose.unsubscribe, Purpose.preferences]),
    subscriber=_IDS,
    newsletter=st.none() | _IDS,
    issue=st.none() | _IDS,
    stamp=st.integers(min_value=0, max_value=2**32),
)
def test_a_token_is_the_bytes_itsdangerous_writes(
    purpose: Purpose, subscriber: int, newsletter: int | None, issue: int | None, stamp: int
) -> None:
    """``make_token`` writes the token itself (the send makes two a message): the very string
    its serializer (itsdangerous's, which never tries zlib on a short payload) makes of the same
    payload at the same second; the library's plain serializer reads it."""
    payload = [subscriber, newsletter] + ([] if issue is None else [issue])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TimestampSigner, "get_timestamp", lambda self: stamp)
        token = make_token(SECRET, purpose, subscriber, newsletter, issue)
        serialized = _serializer(SECRET, purpose).dumps(payload)
    assert token == serialized
    read = URLSafeTimedSerializer(SECRET, salt=f"newsletter.{purpose}").loads(token)
    assert read == payload
    assert read_token(SECRET, purpose, token) == TokenData(subscriber, newsletter, issue)


def test_a_payload_of_other_than_ints_goes_through_the_serializer() -> None:
    token = make_token(SECRET, Purpose.unsubscribe, True, 7)
    assert URLSafeTimedSerializer(SECRET, salt="newsletter.unsubscribe").loads(token) == [True, 7]
