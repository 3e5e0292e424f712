"""Settings that would break a promise are refused when they are read, in one line."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from newsletter.config import DEV_SECRET, Settings


def test_production_refuses_an_http_base_url() -> None:
    with pytest.raises(ValidationError, match="must be an https:// URL outside development"):
        Settings(environment="production", secret_key="s3cret", base_url="http://news.example.org")


def test_production_accepts_an_https_base_url() -> None:
    settings = Settings(
        environment="production", secret_key="s3cret", base_url="https://news.example.org"
    )
    assert settings.base_url == "https://news.example.org"


def test_development_may_serve_plain_http_on_loopback() -> None:
    assert Settings(environment="development", base_url="http://localhost:8000").base_url


def test_outside_development_the_default_secret_is_refused() -> None:
    with pytest.raises(ValidationError, match="NEWSLETTER_SECRET_KEY must be set"):
        Settings(environment="production", secret_key=DEV_SECRET, base_url="https://x.org")


def test_a_malformed_allowed_network_is_refused() -> None:
    with pytest.raises(ValidationError, match="OUTBOUND_ALLOW_NETWORKS"):
        Settings(outbound_allow_networks="10.0.0.0/8, not-a-network")


def test_the_html_size_warning_must_not_be_over_the_limit() -> None:
    with pytest.raises(ValueError, match="NEWSLETTER_HTML_SIZE_WARN"):
        Settings(html_size_warn=110_000, html_size_limit=102_000)
    assert Settings().html_size_warn < Settings().html_size_limit
