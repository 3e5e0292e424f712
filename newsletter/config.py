"""Settings, read from the environment (prefix ``NEWSLETTER_``) and ``.env``.

Defaults are the embedded ones: a SQLite file, a file-system Celery broker and a local SMTP sink,
so ``newsletter demo`` runs with no server at all.
"""

from __future__ import annotations

from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from newsletter.config_analytics import AnalyticsSettings
from newsletter.config_relays import RelaySettings
from newsletter.db import PoolConfig
from newsletter.transports.smtp import SMTPConfig

DEV_SECRET = "dev-secret-change-me"  # noqa: S105 - refused outside development


class Settings(RelaySettings, AnalyticsSettings):
    model_config = SettingsConfigDict(env_prefix="NEWSLETTER_", env_file=".env", extra="ignore")

    environment: str = Field("development", description="development | test | production")
    secret_key: str = DEV_SECRET
    database_url: str = "sqlite:///./newsletter.db"
    db_pool_size: int = Field(
        5, ge=1, description="PostgreSQL: connections each process keeps open (SQLite: unused)"
    )
    db_max_overflow: int = Field(
        10, ge=0, description="PostgreSQL: extra connections a process may open at a peak"
    )
    db_pool_recycle: int = Field(
        1800,
        ge=-1,
        description="PostgreSQL: seconds before a pooled connection is replaced; -1 = never",
    )
    db_pool_timeout: float = Field(
        30.0, gt=0, description="PostgreSQL: seconds to wait for a free pooled connection"
    )
    broker_url: str = "filesystem://"
    broker_folder: Path = Path(".newsletter/broker")
    base_url: str = "http://localhost:8000"

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_timeout: float = 30.0
    smtp_connections: int = Field(
        1,
        ge=1,
        le=64,
        description="SMTP connections per worker process, each with a message in flight: more "
        "overlap a remote relay's round trips (1: one connection, no threads)",
    )

    bounce_address: str = "bounces@newsletter.example.org"
    soft_bounce_limit: int = Field(
        3, ge=1, description="soft bounces in a row that mark an address bounced"
    )
    unsubscribe_mailbox: str = "unsubscribe@newsletter.example.org"
    ses_topic_arns: str = Field(
        "",
        description="comma-separated SNS topic ARNs whose SES notifications are accepted at "
        "/webhooks/bounces/ses; empty: that webhook is off",
    )
    postmark_webhook_username: str | None = Field(
        None, description="the HTTP Basic user Postmark's bounce webhook URL carries"
    )
    postmark_webhook_password: str | None = Field(
        None, description="its password; unset (with no token): the Postmark webhook is off"
    )
    postmark_webhook_token: str | None = Field(
        None, description="a secret the Postmark webhook URL carries as ?token=..., instead"
    )
    sendgrid_webhook_public_key: str | None = Field(
        None, description="SendGrid's Signed Event Webhook verification key (base64 or PEM)"
    )
    mailgun_webhook_signing_key: str | None = Field(
        None, description="Mailgun's HTTP webhook signing key"
    )
    generic_webhook_secret: str | None = Field(
        None, description="HMAC-SHA256 key of the generic signed JSON bounce webhook"
    )
    generic_webhook_max_age_seconds: int = Field(
        300, ge=1, description="a generic webhook request older (or newer) than this is refused"
    )
    provider_webhook_body_limit: int = Field(
        1_000_000, ge=1024, description="largest bounce webhook body read (413 above), in bytes"
    )
    complaint_rate_threshold: float = Field(
        0.001, gt=0, le=1, description="share of complaints in a send that pauses it (0.001 = 0.1%)"
    )
    complaint_rate_min_sent: int = Field(
        1000, ge=1, description="messages an issue has sent before its complaint rate counts"
    )
    outbox_dir: Path = Path("outbox")
    preview_dir: Path = Path("previews")

    batch_size: int = Field(200, ge=1, description="recipients claimed by one batch task")
    lease_seconds: int = Field(300, ge=5, description="how long a claimed recipient stays ours")
    max_attempts: int = Field(5, ge=1)
    send_parallelism: int = Field(4, ge=1, description="batch chains working one issue at once")
    retry_base_seconds: float = Field(30.0, gt=0)
    html_size_warn: int = Field(
        90_000, ge=1, description="QA warns above this many bytes of HTML, links as sent"
    )
    html_size_limit: int = Field(
        102_000, ge=1, description="QA blocks a send above this many bytes (Gmail clips ~102 KB)"
    )
    spam_check: Literal["auto", "off"] = Field(
        "auto", description="auto: SpamAssassin scores each issue in QA (spamd, else the binary)"
    )
    spamd_host: str | None = Field(None, description="spamd to ask first; unset: the binary")
    spamd_port: int = Field(783, ge=1, le=65535)
    spam_check_timeout: float = Field(
        60.0, gt=0, description="seconds one SpamAssassin run may take"
    )

    redis_url: str | None = Field(
        None,
        description="Redis for the shared send rate (and sign-up counters); "
        "defaults to the broker when that is Redis",
    )
    send_rate: float = Field(
        0.0, ge=0, description="messages per second for all workers together; 0 = no limit"
    )
    send_burst: int = Field(0, ge=0, description="token bucket size; 0 = one second of rate")
    breaker_window: int = Field(100, ge=1, description="recent results the circuit breaker sees")
    breaker_min_results: int = Field(20, ge=1, description="results needed before it can trip")
    breaker_threshold: float = Field(
        0.5, gt=0, le=1, description="share of failures in the window that pauses the issue"
    )
    breaker_probe_seconds: float = Field(
        30.0,
        ge=0,
        description="after the breaker paused a send for a relay that is down: seconds until "
        "the first probe of the relay (EHLO + NOOP), doubling after each failed one; the send "
        "resumes by itself when the relay answers. 0: never, an operator resumes by hand",
    )
    breaker_probe_max_seconds: float = Field(
        600.0, gt=0, description="the longest wait between two probes of a relay that is down"
    )

    two_factor_roles: str = Field(
        "admin,editor",
        pattern=r"^\s*([a-z]+\s*(,\s*[a-z]+\s*)*)?$",
        description="editors with these roles (comma-separated; empty: nobody) must turn on "
        "two-factor sign-in before using the UI",
    )

    def two_factor_required(self, role: str) -> bool:
        """Whether an editor with ``role`` must have two-factor sign-in on."""
        return role in {r.strip() for r in self.two_factor_roles.split(",") if r.strip()}

    import_stall_seconds: int = Field(
        300,
        ge=30,
        description="a running CSV import with no progress this long lost its worker: it is "
        "started again (3 runs at most)",
    )
    confirmation_max_age_seconds: int = Field(
        7 * 86400, ge=60, description="how long a sign-up's confirmation link works"
    )
    confirmation_resend_seconds: int = Field(
        600, ge=0, description="a repeated sign-up sends no new confirmation email within this"
    )
    consent_text_version: str = Field(
        "2025-10",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$",
        description="the consent text the sign-up form shows: templates/web/consent/<v>.txt",
    )
    signup_limit_per_ip: int = Field(
        10, ge=0, description="sign-ups accepted from one client IP per window; 0 = no limit"
    )
    signup_limit_per_address: int = Field(
        3, ge=0, description="sign-ups accepted for one email address per window; 0 = no limit"
    )
    signup_limit_window_seconds: int = Field(3600, ge=1, description="the sign-up limits' window")
    signup_min_fill_seconds: float = Field(
        3, ge=0, le=600, description="a signed form sent back sooner than this is a bot's"
    )

    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_key_file: Path | None = None
    dkim_ed25519_selector: str | None = Field(
        None, description="dual signing: the selector of the ed25519 key signing beside the RSA one"
    )
    dkim_ed25519_key_file: Path | None = Field(
        None, description="dual signing: the ed25519 private key (PEM) of that selector"
    )

    webhook_max_attempts: int = Field(
        8, ge=1, description="POSTs of one webhook event before it is marked failed"
    )
    webhook_retry_base_seconds: float = Field(
        30.0, gt=0, description="first webhook retry delay; doubles per attempt, with jitter"
    )
    webhook_timeout: float = Field(10.0, gt=0, description="seconds one webhook POST may take")

    log_format: Literal["text", "json"] = Field(
        "text", description="text: one readable line; json: one JSON object per line"
    )
    log_level: str = Field("INFO", description="DEBUG | INFO | WARNING | ERROR")
    metrics_token: str | None = Field(
        None, description="when set, GET /metrics needs 'Authorization: Bearer <token>'"
    )

    outbound_allow_networks: str = Field(
        "",
        description="comma-separated networks (CIDR) that feed imports and webhooks may reach "
        "although they are not public, e.g. 10.0.0.0/8; empty: public addresses only",
    )
    outbound_connect_timeout: float = Field(
        5.0, gt=0, le=60, description="seconds to connect for a feed fetch or a webhook POST"
    )
    outbound_read_timeout: float = Field(
        15.0, gt=0, le=300, description="seconds a whole outbound response may take to arrive"
    )
    outbound_max_bytes: int = Field(
        10_000_000, ge=1024, description="largest outbound response read (a feed), in bytes"
    )
    outbound_max_redirects: int = Field(
        3, ge=0, le=10, description="redirects a feed fetch follows, each one checked again"
    )
    public_body_limit: int = Field(
        65_536, ge=1024, description="largest request body the public routes read (413 above)"
    )

    @model_validator(mode="after")
    def _refuse_dev_secret(self) -> Settings:
        if self.environment != "development" and self.secret_key == DEV_SECRET:
            raise ValueError(
                f"NEWSLETTER_SECRET_KEY must be set outside development "
                f"(NEWSLETTER_ENVIRONMENT is {self.environment!r})"
            )
        return self

    @model_validator(mode="after")
    def _https_outside_development(self) -> Settings:
        # Gmail and Yahoo honour one-click unsubscribe (RFC 8058) only for https URLs, and the
        # links carry personal tokens: outside development they must not travel in clear text
        if self.environment != "development" and not self.base_url.startswith("https://"):
            raise ValueError(
                f"NEWSLETTER_BASE_URL must be an https:// URL outside development "
                f"(it is {self.base_url!r}; NEWSLETTER_ENVIRONMENT is {self.environment!r})"
            )
        return self

    @model_validator(mode="after")
    def _size_warning_under_the_limit(self) -> Settings:
        if self.html_size_warn > self.html_size_limit:
            raise ValueError(
                f"NEWSLETTER_HTML_SIZE_WARN ({self.html_size_warn}) must not be over "
                f"NEWSLETTER_HTML_SIZE_LIMIT ({self.html_size_limit})"
            )
        return self

    @model_validator(mode="after")
    def _allowed_networks_parse(self) -> Settings:
        self.allowed_networks  # noqa: B018 - raises ValueError for a malformed network
        return self

    @property
    def allowed_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """``outbound_allow_networks`` parsed: non-public networks outbound fetches may reach."""
        parts = [p.strip() for p in self.outbound_allow_networks.split(",") if p.strip()]
        try:
            return tuple(ip_network(p, strict=False) for p in parts)
        except ValueError as exc:
            raise ValueError(f"NEWSLETTER_OUTBOUND_ALLOW_NETWORKS: {exc}") from None

    @model_validator(mode="after")
    def _lease_outlasts_one_send(self) -> Settings:
        # a batch renews its lease between messages; one message must fit inside a lease
        if self.transport == "smtp":
            name, timeout = "NEWSLETTER_SMTP_TIMEOUT", self.smtp_timeout
        else:
            name, timeout = "NEWSLETTER_PROVIDER_TIMEOUT", self.provider_timeout
        if self.lease_seconds <= 2 * timeout:
            raise ValueError(
                f"NEWSLETTER_LEASE_SECONDS ({self.lease_seconds}) must be more than twice "
                f"{name} ({timeout})"
            )
        return self

    def pool(self) -> PoolConfig:
        """PostgreSQL's connection pool, as ``db.get_engine`` takes it."""
        return PoolConfig(
            size=self.db_pool_size,
            max_overflow=self.db_max_overflow,
            recycle=self.db_pool_recycle,
            timeout=self.db_pool_timeout,
        )

    def smtp_config(self) -> SMTPConfig:
        """The SMTP relay's settings, as the transport takes them."""
        return SMTPConfig(
            host=self.smtp_host,
            port=self.smtp_port,
            username=self.smtp_username,
            password=self.smtp_password,
            starttls=self.smtp_starttls,
            timeout=self.smtp_timeout,
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def shared_redis_url(self) -> str | None:
        """Where workers share state (the rate bucket); None on the embedded file broker."""
        if self.redis_url:
            return self.redis_url
        if self.broker_url.startswith(("redis://", "rediss://")):
            return self.broker_url
        return None


@lru_cache
def get_settings() -> Settings:
    return Settings()
