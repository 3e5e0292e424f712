"""An issue's message template and DKIM signer, built once per worker process.

The frozen issue (``RenderedIssue``) never changes while it is sent, so a process builds its
``MessageTemplate`` once and keeps it (for the few issues it sent lately); a resend after the
issue was frozen again (``compiled_at`` moved) builds a fresh one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlmodel import Session

from newsletter.config import Settings
from newsletter.content.rendering import CompiledIssue
from newsletter.exceptions import InvalidInput
from newsletter.mail.dkim import signer_from_settings
from newsletter.mail.message import MessageTemplate
from newsletter.models import Issue, Newsletter, RenderedIssue
from newsletter.sending import subject_tests


class Signer(Protocol):
    def sign(self, message: bytes, *, relaxed_body_of_it: bytes | None = None) -> bytes: ...


@dataclass(frozen=True)
class Prepared:
    compiled_at: datetime
    newsletter: Newsletter
    issue: Issue
    template: MessageTemplate
    signer: Signer | None = None


#: templates of the issues this process sent lately (a worker lives through many issues)
_templates: dict[int, Prepared] = {}
_TEMPLATES_KEPT = 8


def prepared(session: Session, issue_id: int, settings: Settings) -> Prepared:
    """The issue's message template, built once per process (the frozen issue never changes)."""
    frozen = session.get(RenderedIssue, issue_id)
    if frozen is None:
        raise InvalidInput(f"issue {issue_id} has not been started")
    cached = _templates.get(issue_id)
    if cached is not None and cached.compiled_at == frozen.compiled_at:
        return cached
    issue = session.get(Issue, issue_id)
    newsletter = session.get(Newsletter, issue.newsletter_id) if issue else None
    assert issue is not None and newsletter is not None
    compiled = CompiledIssue(frozen.subject, frozen.preheader, frozen.html, frozen.text)
    template = MessageTemplate(
        compiled=compiled,
        newsletter=newsletter,
        issue_id=issue_id,
        secret=settings.secret_key,
        subjects=subject_tests.subjects(session, issue_id),
    )
    while len(_templates) >= _TEMPLATES_KEPT:
        del _templates[next(iter(_templates))]
    _templates[issue_id] = Prepared(
        frozen.compiled_at, newsletter, issue, template, signer_from_settings(settings)
    )
    return _templates[issue_id]
