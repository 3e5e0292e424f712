"""`newsletter dev` as a user runs it: one command in a fresh folder (SQLite, the file-system
broker), a send started through the admin API lands in ./outbox/, and Ctrl-C stops it all."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from newsletter import db, seeding
from newsletter.transports.sink import free_port

START_TIMEOUT = 90.0
NEWSLETTER = (sys.executable, "-m", "newsletter")


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    folder: Path
    port: int
    smtp_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return (self.folder / "dev.out").read_text(encoding="utf-8", errors="replace")

    def errors(self) -> str:
        return (self.folder / "dev.err").read_text(encoding="utf-8", errors="replace")


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env["NEWSLETTER_SPAM_CHECK"] = "off"  # seconds per SpamAssassin run
    env["COLUMNS"] = "200"
    return env


def cli(folder: Path, *args: str) -> str:
    done = subprocess.run(
        [*NEWSLETTER, *args],
        cwd=folder,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_until_up(running: Running) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert running.process.poll() is None, running.output() + running.errors()
        try:
            if httpx.get(running.url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail("newsletter dev did not answer /healthz:\n" + running.output() + running.errors())


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    port, smtp_port = free_port(), free_port()
    with (tmp_path / "dev.out").open("wb") as out, (tmp_path / "dev.err").open("wb") as err:
        process = subprocess.Popen(
            [*NEWSLETTER, "dev", "--port", str(port), "--smtp-port", str(smtp_port)],
            cwd=tmp_path,
            env=clean_env(),
            stdout=out,
            stderr=err,
            start_new_session=True,  # its own process group: we can look for anything left
        )
    stack = Running(process, tmp_path, port, smtp_port)
    try:
        wait_until_up(stack)
        yield stack
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def test_dev_delivers_a_send_started_through_the_api_to_the_outbox_and_ctrl_c_stops_it_all(
    running: Running,
) -> None:
    folder = running.folder
    said = running.output()
    assert f"http://localhost:{running.port}/admin/" in said
    assert str(folder / "outbox") in said
    assert f"127.0.0.1:{running.smtp_port}" in said

    url = f"sqlite:///{folder / 'newsletter.db'}"  # migrated by `newsletter dev` itself
    with db.session_scope(url) as session:
        seeding.seed(session)
        issue_id = seeding.draft_sample_issue(session).id
    db.get_engine(url).dispose()
    token = re.findall(r"^nl_\S+$", cli(folder, "admin", "create-token", "dev-test"), re.M)[-1]

    started = httpx.post(
        f"{running.url}/api/issues/{issue_id}/send",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert started.status_code == 200, started.text
    recipients = started.json()["recipients"]
    assert recipients > 10

    deadline = time.monotonic() + 90
    while len(list((folder / "outbox").glob("*.eml"))) < recipients:
        assert time.monotonic() < deadline, running.output() + running.errors()
        time.sleep(0.25)
    status = httpx.get(
        f"{running.url}/api/issues/{issue_id}/status",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()
    assert status["counts"]["sent"] == recipients
    listing = httpx.get(f"{running.url}/dev/outbox", timeout=10)
    assert listing.status_code == 200 and f"{recipients} messages." in listing.text

    running.process.send_signal(signal.SIGINT)
    assert running.process.wait(60) == 0, running.errors()
    assert "Traceback" not in running.errors()
    assert "stopped: web app, worker, beat and SMTP sink" in running.output()
    with pytest.raises(ProcessLookupError):
        os.killpg(running.process.pid, 0)  # nothing of its process group is left
    assert port_is_free(running.port) and port_is_free(running.smtp_port)
    assert len(list((folder / "outbox").glob("*.eml"))) == recipients  # none sent twice


def test_dev_stops_on_sigterm_too(running: Running) -> None:
    running.process.send_signal(signal.SIGTERM)
    assert running.process.wait(60) == 0, running.errors()
    with pytest.raises(ProcessLookupError):
        os.killpg(running.process.pid, 0)
    assert port_is_free(running.port) and port_is_free(running.smtp_port)


def test_dev_refuses_a_port_in_use_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [*NEWSLETTER, "dev", "--port", str(port), "--smtp-port", str(free_port())],
            cwd=tmp_path,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"cannot listen on 127.0.0.1:{port} for the web app (--port)" in done.stderr


def test_sink_alone_writes_what_it_receives_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    import smtplib

    port = free_port()
    with (tmp_path / "sink.out").open("wb") as out:
        process = subprocess.Popen(
            [*NEWSLETTER, "sink", "--port", str(port), "--outbox", str(tmp_path / "mail")],
            cwd=tmp_path,
            env=clean_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while port_is_free(port):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.sendmail(
                "a@example.org",
                ["b@example.org"],
                b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nbody\r\n",
            )
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    said = (tmp_path / "sink.out").read_text(encoding="utf-8")
    assert f"SMTP sink on 127.0.0.1:{port}, writing to {tmp_path / 'mail'}" in said
    assert "received: to b@example.org, 'hi'" in said
    assert [p.name for p in (tmp_path / "mail").glob("*.eml")] == ["000001.eml"]
    assert port_is_free(port)
