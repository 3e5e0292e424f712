"""The SpamAssassin runner: the report parsed, the cache, "not available", and real runs of
Debian's ``spamassassin`` binary (on the seeded issue's real message) and of ``spamd`` (started
here on a free port). A missing binary skips, or fails under NEWSLETTER_REQUIRE_SERVICES=1."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from newsletter import db, seeding
from newsletter.config import Settings
from newsletter.content import issues, rendering, spam_check
from newsletter.content.spam_check import ResultCache, SpamConfig, SpamResult
from newsletter.sending import checks
from newsletter.transports.sink import free_port
from tests.conftest import require

GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"
REPORT = """\
Content analysis details:   (-0.3 points, 5.0 required)

 pts rule name              description
---- ---------------------- --------------------------------------------------
-0.0 NO_RELAYS              Informational: message was not relayed via SMTP
 0.7 HTML_FONT_LOW_CONTRAST BODY: HTML font color similar or identical to
                            background
-1.0 MAILING_LIST_MULTI     Multiple indicators imply a widely-seen list
                            manager

"""


def test_the_report_table_is_read_with_wrapped_descriptions() -> None:
    score, rules = spam_check.parse_report("Spam detection software...\n\n" + REPORT)
    assert score == -0.3
    assert [(r.name, r.points) for r in rules] == [
        ("NO_RELAYS", -0.0),
        ("HTML_FONT_LOW_CONTRAST", 0.7),
        ("MAILING_LIST_MULTI", -1.0),
    ]
    assert rules[1].description == "BODY: HTML font color similar or identical to background"


def test_an_answer_without_a_report_is_an_error() -> None:
    with pytest.raises(spam_check.SpamCheckError):
        spam_check.parse_report("SPAMD/1.1 76 Bad header line")


def test_nothing_to_score_with_says_so() -> None:
    config = SpamConfig(spamd_host="127.0.0.1", spamd_port=free_port(), timeout=2, binary=None)
    result = spam_check.score_message(b"Subject: hi\r\n\r\nhello\r\n", config)
    assert not result.available
    assert "spamd 127.0.0.1" in result.problem and "no spamassassin binary" in result.problem


def test_the_cache_runs_a_message_once_and_forgets_unavailable_results(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runs: list[bytes] = []
    answers = iter([SpamResult(False, problem="down"), SpamResult(True, 1.0), SpamResult(True, 2)])

    def fake_score(message: bytes, config: SpamConfig) -> SpamResult:
        runs.append(message)
        return next(answers)

    monkeypatch.setattr(spam_check, "score_message", fake_score)
    cache, config = ResultCache(), SpamConfig()
    compiled = rendering.CompiledIssue("subject", "pre", "<p>html</p>", "text")

    def check(run: bool = True) -> SpamResult | None:
        return spam_check.check(compiled, build=lambda: b"msg", config=config, run=run, cache=cache)

    assert check(run=False) is None  # a page view: nothing cached, nothing run
    assert check().available is False  # type: ignore[union-attr]
    assert check().score == 1.0  # type: ignore[union-attr]  # the failure was not kept
    assert check().score == 1.0  # type: ignore[union-attr]  # cached: no third run
    assert check(run=False).score == 1.0  # type: ignore[union-attr]
    assert len(runs) == 2
    other = rendering.CompiledIssue("subject", "pre", "<p>html!</p>", "text")
    assert spam_check.digest(other) != spam_check.digest(compiled)


# ---------------------------------------------------------------- real SpamAssassin


def _binary() -> str:
    path = shutil.which("spamassassin")
    if path is None:
        require("SpamAssassin", "no spamassassin binary (apt-get install spamassassin)")
    return path or ""


@pytest.fixture(scope="module")
def seeded_message(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[tuple[rendering.CompiledIssue, bytes]]:
    """The seeded issue's real MIME, as sent to the preview's reader."""
    path = tmp_path_factory.mktemp("spam") / "newsletter.db"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    settings = Settings(database_url=url, base_url="https://news.example.org")
    with Session(db.get_engine(url), expire_on_commit=False) as session:
        seeding.seed(session)
        issue = seeding.draft_sample_issue(session)
        session.commit()
        outline = issues.load_outline(session, issue.id)  # type: ignore[arg-type]
        compiled = rendering.compile_issue(outline)
        yield compiled, checks.sample_message(settings, outline, compiled)
    db.get_engine(url).dispose()


@pytest.fixture(scope="module")
def binary_result(seeded_message: tuple[rendering.CompiledIssue, bytes]) -> SpamResult:
    config = SpamConfig(binary=_binary())
    return spam_check.score_message(seeded_message[1], config)


def test_the_binary_scores_the_seeded_issue_with_each_rule(binary_result: SpamResult) -> None:
    assert binary_result.available, binary_result.problem
    assert binary_result.engine.endswith("spamassassin")
    names = {r.name for r in binary_result.rules}
    assert "HTML_MESSAGE" in names  # the message really went through the HTML rules
    assert all(r.description for r in binary_result.rules)
    assert binary_result.score == pytest.approx(sum(r.points for r in binary_result.rules), abs=0.2)


def test_the_seeded_issue_scores_like_issue_18_asks(binary_result: SpamResult) -> None:
    # fails on today's templates (-0.3, with HTML_FONT_LOW_CONTRAST from the white preheader)
    assert binary_result.score <= -1.0
    assert "HTML_FONT_LOW_CONTRAST" not in {r.name for r in binary_result.rules}


@pytest.fixture(scope="module")
def spamd() -> Iterator[tuple[str, int]]:
    """spamd on a free loopback port, local tests only; stopped afterwards."""
    path = shutil.which("spamd") or ("/usr/sbin/spamd" if Path("/usr/sbin/spamd").exists() else "")
    if not path:
        require("spamd", "no spamd binary (apt-get install spamd)")
    port = free_port()
    args = [path, "-L", f"--listen=127.0.0.1:{port}", "-x", "--min-children=1"]
    args += ["--max-children=1", "--cf=use_bayes 0", "--syslog=stderr"]
    args += ["-u", "nobody"] if _root() else []
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, "spamd exited at start"
                assert time.monotonic() < deadline, "spamd did not listen within 60 s"
                time.sleep(0.2)
        yield "127.0.0.1", port
    finally:
        process.terminate()
        process.wait(10)


def _root() -> bool:
    import os

    return os.geteuid() == 0


def test_spamd_scores_over_the_spamc_protocol(
    spamd: tuple[str, int], seeded_message: tuple[rendering.CompiledIssue, bytes]
) -> None:
    host, port = spamd
    config = SpamConfig(spamd_host=host, spamd_port=port, binary=None)
    clean = spam_check.score_message(seeded_message[1], config)
    assert clean.available and clean.engine == f"spamd {host}:{port}", clean.problem
    assert clean.score < 5.0 and "HTML_MESSAGE" in {r.name for r in clean.rules}
    gtube = f"From: a@example.org\r\nSubject: test\r\n\r\n{GTUBE}\r\n".encode()
    spammy = spam_check.score_message(gtube, config)
    assert spammy.score >= 1000 and "GTUBE" in {r.name for r in spammy.rules}
