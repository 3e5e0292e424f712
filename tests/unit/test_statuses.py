"""Every status move is one the table allows: the tables themselves, and an AST check that each
UPDATE setting a status has its WHERE from ``moving`` (checked against the table)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.statuses import (
    DELIVERY_MOVES,
    IMPORT_MOVES,
    ISSUE_MOVES,
    SUBSCRIPTION_MOVES,
    DeliveryStatus,
    ImportStatus,
    IssueStatus,
    StatusMoveError,
    SubscriptionStatus,
    sources,
)

PACKAGE = Path(__file__).resolve().parents[2] / "newsletter"


@pytest.mark.parametrize(
    ("enum", "table"),
    [
        (IssueStatus, ISSUE_MOVES),
        (SubscriptionStatus, SUBSCRIPTION_MOVES),
        (DeliveryStatus, DELIVERY_MOVES),
        (ImportStatus, IMPORT_MOVES),
    ],
)
def test_each_table_names_every_status_and_moves_only_to_its_own(enum: type, table: dict) -> None:  # type: ignore[type-arg]
    assert set(table) == set(enum)
    assert all(set(targets) <= set(enum) for targets in table.values())


def test_final_statuses_go_nowhere() -> None:
    assert ISSUE_MOVES[IssueStatus.cancelled] == frozenset()
    assert DELIVERY_MOVES[DeliveryStatus.sent] == frozenset()
    assert DELIVERY_MOVES[DeliveryStatus.skipped] == frozenset()
    assert IMPORT_MOVES[ImportStatus.done] == IMPORT_MOVES[ImportStatus.failed] == frozenset()


def test_nothing_moves_back_to_pending_subscription() -> None:
    assert sources(SubscriptionStatus.pending) == []


def test_a_move_the_table_lacks_is_refused_when_the_statement_is_built() -> None:
    with pytest.raises(StatusMoveError, match="sent -> paused"):
        sources(IssueStatus.paused, among=[IssueStatus.sent])
    with pytest.raises(StatusMoveError, match="active -> pending"):
        sources(SubscriptionStatus.pending, among=[SubscriptionStatus.active])


def _status_updates() -> Iterator[tuple[str, int, bool]]:
    """(file, line, guarded) for every statement with an UPDATE's .values(status=...)."""
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for stmt in ast.walk(tree):
            if not isinstance(stmt, ast.stmt) or isinstance(
                stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.Module
            ):
                continue
            calls = [n for n in ast.walk(stmt) if isinstance(n, ast.Call)]
            sets_status = any(
                isinstance(c.func, ast.Attribute)
                and c.func.attr == "values"
                and any(k.arg == "status" for k in c.keywords)
                for c in calls
            )
            if not sets_status or any(_named(c, "insert") for c in calls):
                continue
            yield (
                str(path.relative_to(PACKAGE)),
                stmt.lineno,
                any(_named(c, "moving") for c in calls),
            )


def _named(call: ast.Call, name: str) -> bool:
    func = call.func
    return (isinstance(func, ast.Name) and func.id == name) or (
        isinstance(func, ast.Attribute) and func.attr == name
    )


def test_every_status_update_takes_its_where_from_the_table() -> None:
    found = list(_status_updates())
    assert found, "the check found no status UPDATE at all: it is looking in the wrong place"
    assert [f"{file}:{line}" for file, line, guarded in found if not guarded] == []
