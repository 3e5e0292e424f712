"""Settings, read from the environment (prefix ``NEWSLETTER_``) and ``.env``.

Defaults are the embedded ones: a SQLite file, a file-system Celery broker and a local SMTP sink,
so ``newsletter demo`` runs with no server at all.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-secret-change-me"  # noqa: S105 - refused outside development


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NEWSLETTER_", env_file=".env", extra="ignore")

    environment: str = Field("development", description="development | test | production")
    secret_key: str = DEV_SECRET
    database_url: str = "sqlite:///./newsletter.db"
    broker_url: str = "filesystem://"
    broker_folder: Path = Path(".newsletter/broker")
    base_url: str = "http://localhost:8000"

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_timeout: float = 30.0

    bounce_address: str = "bounces@newsletter.example.org"
    unsubscribe_mailbox: str = "unsubscribe@newsletter.example.org"
    outbox_dir: Path = Path("outbox")
    preview_dir: Path = Path("previews")

    batch_size: int = Field(200, ge=1, description="recipients claimed by one batch task")
    lease_seconds: int = Field(300, ge=5, description="how long a claimed recipient stays ours")
    max_attempts: int = Field(5, ge=1)
    send_parallelism: int = Field(4, ge=1, description="batch chains working one issue at once")
    retry_base_seconds: float = Field(30.0, gt=0)
    html_size_limit: int = Field(
        100_000, description="QA warns above this many bytes (Gmail clips ~102 KB)"
    )

    @model_validator(mode="after")
    def _refuse_dev_secret(self) -> Settings:
        if self.environment == "production" and self.secret_key == DEV_SECRET:
            raise ValueError("NEWSLETTER_SECRET_KEY must be set in production")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
