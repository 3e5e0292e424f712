"""The mail provider half of the settings: which transport sends (NEWSLETTER_TRANSPORT) and
each HTTP API provider's credentials. ``config.Settings`` inherits it; read it there."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings

from newsletter.transports.factory import TransportConfig
from newsletter.transports.mailgun import MailgunConfig
from newsletter.transports.postmark import PostmarkConfig
from newsletter.transports.sendgrid import SendGridConfig
from newsletter.transports.ses import SESConfig
from newsletter.transports.smtp import SMTPConfig


class ProviderSettings(BaseSettings):
    transport: Literal["smtp", "ses", "postmark", "mailgun", "sendgrid"] = Field(
        "smtp",
        description="how messages leave: smtp (NEWSLETTER_SMTP_*) or a provider's HTTP API",
    )
    provider_timeout: float = Field(
        30.0, gt=0, le=300, description="seconds one HTTP API request to a provider may take"
    )
    ses_region: str = Field("us-east-1", description="the SES region (email.<region>...)")
    ses_access_key_id: str | None = Field(None, description="SES: the IAM access key id")
    ses_secret_access_key: str | None = Field(None, description="SES: its secret access key")
    ses_session_token: str | None = Field(None, description="SES: a temporary session token")
    ses_configuration_set: str | None = Field(
        None, description="SES: the configuration set each message names (event publishing)"
    )
    ses_endpoint: str | None = Field(
        None, description="SES: another API base URL; unset: https://email.<region>.amazonaws.com"
    )
    postmark_server_token: str | None = Field(None, description="Postmark: the server API token")
    postmark_message_stream: str = Field(
        "broadcast", description="Postmark: the message stream issues go out on"
    )
    postmark_base_url: str = Field("https://api.postmarkapp.com", description="Postmark's API")
    mailgun_domain: str | None = Field(None, description="Mailgun: the sending domain")
    mailgun_api_key: str | None = Field(None, description="Mailgun: the API key")
    mailgun_base_url: str = Field(
        "https://api.mailgun.net", description="Mailgun's API; EU: https://api.eu.mailgun.net"
    )
    sendgrid_api_key: str | None = Field(None, description="SendGrid: the API key (Mail Send)")
    sendgrid_base_url: str = Field("https://api.sendgrid.com", description="SendGrid's API")

    def smtp_config(self) -> SMTPConfig:  # ``Settings`` has the SMTP relay's settings
        raise NotImplementedError

    @model_validator(mode="after")
    def _provider_credentials_set(self) -> ProviderSettings:
        needed = {
            "smtp": (),
            "ses": ("ses_access_key_id", "ses_secret_access_key"),
            "postmark": ("postmark_server_token",),
            "mailgun": ("mailgun_domain", "mailgun_api_key"),
            "sendgrid": ("sendgrid_api_key",),
        }[self.transport]
        missing = [f"NEWSLETTER_{n.upper()}" for n in needed if not getattr(self, n)]
        if missing:
            raise ValueError(
                f"NEWSLETTER_TRANSPORT is {self.transport!r} but {' and '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} not set"
            )
        return self

    def transport_config(self) -> TransportConfig:
        """The chosen transport's settings (NEWSLETTER_TRANSPORT), as ``make_transport`` takes
        them; the validator above made sure the chosen provider's credentials are set."""
        timeout = self.provider_timeout
        if self.transport == "ses":
            return SESConfig(
                region=self.ses_region,
                access_key_id=self.ses_access_key_id or "",
                secret_access_key=self.ses_secret_access_key or "",
                session_token=self.ses_session_token,
                configuration_set=self.ses_configuration_set,
                endpoint=self.ses_endpoint,
                timeout=timeout,
            )
        if self.transport == "postmark":
            return PostmarkConfig(
                server_token=self.postmark_server_token or "",
                message_stream=self.postmark_message_stream,
                base_url=self.postmark_base_url,
                timeout=timeout,
            )
        if self.transport == "mailgun":
            return MailgunConfig(
                domain=self.mailgun_domain or "",
                api_key=self.mailgun_api_key or "",
                base_url=self.mailgun_base_url,
                timeout=timeout,
            )
        if self.transport == "sendgrid":
            return SendGridConfig(
                api_key=self.sendgrid_api_key or "",
                base_url=self.sendgrid_base_url,
                timeout=timeout,
            )
        return self.smtp_config()
