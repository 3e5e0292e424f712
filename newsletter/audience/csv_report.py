"""An import's report: every row counted once, the first rejected and warned rows by line."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_ISSUES = 1000  # errors (and warnings) kept in the report; all are counted
# the import parses in one thread while it writes in another, and both note issues
_ISSUES = threading.Lock()


@dataclass(frozen=True)
class RowIssue:
    line: int
    reason: str


VERDICTS = ("new", "update", "unchanged", "skip")


@dataclass(frozen=True)
class Verdict:
    """What one row did: ``new``, ``update`` (detail: the fields), ``unchanged`` or ``skip``
    (detail: why)."""

    kind: str
    detail: str


@dataclass
class ImportReport:
    """Every data row lands in exactly one count: rows = imported + updated + unchanged +
    suppressed + errors_total (``kept`` is part of ``unchanged``, ``duplicates`` of the errors).

    ``errors`` and ``warnings`` hold the first ``MAX_ISSUES`` by line number; the totals count all.
    """

    rows: int = 0  # data rows read (blank lines aside; an unreadable line is one row)
    imported: int = 0  # rows that created a subscriber or a subscription
    updated: int = 0  # rows that changed a name or a subscription's status
    unchanged: int = 0  # rows that changed nothing
    suppressed: int = 0  # rows whose address the admission gate refused (suppression list)
    errors_total: int = 0  # rows rejected, each with an error
    duplicates: int = 0  # of those, rows repeating an address and newsletter of an earlier row
    kept: int = 0  # rows asking to (re-)activate a sticky subscription that stayed as it was
    warnings_total: int = 0
    errors: list[RowIssue] = field(default_factory=list)
    warnings: list[RowIssue] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    # what each row did, by line: only when asked for (a preview, a test), never for a whole file
    verdicts: dict[int, Verdict] | None = None

    def error(self, line: int, reason: str) -> None:
        """Reject a row: counted, and kept if it is among the first ``MAX_ISSUES``."""
        with _ISSUES:
            self.errors_total += 1
            _keep(self.errors, RowIssue(line, reason))
        self.verdict(line, "skip", reason)

    def verdict(self, line: int, kind: str, detail: str) -> None:
        """Note what the row on ``line`` did (``VERDICTS``), when verdicts are tracked."""
        if self.verdicts is not None:
            self.verdicts[line] = Verdict(kind, detail)

    def warn(self, line: int, reason: str) -> None:
        with _ISSUES:
            self.warnings_total += 1
            _keep(self.warnings, RowIssue(line, reason))

    def finish(self) -> None:
        """Sort the kept issues by line and cut them to ``MAX_ISSUES``."""
        _trim(self.errors)
        _trim(self.warnings)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("verdicts")
        return data


def _keep(issues: list[RowIssue], issue: RowIssue) -> None:
    issues.append(issue)
    if len(issues) >= 2 * MAX_ISSUES:  # trimming now and then keeps memory bounded, sorts rarely
        _trim(issues)


def _trim(issues: list[RowIssue]) -> None:
    # issues arrive nearly in line order (a chunk's suppressed rows after its parse warnings)
    issues.sort(key=lambda issue: issue.line)
    del issues[MAX_ISSUES:]
