"""Structured logs: JSON lines with the issue and delivery ids, or text with them appended."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from newsletter.config import Settings
from newsletter.logs import configure_logging


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def capture(fmt: str, level: str = "INFO") -> io.StringIO:
    stream = io.StringIO()
    settings = Settings(log_format=fmt, log_level=level)  # type: ignore[arg-type]
    handler = configure_logging(settings)
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    return stream


def test_json_lines_carry_the_ids(restore_root: None) -> None:
    stream = capture("json")
    log = logging.getLogger("newsletter.sending.batch")
    log.info("issue %s: batch done", 7, extra={"issue_id": 7, "sent": 200})
    log.warning("failed", extra={"issue_id": 7, "delivery_id": 12, "response": "550 5.1.1 no"})
    log.debug("not shown at INFO")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "issue 7: batch done"
    assert first["level"] == "INFO"
    assert first["logger"] == "newsletter.sending.batch"
    assert first["issue_id"] == 7 and first["sent"] == 200
    assert first["ts"].endswith("+00:00")
    assert second["delivery_id"] == 12 and second["issue_id"] == 7
    assert list(second)[:6] == ["ts", "level", "logger", "message", "issue_id", "delivery_id"]


def test_json_keeps_the_traceback_in_one_line(restore_root: None) -> None:
    stream = capture("json")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("newsletter").exception("it broke", extra={"issue_id": 3})
    (line,) = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["issue_id"] == 3
    assert "RuntimeError: boom" in entry["exc_info"]


def test_text_appends_the_ids(restore_root: None) -> None:
    stream = capture("text", "DEBUG")
    logging.getLogger("newsletter").debug("hello", extra={"issue_id": 7, "delivery_id": 9})
    logging.getLogger("newsletter").info("plain")
    first, second = stream.getvalue().splitlines()
    assert first.endswith("DEBUG newsletter: hello [issue_id=7 delivery_id=9]")
    assert second.endswith("INFO newsletter: plain")


def test_configuring_again_replaces_the_handler(restore_root: None) -> None:
    capture("text")
    capture("json")
    ours = [h for h in logging.getLogger().handlers if type(h).__name__ == "_Handler"]
    assert len(ours) == 1


def test_the_format_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_LOG_FORMAT", "json")
    monkeypatch.setenv("NEWSLETTER_LOG_LEVEL", "WARNING")
    settings = Settings()
    assert (settings.log_format, settings.log_level) == ("json", "WARNING")
    monkeypatch.setenv("NEWSLETTER_LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="log_format"):
        Settings()
