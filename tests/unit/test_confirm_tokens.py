"""Confirmation tokens: several newsletters, the sign-up's source and consent version, expiry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from itsdangerous import TimestampSigner

from newsletter.audience.links import (
    ConfirmData,
    Purpose,
    make_confirm_token,
    make_token,
    read_confirm_token,
    read_token,
)
from newsletter.exceptions import InvalidInput, InvalidLink

SECRET = "confirm-token-secret"
NOW = 1_760_000_000


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    now = [NOW]
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: now[0])
    return now


def confirm_token(**overrides: object) -> str:
    values: dict[str, object] = {
        "subscriber_id": 42,
        "newsletter_ids": [9, 7, 7],
        "source": "form",
        "consent_text_version": "2025-10",
    }
    values.update(overrides)
    return make_confirm_token(SECRET, **values)  # type: ignore[arg-type]


def test_a_confirmation_token_round_trips_everything_it_carries(clock: list[int]) -> None:
    data = read_confirm_token(SECRET, confirm_token(), max_age=3600)
    assert data == ConfirmData(
        subscriber_id=42,
        newsletter_ids=(7, 9),
        source="form",
        consent_text_version="2025-10",
        issued_at=datetime.fromtimestamp(NOW, UTC),
    )


def test_a_confirmation_token_expires(clock: list[int]) -> None:
    token = confirm_token()
    clock[0] += 3601
    with pytest.raises(InvalidLink, match="expired"):
        read_confirm_token(SECRET, token, max_age=3600)


def test_a_confirmation_token_is_not_an_unsubscribe_token() -> None:
    with pytest.raises(InvalidLink, match="not valid"):
        read_token(SECRET, Purpose.unsubscribe, confirm_token())
    with pytest.raises(InvalidLink, match="not valid"):
        read_confirm_token(SECRET, make_token(SECRET, Purpose.unsubscribe, 42, 7), max_age=60)


def test_a_single_newsletter_confirm_token_is_not_a_confirmation() -> None:
    # the same purpose, the older payload shape: refused, not misread
    with pytest.raises(InvalidLink, match="not valid"):
        read_confirm_token(SECRET, make_token(SECRET, Purpose.confirm, 42, 7), max_age=60)


def test_a_confirmation_token_signed_with_another_secret_is_refused() -> None:
    token = make_confirm_token(
        "other", subscriber_id=42, newsletter_ids=[7], source="form", consent_text_version="1"
    )
    with pytest.raises(InvalidLink, match="not valid"):
        read_confirm_token(SECRET, token, max_age=60)


def test_an_altered_confirmation_token_is_refused() -> None:
    good, forged = confirm_token(), confirm_token(subscriber_id=43)
    altered = forged.split(".", 1)[0] + "." + good.split(".", 1)[1]
    with pytest.raises(InvalidLink, match="not valid"):
        read_confirm_token(SECRET, altered, max_age=60)


def test_invalid_link_is_an_invalid_input() -> None:
    # callers that caught InvalidInput before InvalidLink existed still catch it
    assert issubclass(InvalidLink, InvalidInput)
