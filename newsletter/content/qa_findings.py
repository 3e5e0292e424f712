"""What QA reports: findings (blocking or advice), and the SpamAssassin score when it ran."""

from __future__ import annotations

from dataclasses import dataclass, field

from newsletter.content.spam_check import SpamReport


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    blocking: bool


@dataclass
class QAReport:
    findings: list[Finding] = field(default_factory=list)
    spam: SpamReport | None = None  # None: SpamAssassin did not run (off, or not asked to yet)

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.blocking]

    @property
    def ok(self) -> bool:
        return not self.blocking

    def add(self, code: str, message: str, *, blocking: bool) -> None:
        self.findings.append(Finding(code, message, blocking))
