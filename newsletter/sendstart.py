"""Start a send: the one verb the CLI, the admin API, the editor UI and the demo call.

It refuses what would only fail later, in a worker: a DKIM key that cannot sign (loaded and
test-signed here) and an issue QA blocks. Then it freezes the issue and fills the ledger
(``delivery.start_send``), commits (a worker reads the ledger in its own transaction), and hands
the issue to ``dispatch`` (the caller's port to the workers: Celery in production) when it is
sending, so that a second call re-kicks a running send instead of starting it twice.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session

from newsletter import delivery, editor, sender
from newsletter.config import Settings
from newsletter.models import IssueStatus

Dispatch = Callable[[int], None]


def check_signing(settings: Settings) -> None:
    """Load and test-sign the DKIM key when one is configured; InvalidInput says what is wrong."""
    sender.signer_for(settings)


def start(
    settings: Settings, session: Session, *, issue_id: int, dispatch: Dispatch | None
) -> delivery.SendStart:
    """Check, freeze, fill the ledger, commit, dispatch; a started issue is only re-kicked."""
    check_signing(settings)
    started = delivery.start_send(session, issue_id=issue_id, size_limit=settings.html_size_limit)
    session.commit()
    issue = editor.get_issue(session, issue_id)
    session.refresh(issue)  # start_send moved it with a Core UPDATE
    if dispatch is not None and issue.status == IssueStatus.sending:
        dispatch(issue_id)
    return started
