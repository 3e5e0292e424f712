"""SMTP over one reused connection, with replies sorted into temporary and permanent failures.

When the server offers PIPELINING (RFC 2920), MAIL FROM, RCPT TO and DATA go in one write and
their three replies are read after it: two round trips a message (the commands, then the
content) instead of four. The content is sent as it is, in one system call with its ending
``.``: messages from ``mail.message`` have no line starting with a dot, so the dot-stuffing
pass only runs (and copies the message) for a message that has one.

``send_then`` also names the next recipient: its MAIL FROM, RCPT TO and DATA follow this
message's ending dot in the same write (RFC 2920 3.1: message content may open a group), and
their replies are read by the next ``send``: one round trip a message. Nothing of the next
message itself is written before that ``send``. A connection whose announced recipient is not
the next one sent (a row skipped or stopped after all) is dropped, never ended with a dot: a
server discards a message whose DATA the connection did not finish.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

import idna

from newsletter.transports import CleanMessage, PermanentFailure, TemporaryFailure


@dataclass(frozen=True)
class SMTPConfig:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 30.0


def _reply(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return f"{code} {text}".strip()


@dataclass(frozen=True)
class _Next:
    """What follows a message: the next recipient's commands after its dot (``after``; empty
    when none is announced) and whose they are (envelope from, to), and the caller's work to run
    before the message's reply is read."""

    after: bytes = b""
    whose: tuple[str, str] | None = None
    meanwhile: Callable[[], None] | None = None


class SMTPTransport:
    """Keeps one connection open across messages; reconnects once when the server hung up."""

    def __init__(self, config: SMTPConfig) -> None:
        self.config = config
        self._conn: smtplib.SMTP | None = None
        #: (envelope from, to) whose MAIL, RCPT and DATA were written after the last message's
        #: dot, their replies not read yet: that recipient's ``send`` reads them
        self._announced: tuple[str, str] | None = None

    def _connect(self, *, fresh: bool = True) -> smtplib.SMTP:
        """A connection that said hello (and logged in). ``fresh``: no message of this send was
        written on a connection yet, so a failure here says ``connecting`` (safe elsewhere)."""
        try:
            return self._open()
        except (TemporaryFailure, PermanentFailure) as exc:
            exc.connecting = fresh
            raise

    def _open(self) -> smtplib.SMTP:
        cfg = self.config
        try:
            conn = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
            conn.ehlo_or_helo_if_needed()  # here, so that a refused EHLO is a connect failure
            if cfg.starttls:
                conn.starttls(context=ssl.create_default_context())
            if cfg.username:
                conn.login(cfg.username, cfg.password or "")
            if conn.sock is not None:
                # each write is a whole unit (commands, or a message with its end) that the
                # server answers: nothing to gain from Nagle's delay, only a stall to risk
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except smtplib.SMTPResponseException as exc:
            raise _classify(exc.smtp_code, exc.smtp_error) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TemporaryFailure(f"cannot connect to {cfg.host}:{cfg.port}: {exc}") from exc
        return conn

    def send(self, envelope_from: str, to: str, data: bytes) -> str:
        return self._deliver(envelope_from, to, data, None, None)

    def send_then(
        self,
        envelope_from: str,
        to: str,
        data: bytes,
        then: str | None,
        meanwhile: Callable[[], None] | None = None,
    ) -> str:
        """``send``; with ``then`` (the next recipient, from the same sender) its MAIL, RCPT and
        DATA follow this message's dot in the same write, where the server pipelines and the
        address needs no SMTPUTF8; the next ``send`` of that recipient reads their replies.
        ``meanwhile`` runs once the message is written, before its reply is read (the caller's
        next message built while the server reads this one); it must not raise."""
        if type(self).send is not SMTPTransport.send:  # a subclass takes each message itself
            return self.send(envelope_from, to, data)
        return self._deliver(envelope_from, to, data, then, meanwhile)

    def _deliver(
        self,
        envelope_from: str,
        to: str,
        data: bytes,
        then: str | None,
        meanwhile: Callable[[], None] | None,
    ) -> str:
        if self._announced is not None and self._announced != (envelope_from, to):
            self.abandon()
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = self._connect(fresh=attempt == 1)
            try:
                return self._send_once(self._conn, envelope_from, to, data, then, meanwhile)
            except (smtplib.SMTPServerDisconnected, ConnectionError, TimeoutError) as exc:
                self._drop()
                if attempt == 2:
                    raise TemporaryFailure(f"connection lost: {exc}") from exc
        raise AssertionError("unreachable")

    def abandon(self) -> None:
        """The recipient announced by ``send_then`` will not be sent: the connection goes (its
        DATA may be open; only a dot would end it, and that would deliver an empty message)."""
        if self._announced is not None:
            self._drop()

    def _send_once(
        self,
        conn: smtplib.SMTP,
        envelope_from: str,
        to: str,
        data: bytes,
        then: str | None,
        meanwhile: Callable[[], None] | None,
    ) -> str:
        announced, self._announced = self._announced is not None, None
        conn.ehlo_or_helo_if_needed()
        sender, utf8_from = envelope_address(envelope_from)
        recipient, utf8_to = envelope_address(to)
        options = _utf8_options(conn, recipient) if utf8_from or utf8_to else []
        try:
            if conn.does_esmtp and conn.has_extn("pipelining"):
                after = _announcement(sender, utf8_from, then)
                whose = (envelope_from, then) if after and then is not None else None
                nxt = _Next(after, whose, meanwhile)
                return self._pipelined(conn, sender, recipient, options, data, announced, nxt)
            code, msg = conn.mail(sender, options)
            if code != 250:
                self._fail(conn, code, msg)
            code, msg = conn.rcpt(recipient)
            if code not in (250, 251):
                self._fail(conn, code, msg)
            code, msg = conn.docmd("data")
            if code != 354:
                self._fail(conn, code, msg)
            return self._content(conn, data, _Next(meanwhile=meanwhile))
        finally:
            conn.command_encoding = "ascii"  # SMTPUTF8 lasts one transaction

    def _pipelined(
        self,
        conn: smtplib.SMTP,
        sender: str,
        recipient: str,
        options: list[str],
        data: bytes,
        announced: bool = False,
        nxt: _Next = _Next(),
    ) -> str:
        """MAIL, RCPT and DATA in one write (``announced``: written after the last message's
        dot already), then their replies; the first refusal counts. ``nxt``: what follows this
        message's dot (the next recipient's commands) and runs while its reply is awaited."""
        if not announced:
            conn.send(_commands(sender, recipient, options))
        refused: tuple[int, bytes] | None = None
        for accepted in ((250,), (250, 251), (354,)):
            code, msg = conn.getreply()
            if code in (421, -1):  # the server is closing, or out of step: nothing more to read
                if refused is not None:  # an earlier refusal is what the message got
                    self._drop()
                    raise _classify(*refused)
                self._fail(conn, code, msg)
            if refused is None and code not in accepted:
                refused = (code, msg)
        if refused is not None:
            if code == 354:
                # DATA accepted though MAIL or RCPT was refused: end an empty message (RFC 2920
                # 3.1); whatever the server says to it, the refusal above is the outcome
                conn.send(b".\r\n")
                conn.getreply()
            self._fail(conn, *refused)
        return self._content(conn, data, nxt)

    def _content(self, conn: smtplib.SMTP, data: bytes, nxt: _Next = _Next()) -> str:
        """After a 354: the message and its ending dot (and the next recipient's commands,
        announced); the server's verdict on it."""
        parts = _data_parts(data)
        if nxt.after:
            parts.append(nxt.after)
        _send_parts(conn, parts)
        self._announced = nxt.whose
        if nxt.meanwhile is not None:
            nxt.meanwhile()
        code, msg = conn.getreply()
        if code != 250:
            self._fail(conn, code, msg)
        return _reply(code, msg)

    def _fail(self, conn: smtplib.SMTP, code: int, msg: bytes | str) -> NoReturn:
        if code == 421:  # the server is closing the connection
            self._drop()
        elif code == -1:
            self._drop()
            raise TemporaryFailure("connection lost mid-transaction", code=None)
        elif self._announced is None:  # else the announced commands follow: the next send's
            self._reset(conn)
        raise _classify(code, msg)

    def _reset(self, conn: smtplib.SMTP) -> None:
        try:
            conn.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        self._announced = None
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def close(self) -> None:
        self.abandon()  # an announced DATA is never ended: the connection just goes
        if self._conn is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._conn.quit()
            self._drop()


#: a dot-atom address (RFC 5322 3.4.1: no quotes, comments, spaces or domain literal)
_DOT_ATOM = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
)


def bracketed(address: str) -> str:
    """``<address>`` for MAIL and RCPT, as ``smtplib.quoteaddr`` writes it. Nearly every address
    is a dot-atom, which its parser (``email.utils.parseaddr``, 13 us, twice a message) returns
    unchanged; any other goes through it."""
    if _DOT_ATOM.fullmatch(address):
        return f"<{address}>"
    return smtplib.quoteaddr(address)


def envelope_address(address: str) -> tuple[str, bool]:
    """(the address for MAIL/RCPT, whether it needs SMTPUTF8).

    An internationalised domain travels as its IDNA (``xn--``) form, which every server takes;
    only a non-ASCII local part needs the relay's SMTPUTF8 extension (RFC 6531).
    """
    if "\r" in address or "\n" in address:  # would end the command and start another
        reason = f"local: the address {address!r} contains a line break"
        raise PermanentFailure(reason, code=None, response=reason)
    local, at, domain = address.rpartition("@")
    if at and not domain.isascii():
        try:
            domain = idna.encode(domain, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            reason = f"local: the domain of {address!r} is not valid: {exc}"
            raise PermanentFailure(reason, code=None, response=reason) from None
        address = f"{local}@{domain}"
    return address, not address.isascii()


def _commands(sender: str, recipient: str, options: list[str]) -> bytes:
    """MAIL FROM, RCPT TO and DATA of one message, for one write."""
    extra = "".join(f" {option}" for option in options)
    commands = f"MAIL FROM:{bracketed(sender)}{extra}\r\nRCPT TO:{bracketed(recipient)}\r\nDATA\r\n"
    return commands.encode("utf-8" if "SMTPUTF8" in options else "ascii")


def _announcement(sender: str, utf8_from: bool, then: str | None) -> bytes:
    """The next recipient's commands to write after this message's dot; nothing when there is
    none, or when its address needs SMTPUTF8 or is refused here (its own ``send`` says why)."""
    if then is None or utf8_from:
        return b""
    try:
        recipient, utf8_to = envelope_address(then)
    except PermanentFailure:
        return b""
    return b"" if utf8_to else _commands(sender, recipient, [])


def _utf8_options(conn: smtplib.SMTP, recipient: str) -> list[str]:
    if not conn.has_extn("smtputf8"):
        # never a bounce (the mailbox may be fine) and never a crash: the row fails, saying why
        raise PermanentFailure(
            f"local: the relay does not offer SMTPUTF8, which the non-ASCII address "
            f"{recipient!r} needs",
            code=None,
            response="local: the relay does not offer SMTPUTF8 (non-ASCII address)",
        )
    return ["SMTPUTF8", "BODY=8BITMIME"] if conn.has_extn("8bitmime") else ["SMTPUTF8"]


def _data_parts(data: bytes) -> list[bytes]:
    """The DATA payload as parts to write in one go: the message, then the end of data.

    A line starting with a dot gets another (RFC 5321 4.5.2): only a message not built by
    ``mail.message`` (which writes a leading dot as ``=2E``) can have one, so the common path
    checks (one C scan; none for a ``CleanMessage``, which has none by construction) and sends
    ``data`` itself, never a copy. Messages are CRLF throughout, so smtplib's bare-LF repair is
    not needed.
    """
    if not isinstance(data, CleanMessage) and (data.startswith(b".") or b"\r\n." in data):
        data = data.replace(b"\r\n.", b"\r\n..")
        if data.startswith(b"."):
            data = b"." + data
    return [data, b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n"]


def _send_parts(conn: smtplib.SMTP, parts: list[bytes]) -> None:
    """Write ``parts`` as one stream: one ``sendmsg`` (gather, no copy) on a plain socket."""
    sock = conn.sock
    if sock is None:
        raise smtplib.SMTPServerDisconnected("please run connect() first")
    try:
        if isinstance(sock, ssl.SSLSocket):  # TLS has no sendmsg: one joined write
            sock.sendall(b"".join(parts))
            return
        views = [memoryview(part) for part in parts if part]
        while views:
            sent = sock.sendmsg(views)
            while views and sent >= len(views[0]):
                sent -= len(views.pop(0))
            if sent:
                views[0] = views[0][sent:]
    except OSError as exc:
        conn.close()  # as smtplib's own send does
        raise smtplib.SMTPServerDisconnected(f"connection lost while sending: {exc}") from exc


def _classify(code: int, message: bytes | str) -> TemporaryFailure | PermanentFailure:
    reply = _reply(code, message)
    if 400 <= code < 500:
        return TemporaryFailure(f"temporary failure: {reply}", code=code, response=reply)
    return PermanentFailure(f"permanent failure: {reply}", code=code, response=reply)
