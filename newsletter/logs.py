"""Logging for every process (``newsletter serve``, the Celery workers, the CLI).

``NEWSLETTER_LOG_FORMAT=json`` writes one JSON object per line to stderr, for log shippers::

    {"ts": "2026-11-24T23:20:10.123456+00:00", "level": "INFO",
     "logger": "newsletter.sending.batch", "message": "issue 7: batch done", "issue_id": 7,
     "sent": 200, "failed": 0}

``text`` (the default) writes the same as one readable line. Context travels in ``extra``:
``log.info("...", extra={"issue_id": 7, "delivery_id": 12})``; every extra field (issue_id,
delivery_id, sent, failed, ...) becomes a key of the JSON object, or ``key=value`` in text.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from newsletter.config import Settings

#: attributes every LogRecord has; anything else on a record came in through ``extra``
_STANDARD = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
    | {"message", "asctime", "taskName"}
)
#: context keys written first, in this order (the rest follow sorted)
CONTEXT_KEYS = ("issue_id", "delivery_id", "newsletter_id", "subscriber_id")


def context_of(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra`` fields of a record: ids first, then the others by name."""
    extra = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
    ordered = {k: extra.pop(k) for k in CONTEXT_KEYS if k in extra}
    ordered.update(sorted(extra.items()))
    return ordered


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, the extra fields, exc_info."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(context_of(record))
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``2026-11-24 23:20:10,123 INFO newsletter.sending.batch: message [issue_id=7 sent=200]``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = context_of(record)
        if not context:
            return line
        fields = " ".join(f"{k}={v}" for k, v in context.items())
        head, sep, rest = line.partition("\n")  # after the message, before any traceback
        return f"{head} [{fields}]{sep}{rest}"


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Ours, so that configuring again replaces it instead of adding a second one."""


def configure_logging(
    settings: Settings | None = None, *, level: str | int | None = None
) -> logging.Handler:
    """Send the root logger's records to stderr in the settings' format; idempotent.

    ``level`` (e.g. the Celery worker's ``--loglevel``) wins over ``settings.log_level``.
    """
    fmt = settings.log_format if settings else "text"
    chosen = level or (settings.log_level if settings else "INFO")
    if isinstance(chosen, str):
        chosen = chosen.upper()
    handler = _Handler(sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(chosen)
    return handler
