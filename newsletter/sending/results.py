"""What one batch did: the counts of its outcomes, and whether the chain goes on."""

from __future__ import annotations

from dataclasses import dataclass

from newsletter.sending.outcomes import Kind, Outcome


@dataclass
class BatchResult:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    lost: int = 0  # rows whose lease ran out before this batch reached them (not sent)
    stopped: bool = False  # the issue was paused or cancelled mid-batch
    more: bool = False  # due rows remain: the caller should run another batch
    finished: bool = False  # this batch finished the issue

    def count(self, outcome: Outcome) -> None:
        if outcome.kind is Kind.sent:
            self.sent += 1
        elif outcome.kind is Kind.retry:
            self.retried += 1
        elif outcome.kind is Kind.skipped:
            self.skipped += 1
        else:
            self.failed += 1
