"""The command line and the outbound guard: a refused or failed fetch is one red line, exit 1.

The commands run in a folder with their own SQLite database; ``allowed`` also has a ``.env``
allowing 127.0.0.0/8 (``NEWSLETTER_OUTBOUND_ALLOW_NETWORKS``), where the test servers listen.
"""

from __future__ import annotations

import functools
import socket
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_cli import assert_one_line_error, cli

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _migrated(folder: Path) -> Path:
    done = cli(folder, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    return folder


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the default settings: public addresses only."""
    return _migrated(tmp_path_factory.mktemp("strict"))


@pytest.fixture(scope="module")
def allowed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose settings allow 127.0.0.0/8 and cut responses off after one second."""
    folder = tmp_path_factory.mktemp("allowed")
    (folder / ".env").write_text(
        "NEWSLETTER_OUTBOUND_ALLOW_NETWORKS=127.0.0.0/8\nNEWSLETTER_OUTBOUND_READ_TIMEOUT=1\n"
    )
    return _migrated(folder)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def feeds() -> Iterator[str]:
    """The fixtures folder over HTTP on 127.0.0.1; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(FIXTURES))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_importing_a_local_feed_url_is_one_red_line(strict: Path, feeds: str) -> None:
    done = cli(strict, "articles", "import", f"{feeds}/feed_rss.xml")
    assert_one_line_error(done, "the address is not allowed (not a public address)")
    assert done.stderr.lstrip().startswith("error:")


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/latest/meta-data/", "http://2130706433/", "http://[::1]:6379/"],
)
def test_importing_an_internal_feed_url_is_one_red_line(strict: Path, url: str) -> None:
    assert_one_line_error(cli(strict, "articles", "import", url), "not a public address")


def test_the_allow_setting_lets_the_import_fetch(allowed: Path, feeds: str) -> None:
    done = cli(allowed, "articles", "import", f"{feeds}/feed_rss.xml")
    assert done.returncode == 0, done.stderr
    assert "created 2, updated 0" in done.stdout


def test_a_missing_feed_is_one_line_naming_the_status(allowed: Path, feeds: str) -> None:
    assert_one_line_error(cli(allowed, "articles", "import", f"{feeds}/gone.xml"), "HTTP 404")


def test_a_server_that_never_answers_is_one_line(allowed: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:  # accepts (backlog), never answers
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/feed.xml"
        done = cli(allowed, "articles", "import", url)
    assert_one_line_error(done, f"could not fetch {url}: no answer from the server")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:6379/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
    ],
)
def test_webhooks_add_refuses_internal_addresses_in_one_line(strict: Path, url: str) -> None:
    done = cli(strict, "webhooks", "add", url, "--event", "delivery.sent")
    assert_one_line_error(done, "not allowed (not a public address)")
    assert "http" not in cli(strict, "webhooks", "list").stdout
