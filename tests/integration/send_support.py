"""Send an issue for real, in this process: the ledger, run_batch, SMTP to an aiosmtpd sink."""

from __future__ import annotations

from sqlmodel import Session

from newsletter.config import Settings
from newsletter.sending import batch
from newsletter.sending.checks import qa_config
from newsletter.sending.start import fill_ledger
from newsletter.transports.sink import SMTPSink
from newsletter.transports.smtp import SMTPConfig, SMTPTransport


def send_issue(session: Session, settings: Settings, issue_id: int, sink: SMTPSink) -> int:
    """Start the issue and run batches until it is sent; returns the messages sent."""
    fill_ledger(session, issue_id=issue_id, checks=qa_config(settings))
    session.commit()
    transport = SMTPTransport(SMTPConfig(host=sink.host, port=sink.port, timeout=10))
    sent = 0
    try:
        for _ in range(20):
            result = batch.run_batch(settings, issue_id=issue_id, transport=transport)
            sent += result.sent
            if result.finished or not result.more:
                break
    finally:
        transport.close()
    return sent
