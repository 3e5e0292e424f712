"""Score a message with SpamAssassin's local rules, as a mailbox would before a reader sees it.

spamd first when one is configured (the SPAMC/1.5 ``REPORT`` verb, spoken over a socket), else
the ``spamassassin`` binary on this machine (``-L``: local tests only, no network), else a
result that says neither is there. A run costs seconds, so results are kept per message body
(an in-process LRU keyed by the SHA-256 of the compiled subject, HTML and text).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import socket
import subprocess
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from threading import Lock

from newsletter.content.rendering import CompiledIssue

SPAMC_VERB = "REPORT SPAMC/1.5"
#: the binary's arguments: local tests only, no prefs file written, no Bayes database touched
BINARY_ARGS = ("-L", "-t", "-x", "--cf=use_bayes 0")
CACHE_SIZE = 64


@dataclass(frozen=True)
class SpamConfig:
    enabled: bool = True
    spamd_host: str | None = None
    spamd_port: int = 783
    timeout: float = 60.0
    binary: str | None = "spamassassin"  # a name looked up on PATH, or a path; None: none


@dataclass(frozen=True)
class RuleHit:
    name: str
    points: float
    description: str


@dataclass(frozen=True)
class SpamResult:
    """One run: ``available`` False (``problem`` says why) when nothing could score it."""

    available: bool
    score: float = 0.0
    rules: tuple[RuleHit, ...] = ()
    engine: str = ""  # "spamd host:port" or the binary's path
    seconds: float = 0.0
    problem: str = ""


@dataclass(frozen=True)
class SpamReport:
    """A result against a newsletter's threshold: a score at or over it blocks the send."""

    result: SpamResult
    threshold: float

    @property
    def blocking(self) -> bool:
        return self.result.available and self.result.score >= self.threshold


class SpamCheckError(Exception):
    """spamd or the binary answered with something that is not a report."""


_SCORE = re.compile(r"Content analysis details:\s+\((-?[\d.]+) points?, (-?[\d.]+) required\)")
_RULE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s+(.*?)\s*$")
_CONTINUATION = re.compile(r"^\s{20,}(\S.*?)\s*$")


def parse_report(text: str) -> tuple[float, tuple[RuleHit, ...]]:
    """(score, rules) from SpamAssassin's report: its "Content analysis details" table."""
    found = _SCORE.search(text)
    if found is None:
        raise SpamCheckError("no 'Content analysis details' in SpamAssassin's answer")
    table = text[found.end() :].split("\n")
    rules: list[RuleHit] = []
    started = False
    for line in table:
        if line.startswith("----"):
            started = True
            continue
        if not started:
            continue
        rule = _RULE.match(line)
        more = _CONTINUATION.match(line)
        if rule:
            rules.append(RuleHit(rule[2], float(rule[1]), rule[3]))
        elif more and rules:  # a description wrapped onto the next line
            last = rules[-1]
            rules[-1] = RuleHit(last.name, last.points, f"{last.description} {more[1]}")
        elif line.strip() and rules:
            break  # the end of the table (the binary appends nothing more; spamd neither)
    return float(found[1]), tuple(rules)


def ask_spamd(message: bytes, *, host: str, port: int, timeout: float) -> str:
    """The report spamd answers to ``REPORT SPAMC/1.5`` (the spamc protocol, one connection)."""
    head = f"{SPAMC_VERB}\r\nContent-length: {len(message)}\r\n\r\n".encode("ascii")
    with socket.create_connection((host, port), timeout=timeout) as conn:
        conn.sendall(head + message)
        conn.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    answer = b"".join(chunks).decode("utf-8", "replace")
    status, _, rest = answer.partition("\r\n")
    if not status.startswith("SPAMD/") or " 0 " not in f"{status} ":
        raise SpamCheckError(f"spamd answered {status.strip()[:200]!r}")
    return rest.partition("\r\n\r\n")[2]


def run_binary(message: bytes, *, path: str, timeout: float) -> str:
    """The test-mode output of ``spamassassin -L -t``: the message, then its report."""
    done = subprocess.run(
        [path, *BINARY_ARGS], input=message, capture_output=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        problem = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["?"]
        raise SpamCheckError(f"spamassassin exited with {done.returncode}: {problem[0][:200]}")
    return done.stdout.decode("utf-8", "replace")


def score_message(message: bytes, config: SpamConfig) -> SpamResult:
    """Score ``message`` with spamd when configured (the binary if spamd cannot be reached)."""
    if not config.enabled:
        return SpamResult(available=False, problem="the SpamAssassin check is off")
    started = time.monotonic()
    problems = []
    if config.spamd_host:
        engine = f"spamd {config.spamd_host}:{config.spamd_port}"
        try:
            text = ask_spamd(
                message, host=config.spamd_host, port=config.spamd_port, timeout=config.timeout
            )
            return _result(text, engine, started)
        except (OSError, SpamCheckError) as exc:
            problems.append(f"{engine}: {exc}")
    path = shutil.which(config.binary) if config.binary else None
    if path:
        try:
            text = run_binary(message, path=path, timeout=config.timeout)
            return _result(text, path, started)
        except (OSError, subprocess.TimeoutExpired, SpamCheckError) as exc:
            problems.append(f"{path}: {exc}")
    else:
        problems.append("no spamassassin binary on this machine (apt-get install spamassassin)")
    return SpamResult(available=False, problem="; ".join(problems))


def _result(text: str, engine: str, started: float) -> SpamResult:
    score, rules = parse_report(text)
    return SpamResult(True, score, rules, engine, round(time.monotonic() - started, 2))


def digest(compiled: CompiledIssue) -> str:
    """What the cache knows a message by: its subject, HTML and text."""
    sha = hashlib.sha256()
    for part in (compiled.subject, compiled.html, compiled.text):
        sha.update(part.encode("utf-8"))
        sha.update(b"\x00")
    return sha.hexdigest()


class ResultCache:
    """The last results by digest (LRU); an unavailable result is not kept, so a fixed spamd
    or a newly installed binary counts at the next check."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self._size = size
        self._results: OrderedDict[str, SpamResult] = OrderedDict()
        self._lock = Lock()

    def get(self, key: str) -> SpamResult | None:
        with self._lock:
            found = self._results.get(key)
            if found is not None:
                self._results.move_to_end(key)
            return found

    def put(self, key: str, result: SpamResult) -> None:
        if not result.available:
            return
        with self._lock:
            self._results[key] = result
            self._results.move_to_end(key)
            while len(self._results) > self._size:
                self._results.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._results.clear()


CACHE = ResultCache()


def check(
    compiled: CompiledIssue,
    *,
    build: Callable[[], bytes],
    config: SpamConfig,
    run: bool = True,
    cache: ResultCache = CACHE,
) -> SpamResult | None:
    """The cached result for this message, else a fresh run (``build`` makes the MIME) when
    ``run``; None when it was not run."""
    key = digest(compiled)
    cached = cache.get(key)
    if cached is not None or not run:
        return cached
    result = score_message(build(), config)
    cache.put(key, result)
    return result
