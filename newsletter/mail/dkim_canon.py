"""DKIM relaxed/relaxed canonicalization (RFC 6376 3.4.2 header, 3.4.4 body) and the header
parsing it needs.

The body is canonicalised in C-speed passes over the whole of it (``in``, ``replace``, regex
searches led by a literal), each change made only when there is something to change: our
per-recipient bodies differ, so each message's body is canonicalised and hashed once, for all
its signatures.
"""

from __future__ import annotations

import re

from newsletter.exceptions import InvalidInput

# RFC 5322 2.2: a field name is printable ASCII but the colon; a folded line starts with WSP
_FIELD = re.compile(rb"([!-9;-~]+)[ \t]*:")
# RFC 6376 3.4.2 and 3.4.4: tabs become spaces first, then a run of spaces becomes one
_SPACES = re.compile(rb"  +")  # in a header value
_SPACES_TO_CHANGE = re.compile(rb" [ \r]")  # a run of spaces, or one before CRLF (tabs gone)
_LONE_CR = re.compile(rb"\r(?!\n)")
FOLD = re.compile(rb"\r\n(?=[ \t])")


def relaxed_body(body: bytes) -> bytes:
    """RFC 6376 3.4.4 relaxed body canonicalization of CRLF ``body``.

    A last line without CRLF is taken as ending in one, as it will after the SMTP hop.
    """
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    return relaxed_end(relaxed_lines(body))


def relaxed_lines(data: bytes) -> bytes:
    """RFC 6376 3.4.4's rules for the lines of ``data`` (CRLF lines): a run of spaces and tabs
    becomes one space, and none is left at a line's end. The rule for the body's end is
    ``relaxed_end``'s: pieces that each end with CRLF, canonicalised apart and joined, are the
    whole's lines canonicalised (the rules never reach across a line break), which lets a
    message template canonicalise its fixed pieces once per issue.

    Each step is one C-speed pass over the whole of ``data`` (``in``, ``replace``, a regex
    search led by a literal), and changes are made only when there is something to change.
    """
    if b"\t" in data:
        data = data.replace(b"\t", b" ")
    if _SPACES_TO_CHANGE.search(data) is not None:
        # every run of spaces becomes one space (each pass halves the runs: a few passes, each
        # faster than one regex substitution), so trailing WSP is a space before CRLF
        while b"  " in data:
            data = data.replace(b"  ", b" ")
        data = data.replace(b" \r\n", b"\r\n")
    return data


def relaxed_end(lines: bytes) -> bytes:
    """The end of a relaxed body (RFC 6376 3.4.4): no empty lines at the end, one CRLF after
    the last line, nothing at all for an empty body. ``lines``: CRLF lines, each ending so."""
    lines = lines.rstrip(b"\r\n")  # CRLF only here (checked): the empty lines at the end
    return lines + b"\r\n" if lines else b""


def relaxed_header(name: bytes, value: bytes) -> bytes:
    """RFC 6376 3.4.2: ``name:value`` lowercased name, unfolded, WSP runs as one space."""
    value = _SPACES.sub(b" ", FOLD.sub(b"", value).replace(b"\t", b" ")).strip(b" ")
    return name.lower() + b":" + value


def parse_headers(head: bytes) -> list[tuple[bytes, bytes]]:
    """(name, raw value with its folding) of each header field of ``head`` (CRLF lines).

    Raises ``InvalidInput`` for a line that is neither a field nor a continuation.
    """
    fields: list[tuple[bytes, bytes]] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
            continue
        match = _FIELD.match(line)
        if match is None:
            raise InvalidInput(f"cannot DKIM-sign the message: malformed header line {line[:40]!r}")
        fields.append((match.group(1), line[match.end() :]))
    return fields


def crlf_only(message: bytes) -> bool:
    """Whether every CR and LF of ``message`` is in a CRLF pair.

    As many CRs as LFs, and each CR followed by an LF, leaves no LF unpaired either: two C-speed
    counts and a literal-led regex search, cheaper than counting b"\\r\\n" on a large message.
    """
    return message.count(b"\r") == message.count(b"\n") and _LONE_CR.search(message) is None


def select_headers(
    fields: list[tuple[bytes, bytes]], listed: list[str]
) -> list[tuple[bytes, bytes]]:
    """The fields ``h=`` names, each name taking its instances from the bottom up (RFC 6376
    5.4.2); a name listed more often than the message has it selects nothing more."""
    by_name: dict[str, list[tuple[bytes, bytes]]] = {}
    for raw_name, value in fields:
        by_name.setdefault(raw_name.lower().decode("ascii"), []).append((raw_name, value))
    chosen: list[tuple[bytes, bytes]] = []
    for name in listed:
        instances = by_name.get(name)
        if instances:
            chosen.append(instances.pop())
    return chosen
