"""The outbound guard: which addresses it refuses, and how it behaves against local servers.

No test reaches the internet: the vetting is tested on addresses and on names only the local
resolver (or a fake one) knows, and connections go to servers on 127.0.0.1 with 127.0.0.0/8
allowed.
"""

from __future__ import annotations

import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from ipaddress import ip_address, ip_network
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.config import Settings
from newsletter.exceptions import InvalidInput
from newsletter.outbound import (
    AddressNotAllowed,
    IPAddress,
    OutboundError,
    OutboundPolicy,
    fetch,
    is_public,
    request,
    vet_url,
)
from newsletter.transports.sink import free_port

LOOPBACK = (ip_network("127.0.0.0/8"),)
LOCAL = OutboundPolicy(allowed_networks=LOOPBACK, connect_timeout=2.0, read_timeout=3.0)
FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


def resolver(table: dict[str, Sequence[str]]) -> Callable[[str], list[IPAddress]]:
    """A resolver that knows only ``table`` (name -> addresses); others do not resolve."""

    def resolve(host: str) -> list[IPAddress]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ip_address(a) for a in table[host]]

    return resolve


# ---------------------------------------------------------------- vetting


REFUSED_HOSTS = [
    "127.0.0.1",
    "127.1",  # short form of 127.0.0.1
    "127.255.255.254",
    "0.0.0.0",  # Linux connects it to the local host
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.0.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # CGNAT
    "100.127.255.254",
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "255.255.255.255",  # broadcast
    "240.0.0.1",  # reserved
    "192.0.2.1",  # documentation
    "198.18.0.1",  # benchmarking
    "[::1]",
    "[::]",
    "[fe80::1]",
    "[fe80::1%25eth0]",
    "[fc00::1]",
    "[fd12:3456::1]",
    "[fec0::1]",  # site-local (deprecated)
    "[ff02::1]",  # multicast
    "[2001:db8::1]",  # documentation
    "[::ffff:127.0.0.1]",  # IPv4-mapped
    "[::ffff:169.254.169.254]",
    "[::ffff:10.0.0.1]",
    "[::127.0.0.1]",  # IPv4-compatible (deprecated)
    "[2002:7f00:1::1]",  # 6to4 of 127.0.0.1
    "[2002:a9fe:a9fe::1]",  # 6to4 of 169.254.169.254
    "[2001:0:4136:e378:8000:63bf:80ff:fffe]",  # Teredo, client 127.0.0.1
    "[64:ff9b::7f00:1]",  # NAT64 of 127.0.0.1
    "[64:ff9b::a9fe:a9fe]",  # NAT64 of 169.254.169.254
    "localhost",
    "2130706433",  # decimal 127.0.0.1
    "0x7f000001",  # hex
    "0177.0.0.1",  # octal
    "0x7f.1",
    "017700000001",  # octal, one number
]


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_every_non_public_address_class_is_refused(host: str) -> None:
    with pytest.raises(AddressNotAllowed, match=r"not allowed \(not a public address\)"):
        vet_url(f"http://{host}/feed.xml", OutboundPolicy())


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_a_request_to_a_refused_address_is_refused_before_connecting(host: str) -> None:
    with pytest.raises(AddressNotAllowed):
        fetch(f"http://{host}:{free_port()}/", OutboundPolicy())


@pytest.mark.parametrize(
    "address",
    [
        "93.184.215.14",
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700:4700::1111",
        "2a00:1450:4001:82a::200e",
        "::ffff:8.8.8.8",  # IPv4-mapped public
        "64:ff9b::808:808",  # NAT64 of a public address: what a DNS64 resolver gives
        "2002:808:808::1",  # 6to4 of a public address
    ],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public(ip_address(address))
    assert OutboundPolicy().permits(ip_address(address))


def test_multicast_is_refused_although_python_calls_it_global() -> None:
    group = ip_address("224.0.1.1")
    assert group.is_global  # why is_global alone is not enough
    assert not is_public(group)


def test_a_name_that_resolves_to_a_private_address_is_refused() -> None:
    policy = OutboundPolicy(resolver=resolver({"intranet.example.com": ["10.1.2.3"]}))
    with pytest.raises(AddressNotAllowed):
        vet_url("https://intranet.example.com/feed", policy)


def test_a_name_is_refused_unless_every_address_is_public() -> None:
    both = resolver({"mixed.example.com": ["93.184.215.14", "127.0.0.1"]})
    with pytest.raises(AddressNotAllowed):
        vet_url("https://mixed.example.com/", OutboundPolicy(resolver=both))
    public = resolver(
        {"news.example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]}
    )
    addresses = vet_url("https://news.example.com/", OutboundPolicy(resolver=public))
    assert [str(a) for a in addresses] == [
        "93.184.215.14",
        "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
    ]


def test_a_name_that_does_not_resolve_reads_like_a_refused_one() -> None:
    policy = OutboundPolicy(resolver=resolver({"intranet.example.com": ["10.1.2.3"]}))
    messages = []
    for host in ("intranet.example.com", "nothing.example.com"):
        with pytest.raises(AddressNotAllowed) as caught:
            vet_url(f"https://{host}/", policy)
        messages.append(str(caught.value).replace(host, "HOST"))
    assert messages[0] == messages[1]  # whether an internal name exists is not told


def test_allowed_networks_let_their_addresses_through() -> None:
    policy = OutboundPolicy(allowed_networks=(ip_network("10.0.0.0/8"),))
    assert policy.permits(ip_address("10.9.8.7"))
    assert policy.permits(ip_address("::ffff:10.9.8.7"))
    assert not policy.permits(ip_address("192.168.1.1"))
    assert not policy.permits(ip_address("127.0.0.1"))


def test_the_policy_is_built_from_the_settings() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        outbound_allow_networks="127.0.0.0/8, fd00::/8",
        outbound_connect_timeout=1.5,
        outbound_read_timeout=7,
        outbound_max_bytes=4096,
        outbound_max_redirects=1,
    )
    policy = OutboundPolicy.from_settings(settings)
    assert policy.allowed_networks == (ip_network("127.0.0.0/8"), ip_network("fd00::/8"))
    assert (policy.connect_timeout, policy.read_timeout) == (1.5, 7.0)
    assert (policy.max_bytes, policy.max_redirects) == (4096, 1)
    assert OutboundPolicy.from_settings(Settings(_env_file=None)).allowed_networks == ()  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/feed", r"only http\(s\) URLs"),
        ("file:///etc/passwd", r"only http\(s\) URLs"),
        ("http:///feed", r"only http\(s\) URLs"),
        ("http://user:pw@example.com/", "user name or password"),
        ("http://example.com:99999/", "not a valid URL"),
        ("http://[::1/", "not a valid URL"),
    ],
)
def test_unusable_urls_are_one_line_errors(url: str, message: str) -> None:
    with pytest.raises(OutboundError, match=message):
        fetch(url, OutboundPolicy())


@settings(max_examples=200, deadline=None, database=None)
@given(url=st.one_of(st.text(), st.text().map(lambda t: "http://" + t)))
def test_any_url_text_is_vetted_or_an_outbound_error(url: str) -> None:
    policy = OutboundPolicy(resolver=resolver({}))  # no name resolves: no lookup, no connection
    try:
        addresses = vet_url(url, policy)
    except OutboundError:
        return
    assert all(is_public(a) for a in addresses)  # only a public address literal gets through


def test_the_errors_are_invalid_input() -> None:
    assert issubclass(OutboundError, InvalidInput)
    assert issubclass(AddressNotAllowed, OutboundError)


# ---------------------------------------------------------------- local servers


Handler = Callable[[socket.socket, bytes], None]
Serve = Callable[..., "RawServer"]


class RawServer:
    """A TCP server on 127.0.0.1 handing each connection, with its request head, to ``handle``."""

    def __init__(self, handle: Handler, port: int = 0, host: str = "127.0.0.1") -> None:
        self.handle = handle
        self.heads: list[bytes] = []
        self.connections = 0
        self.stop = threading.Event()
        self.host = host
        self.sock = socket.create_server((host, port))
        self.sock.settimeout(0.05)
        self.port = int(self.sock.getsockname()[1])
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            head = b""
            try:
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                self.heads.append(head)
                self.handle(conn, head)
            except OSError:
                pass

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        self.thread.join()


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Start servers (on 127.0.0.1 unless told another host); all stop after the test."""
    servers: list[RawServer] = []

    def start(handle: Handler, host: str = "127.0.0.1") -> RawServer:
        servers.append(RawServer(handle, host=host))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def answer(status: int = 200, body: bytes = FEED, **headers: str) -> Handler:
    def handle(conn: socket.socket, _head: bytes) -> None:
        lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
        lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    return handle


def test_a_local_server_is_refused_without_the_allow_setting(serve: Serve) -> None:
    server = serve(answer())
    with pytest.raises(AddressNotAllowed):
        fetch(server.url("/feed.xml"), OutboundPolicy())
    assert server.connections == 0
    assert fetch(server.url("/feed.xml"), LOCAL) == FEED
    assert server.heads[0].startswith(b"GET /feed.xml HTTP/1.1\r\n")


def test_the_allow_setting_from_settings_lets_a_local_fetch_through(
    serve: Serve,
) -> None:
    server = serve(answer())
    denied = OutboundPolicy.from_settings(Settings(_env_file=None))  # type: ignore[call-arg]
    with pytest.raises(AddressNotAllowed):
        fetch(server.url(), denied)
    allowed = Settings(_env_file=None, outbound_allow_networks="127.0.0.0/8")  # type: ignore[call-arg]
    assert fetch(server.url(), OutboundPolicy.from_settings(allowed)) == FEED


def test_it_connects_to_the_vetted_address_and_keeps_the_name_for_the_host_header(
    serve: Serve,
) -> None:
    server = serve(answer())
    lookups: list[str] = []
    answers = iter([["127.0.0.1"], ["169.254.169.254"]])  # a rebinding resolver

    def rebinding(host: str) -> list[IPAddress]:
        lookups.append(host)
        return [ip_address(a) for a in next(answers)]

    policy = OutboundPolicy(allowed_networks=LOOPBACK, read_timeout=3.0, resolver=rebinding)
    assert fetch(f"http://feeds.example.test:{server.port}/f", policy) == FEED
    assert lookups == ["feeds.example.test"]  # one lookup: the connection used what was vetted
    assert f"\r\nHost: feeds.example.test:{server.port}\r\n".encode() in server.heads[0]


def test_proxies_from_the_environment_are_not_used(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = serve(answer(body=b"from the proxy"))
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.setenv(name, proxy.url())
    server = serve(answer())
    assert fetch(server.url(), LOCAL) == FEED
    assert proxy.connections == 0


def test_redirects_are_followed_each_hop_checked(serve: Serve) -> None:
    target = serve(answer())
    hop = serve(answer(302, b"", Location=target.url("/feed.xml")))
    assert fetch(hop.url("/old"), LOCAL) == FEED
    assert target.heads[0].startswith(b"GET /feed.xml ")


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:6379/",
        "http://internal.example.test/",  # a name resolving to 10.0.0.7
        "http://2130706433/",  # 127.0.0.1 in decimal: only 127.0.0.2/32 is allowed here
    ],
)
def test_a_redirect_to_a_refused_address_is_refused_at_that_hop(
    serve: Serve, location: str
) -> None:
    hop = serve(answer(301, b"", Location=location), "127.0.0.2")
    names = resolver({"internal.example.test": ["10.0.0.7"]})
    policy = OutboundPolicy(allowed_networks=(ip_network("127.0.0.2/32"),), resolver=names)
    with pytest.raises(AddressNotAllowed, match=r"redirected to .*not a public address"):
        fetch(hop.url("/start"), policy)
    assert hop.connections == 1


def test_a_redirect_to_another_scheme_is_refused(serve: Serve) -> None:
    hop = serve(answer(302, b"", Location="file:///etc/passwd"))
    with pytest.raises(OutboundError, match="only http"):
        fetch(hop.url(), LOCAL)


def test_a_malformed_redirect_is_a_clean_error(serve: Serve) -> None:
    hop = serve(answer(302, b"", Location="http://[::1/x"))
    with pytest.raises(OutboundError, match="malformed redirect"):
        fetch(hop.url(), LOCAL)


def test_a_server_that_does_not_speak_http_is_no_answer(serve: Serve) -> None:
    def ssh(conn: socket.socket, _head: bytes) -> None:
        conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")

    server = serve(ssh)
    with pytest.raises(OutboundError, match=r"no answer from the server$"):
        fetch(server.url(), LOCAL)


def test_too_many_redirects_are_refused(serve: Serve) -> None:
    loop = serve(answer(302, b"", Location="/again"))
    policy = OutboundPolicy(allowed_networks=LOOPBACK, max_redirects=2)
    with pytest.raises(OutboundError, match="more than 2 redirects"):
        fetch(loop.url(), policy)
    assert loop.connections == 3  # the first request and two hops, no more


def test_request_follows_no_redirect(serve: Serve) -> None:
    target = serve(answer())
    hop = serve(answer(307, b"moved", Location=target.url()))
    response = request("POST", hop.url("/hook"), LOCAL, body=b"{}")
    assert (response.status, response.headers["location"]) == (307, target.url())
    assert target.connections == 0


def test_an_error_status_is_named(serve: Serve) -> None:
    server = serve(answer(404, b"gone"))
    with pytest.raises(OutboundError, match=r"HTTP 404$"):
        fetch(server.url("/gone.xml"), LOCAL)


def trickle(head: bytes, rest: bytes, every: float = 0.3) -> Handler:
    """Send ``head`` at once, then ``rest`` one byte every ``every`` seconds."""

    def handle(conn: socket.socket, _head: bytes) -> None:
        conn.sendall(head)
        for byte in rest:
            time.sleep(every)
            conn.sendall(bytes([byte]))

    return handle


@pytest.mark.parametrize(
    ("head", "rest"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", b"x" * 100),  # a slow body
        (b"HTTP/1.1 200 OK\r\n", b"X-Slow: " + b"y" * 100 + b"\r\n\r\n"),  # slow headers
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", b"x" * 100),  # read until close
    ],
    ids=["slow-body", "slow-headers", "body-until-close"],
)
def test_a_trickling_server_is_cut_off_at_the_deadline(
    serve: Serve, head: bytes, rest: bytes
) -> None:
    server = serve(trickle(head, rest))
    policy = OutboundPolicy(allowed_networks=LOOPBACK, read_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(OutboundError, match="no answer from the server"):
        fetch(server.url(), policy)
    assert 0.9 <= time.monotonic() - started < 2.5  # about the deadline, not 30 s of bytes


@pytest.mark.parametrize("declared", [True, False])
def test_an_over_size_body_is_refused(serve: Serve, declared: bool) -> None:
    body = b"x" * 5000
    if declared:
        server = serve(answer(body=body))
    else:
        server = serve(trickle(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body, b""))
    policy = OutboundPolicy(allowed_networks=LOOPBACK, max_bytes=4096)
    with pytest.raises(OutboundError, match="larger than 4096 bytes"):
        fetch(server.url(), policy)
    policy = OutboundPolicy(allowed_networks=LOOPBACK, max_bytes=5000)
    assert fetch(server.url(), policy) == body


def test_truncate_at_keeps_the_start_of_a_long_answer(serve: Serve) -> None:
    server = serve(answer(500, b"e" * 50_000))
    response = request("POST", server.url(), LOCAL, body=b"{}", truncate_at=1000)
    assert (response.status, response.body) == (500, b"e" * 1000)


def test_a_connection_closed_mid_response_is_a_clean_error(
    serve: Serve,
) -> None:
    def half(conn: socket.socket, _head: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n<rss>")

    server = serve(half)
    with pytest.raises(OutboundError, match="no answer from the server"):
        fetch(server.url("/feed.xml"), LOCAL)


def reset(conn: socket.socket, _head: bytes) -> None:
    """Abort the connection: close with a zero linger sends a RST."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def silent(conn: socket.socket, _head: bytes) -> None:
    time.sleep(3)


def test_closed_reset_silent_and_dropped_read_the_same(
    serve: Serve,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/feed.xml"
    policy = OutboundPolicy(allowed_networks=LOOPBACK, connect_timeout=1.0, read_timeout=1.0)
    messages: dict[str, str] = {}
    with pytest.raises(OutboundError) as caught:
        fetch(url, policy)  # nothing listens: connection refused
    messages["closed"] = str(caught.value)
    for name, handle in {"reset": reset, "silent": silent, "empty": lambda c, h: None}.items():
        server = RawServer(handle, port=port)
        try:
            with pytest.raises(OutboundError) as caught:
                fetch(url, policy)
        finally:
            server.close()
        assert server.connections == 1
        messages[name] = str(caught.value)
    assert set(messages.values()) == {f"could not fetch {url}: no answer from the server"}


# ---------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for feeds.example.test (openssl), as (cert, key) files."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=feeds.example.test", "-addext", "subjectAltName=DNS:feeds.example.test",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"openssl cannot make a test certificate: {exc}")
    return cert, key


def test_tls_uses_the_name_for_sni_and_the_certificate_check(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    names: list[str | None] = []
    server_context.sni_callback = lambda _sock, name, _ctx: names.append(name)  # type: ignore[assignment,func-returns-value]
    plain = answer()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve_tls() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            try:
                with server_context.wrap_socket(conn, server_side=True) as tls:
                    head = b""
                    while b"\r\n\r\n" not in head:
                        head += tls.recv(4096)
                    plain(tls, head)
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=serve_tls, daemon=True)
    thread.start()
    names_resolve = resolver({"feeds.example.test": ["127.0.0.1"]})
    policy = OutboundPolicy(allowed_networks=LOOPBACK, read_timeout=5.0, resolver=names_resolve)
    url = f"https://feeds.example.test:{port}/feed.xml"
    try:
        # the system's CAs do not know this certificate: refused, and said so
        with pytest.raises(OutboundError, match="TLS certificate is not valid"):
            fetch(url, policy)
        trusting = ssl.create_default_context(cafile=str(cert))
        monkeypatch.setattr(ssl, "create_default_context", lambda: trusting)
        assert fetch(url, policy) == FEED  # the certificate names the host, not 127.0.0.1
    finally:
        thread.join(timeout=5)
        listener.close()
    assert names == ["feeds.example.test", "feeds.example.test"]
