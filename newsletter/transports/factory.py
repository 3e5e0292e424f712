"""The configured transport from its settings: SMTP or one of the providers' HTTP APIs."""

from __future__ import annotations

from newsletter.transports import Transport
from newsletter.transports.mailgun import MailgunConfig, MailgunTransport
from newsletter.transports.postmark import PostmarkConfig, PostmarkTransport
from newsletter.transports.sendgrid import SendGridConfig, SendGridTransport
from newsletter.transports.ses import SESConfig, SESTransport
from newsletter.transports.smtp import SMTPConfig, SMTPTransport

TransportConfig = SMTPConfig | SESConfig | PostmarkConfig | MailgunConfig | SendGridConfig


def make_transport(config: TransportConfig) -> Transport:
    if isinstance(config, SMTPConfig):
        return SMTPTransport(config)
    if isinstance(config, SESConfig):
        return SESTransport(config)
    if isinstance(config, PostmarkConfig):
        return PostmarkTransport(config)
    if isinstance(config, MailgunConfig):
        return MailgunTransport(config)
    return SendGridTransport(config)
