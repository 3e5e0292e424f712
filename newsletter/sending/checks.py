"""QA's settings, from the service's: sizes, the environment, the sample reader and SpamAssassin.

The SpamAssassin check scores the real MIME a sample reader would get (``mail.message``, the
preview's reader: subscriber 0, reader@example.org), unsigned: a DKIM signature counts only
with a DNS lookup, which a local (``-L``) run does not make.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Literal

from newsletter.analytics import links as tracking
from newsletter.config import Settings
from newsletter.content import spam_check
from newsletter.content.issues import IssueOutline
from newsletter.content.qa import QAConfig
from newsletter.content.rendering import CompiledIssue
from newsletter.content.spam_check import SpamConfig, SpamReport
from newsletter.mail.message import MessageTemplate, Recipient
from newsletter.sending import recipients

SAMPLE_EMAIL = "reader@example.org"
#: run: score the message now unless cached; cached: only a result already at hand (a page
#: view must not wait seconds); skip: no SpamAssassin at all
SpamMode = Literal["run", "cached", "skip"]


def spam_config(settings: Settings) -> SpamConfig:
    return SpamConfig(
        enabled=settings.spam_check != "off",
        spamd_host=settings.spamd_host or None,
        spamd_port=settings.spamd_port,
        timeout=settings.spam_check_timeout,
    )


def sample_values(settings: Settings, outline: IssueOutline) -> Mapping[str, str]:
    values, _ = recipients.recipient_values(
        settings, outline.newsletter, outline.issue, subscriber_id=0, email=SAMPLE_EMAIL, name=""
    )
    return values


def sample_message(settings: Settings, outline: IssueOutline, compiled: CompiledIssue) -> bytes:
    """The whole message, as sent to the sample reader."""
    values, links = recipients.recipient_values(
        settings, outline.newsletter, outline.issue, subscriber_id=0, email=SAMPLE_EMAIL, name=""
    )
    template = MessageTemplate(
        compiled=compiled,
        newsletter=outline.newsletter,
        issue_id=outline.issue.id or 0,
        secret=settings.secret_key,
    )
    recipient = Recipient(
        subscriber_id=0,
        email=SAMPLE_EMAIL,
        name="",
        values=values,
        unsubscribe_url=links["unsubscribe_url"],
        unsubscribe_mailto=links["unsubscribe_mailto"],
    )
    return template.render(recipient)[1]


def score(
    settings: Settings, outline: IssueOutline, compiled: CompiledIssue, *, run: bool = True
) -> SpamReport | None:
    """The SpamAssassin result against the newsletter's threshold (None: not run, not cached)."""
    result = spam_check.check(
        compiled,
        build=partial(sample_message, settings, outline, compiled),
        config=spam_config(settings),
        run=run,
    )
    return SpamReport(result, outline.newsletter.spam_threshold) if result else None


def qa_config(settings: Settings, *, spam: SpamMode = "run") -> QAConfig:
    if settings.spam_check == "off":
        spam = "skip"
    return QAConfig(
        size_warn=settings.html_size_warn,
        size_limit=settings.html_size_limit,
        production=settings.environment == "production",
        rewrite_link=tracking.sized_link(settings.base_url),
        base_url=settings.base_url,
        sample_values=partial(sample_values, settings),
        spam=None if spam == "skip" else partial(score, settings, run=spam == "run"),
    )
