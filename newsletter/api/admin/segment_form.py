"""The segment editor's rule rows, to rules and back (HTTP parsing only; rules are checked by
``audience.segments.check_rules``).

A row is (kind, key, op, value), posted as four repeated form fields; an empty kind is no row.
The editor shows one group (all or any) of rows; nested groups are made over the API or CLI.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from newsletter.exceptions import InvalidInput

__all__ = ["KINDS", "OPS", "rows_of", "rules_from_rows"]

#: kind -> its label in the editor
KINDS = {
    "attribute": "Attribute",
    "tag": "Tag",
    "subscription": "Subscription status",
    "language": "Language",
    "time_zone": "Time zone",
    "source": "Sign-up source",
    "signed_up": "Signed up",
    "bounces": "Bounces",
    "email": "Address contains",
    "engagement": "Engagement (newsletter, value: its last N issues)",
}
#: kind -> the operators its row offers
OPS = {
    "attribute": ["equals", "contains", "exists", "lt", "le", "gt", "ge"],
    "tag": ["has", "has_not"],
    "subscription": ["active", "pending", "unsubscribed", "bounced", "complained"],
    "language": ["is"],
    "time_zone": ["is"],
    "source": ["is"],
    "signed_up": ["within_days", "before", "after"],
    "bounces": ["soft_at_least", "bounced_within_days", "bounce_event"],
    "email": ["contains"],
    "engagement": ["opened", "clicked", "not_opened", "not_clicked"],
}


def _number(value: str, what: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise InvalidInput(f"{what}: {value[:40]!r} is not a number") from None


def _row(kind: str, key: str, op: str, value: str) -> dict[str, Any]:
    key, value = key.strip(), value.strip()
    if kind not in KINDS:
        raise InvalidInput(f"unknown condition {kind[:40]!r}")
    if kind == "attribute":
        if op == "exists":
            return {"kind": kind, "key": key, "op": op}
        numeric = op in ("lt", "le", "gt", "ge")
        if op == "equals":  # a number when it reads as one; "5" in quotes is the text 5
            quoted = len(value) >= 2 and value[0] == value[-1] == '"'
            numeric = not quoted and _is_number(value)
            value = value[1:-1] if quoted else value
        return {
            "kind": kind,
            "key": key,
            "op": op,
            "value": _number(value, key) if numeric else value,
        }
    if kind == "tag":
        return {"kind": kind, "tag": value, "has": op != "has_not"}
    if kind == "subscription":
        return {"kind": kind, "status": op}
    if kind in ("language", "time_zone"):
        return {"kind": kind, "value": value or None}
    if kind in ("source", "email"):
        return {"kind": kind, "value": value}
    if kind == "engagement":
        return {
            "kind": kind,
            "action": op.removeprefix("not_"),
            "has": not op.startswith("not_"),
            "newsletter": _chosen(key),  # a name, checked against the newsletters by the domain
            "last": int(_number(value or "1", "engagement: the last N issues")),
        }
    if kind == "signed_up":
        if op == "within_days":
            return {"kind": kind, "op": op, "days": int(_number(value, "days"))}
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(
                f"signed up {op}: {value[:40]!r} is not a date (YYYY-MM-DD)"
            ) from None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return {"kind": kind, "op": op, "at": moment.isoformat()}
    return {"kind": kind, "op": op, "value": int(_number(value or "1", op))}


def _chosen(key: str) -> str:
    if not key:
        raise InvalidInput("engagement: choose the newsletter whose issues count")
    return key


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def rules_from_rows(
    match: str, kinds: list[str], keys: list[str], ops: list[str], values: list[str]
) -> dict[str, Any]:
    if match not in ("all", "any"):
        raise InvalidInput("match all or any of the conditions")
    width = len(kinds)
    if not (len(keys) == len(ops) == len(values) == width):
        raise InvalidInput("every rule row has a kind, a key, an operator and a value")
    conditions = [_row(k, keys[i], ops[i], values[i]) for i, k in enumerate(kinds) if k.strip()]
    return {"match": match, "conditions": conditions}


def rows_of(
    rules: dict[str, Any], names: Mapping[int, str] | None = None
) -> tuple[str, list[dict[str, str]], bool]:
    """(match, rows, nested): a saved segment's rules as editor rows (an engagement rule's
    newsletter by its name, from ``names``); ``nested`` when it holds groups the editor cannot
    show (edit those over the API or CLI)."""
    rows, nested = [], False
    for c in rules.get("conditions", []):
        kind = c.get("kind")
        if kind == "group" or kind not in KINDS:
            nested = True
            continue
        row = _row_of(kind, c)
        if kind == "engagement" and names and str(c["newsletter"]).isdigit():
            row["key"] = names.get(int(c["newsletter"]), row["key"])
        rows.append(row)
    return str(rules.get("match", "all")), rows, nested


def _row_of(kind: str, c: dict[str, Any]) -> dict[str, str]:
    row = {"kind": kind, "key": "", "op": OPS[kind][0], "value": ""}
    if kind == "attribute":
        value = c.get("value")
        shown = "" if value is None else str(value)
        if isinstance(value, float) and value.is_integer():
            shown = str(int(value))
        if isinstance(value, str) and c.get("op") == "equals" and _is_number(value):
            shown = f'"{value}"'
        row.update(key=c["key"], op=c["op"], value=shown)
    elif kind == "tag":
        row.update(op="has" if c.get("has", True) else "has_not", value=c["tag"])
    elif kind == "subscription":
        row.update(op=str(c.get("status") or "active"))
    elif kind == "signed_up":
        shown = str(c.get("days")) if c["op"] == "within_days" else str(c.get("at", ""))[:10]
        row.update(op=c["op"], value=shown)
    elif kind == "bounces":
        row.update(op=c["op"], value=str(c.get("value", 1)))
    elif kind == "engagement":
        op = c["action"] if c.get("has", True) else f"not_{c['action']}"
        row.update(key=str(c["newsletter"]), op=op, value=str(c.get("last", 1)))
    else:
        row.update(value=str(c.get("value") or ""))
    return row
