"""The autopilot tests' feed: a real HTTP server on 127.0.0.1 serving one changeable document with
an ETag, answering a matching ``If-None-Match`` with 304, and recording what it was asked."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape


@dataclass
class Story:
    slug: str
    title: str
    published: datetime
    category: str
    author: str = "Olga Varabei"
    image: str = ""
    credit: str = ""

    @property
    def url(self) -> str:
        return f"https://news.example.org/2026/{self.slug}"


@dataclass
class FeedState:
    body: bytes = b""
    content_type: str = "application/rss+xml"
    requests: list[dict[str, str]] = field(default_factory=list)  # the headers of each GET
    answers: list[int] = field(default_factory=list)

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'

    def serve(self, body: bytes, content_type: str = "application/rss+xml") -> None:
        self.body, self.content_type = body, content_type


def rss(stories: list[Story]) -> bytes:
    """An RSS 2.0 feed with Media RSS images and credits, categories, authors."""
    items = []
    for s in stories:
        media = ""
        if s.image:
            credit = f"<media:credit>{escape(s.credit)}</media:credit>" if s.credit else ""
            media = f'<media:content url="{s.image}" medium="image">{credit}</media:content>'
        items.append(
            f"<item><title>{escape(s.title)}</title><link>{s.url}</link><guid>{s.url}</guid>"
            f"<description>&lt;p&gt;{escape(s.title)}, in brief.&lt;/p&gt;"
            f"&lt;script&gt;alert(1)&lt;/script&gt;</description>"
            f"<author>{escape(s.author)}</author><category>{s.category}</category>"
            f"<pubDate>{format_datetime(s.published)}</pubDate>{media}</item>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
        'xmlns:media="http://search.yahoo.com/mrss/"><channel><title>Newsroom</title>'
        "<link>https://news.example.org/</link><description>All stories</description>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


@contextmanager
def feed_server() -> Iterator[tuple[str, FeedState]]:
    """(the feed's URL, its state) while a real HTTP server serves it."""
    state = FeedState()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests.append({k.lower(): v for k, v in self.headers.items()})
            if self.headers.get("If-None-Match") == state.etag:
                state.answers.append(304)
                self.send_response(304)
                self.send_header("ETag", state.etag)
                self.end_headers()
                return
            state.answers.append(200)
            self.send_response(200)
            self.send_header("Content-Type", state.content_type)
            self.send_header("Content-Length", str(len(state.body)))
            self.send_header("ETag", state.etag)
            self.end_headers()
            self.wfile.write(state.body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/feed", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
