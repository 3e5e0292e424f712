"""Quoted-printable (RFC 2045 6.7) for a part encoded once per issue and patched per recipient.

``QPTemplate`` splits a compiled part at its per-recipient placeholders, encodes the fixed
chunks once and, per recipient, only the few personal values, then joins the bytes. Each piece
starts on a fresh line: a piece that does not end with a line break gets a soft break
(``=\\r\\n``), so no encoded line of one piece runs into the next and no ``=XX`` escape is split.

What every piece guarantees, and so the whole part:
- lines of at most 76 characters, CRLF line ends (no bare CR or LF);
- no line starts with ``.``: a leading dot is written ``=2E``, so the message never needs
  SMTP dot-stuffing (RFC 5321 4.5.2);
- the fixed text's line breaks (CRLF, CR or LF) are hard line breaks, i.e. CRLF once decoded,
  the canonical form of text (RFC 2045 6.7 rule 4); a personal value travels byte for byte
  (a CR or LF in it is written ``=0D``/``=0A``).
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Mapping

from newsletter.content.rendering import Personaliser
from newsletter.mail.dkim_canon import relaxed_lines

CRLF = b"\r\n"
SOFT_BREAK = b"=\r\n"
MAX_LINE = 76  # characters per encoded line, the soft break's "=" included
_TOKEN = re.compile(rb"=[0-9A-F]{2}|.", re.DOTALL)  # one encoded character


def canonical_text(text: str) -> str:
    """Every line break (CRLF, CR or LF) as CRLF, as the fixed text is encoded."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def encode(data: bytes, *, text: bool) -> bytes:
    """``data`` as quoted-printable lines that start at a line's beginning.

    ``text``: CRLF in ``data`` becomes a hard line break (``data`` must have no bare CR or LF,
    see ``canonical_text``); otherwise every byte is kept, CR and LF escaped.
    The result ends where ``data`` ends: with a hard line break, or mid-line (see ``finish``).
    """
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=text)
    if len(encoded) < MAX_LINE and b"\n" not in encoded and not encoded.startswith(b"."):
        return encoded  # one short line, as nearly every personal value is: nothing to mend
    if b"\r" not in encoded:
        # binascii writes LF line ends unless data's first line break is CRLF; without a CR
        # in the output, every LF in it is a line end (istext=False escapes the data's own)
        encoded = encoded.replace(b"\n", CRLF)
    if encoded.startswith(b".") or b"\r\n." in encoded:
        encoded = _no_leading_dots(encoded)
    if any(len(line) > MAX_LINE for line in encoded.split(CRLF)):
        # binascii does not count the =20 or =09 it writes for white space before a line
        # break: such a line can come out at 77 characters (found by hypothesis)
        encoded = _short_lines(encoded)
    return encoded


def _short_lines(encoded: bytes) -> bytes:
    out: list[bytes] = []
    for line in encoded.split(CRLF):
        if len(line) > MAX_LINE:
            out.extend(_rewrap(line, soft=line.endswith(b"=")))
        else:
            out.append(line)
    return CRLF.join(out)


def finish(encoded: bytes) -> bytes:
    """``encoded`` ending with a line break: a soft one added, unless it ends with one."""
    if not encoded or encoded.endswith(CRLF):
        return encoded
    start = encoded.rfind(CRLF)
    start = 0 if start < 0 else start + 2  # the last line's first character
    if len(encoded) - start < MAX_LINE:
        return encoded + SOFT_BREAK
    return encoded[:start] + CRLF.join(_rewrap(encoded[start:], soft=True)) + CRLF


def _no_leading_dots(encoded: bytes) -> bytes:
    out: list[bytes] = []
    for line in encoded.split(CRLF):
        if line.startswith(b"."):
            out.extend(_rewrap(line, soft=line.endswith(b"=")))
        else:
            out.append(line)
    return CRLF.join(out)


def _rewrap(line: bytes, *, soft: bool) -> list[bytes]:
    """One encoded line (ending with its soft break's "=" when ``soft``) as lines of at most
    76 characters that do not start with a dot, every one but the last ending with "="."""
    body = line[:-1] if soft and line.endswith(b"=") else line
    lines: list[bytes] = []
    current = b""
    for token in _TOKEN.findall(body):
        if not current and token == b".":
            token = b"=2E"
        if len(current) + len(token) > MAX_LINE - 1:
            lines.append(current + b"=")
            current = b"=2E" if token == b"." else token
        else:
            current += token
    lines.append(current + b"=" if soft else current)
    return lines


class QPTemplate:
    """A part's text with holes for the recipient, quoted-printable; ``render`` per recipient.

    ``final_newline``: the decoded part ends with a line break (one is added when the text has
    none), as a text/plain part should; off, the decoded part is the text exactly, as for HTML.
    """

    def __init__(self, template: str, *, html_escape: bool, final_newline: bool) -> None:
        self._fill = Personaliser(template, html_escape=html_escape)
        self._fields = self._fill.fields
        fixed = [canonical_text(literal).encode("utf-8") for literal in self._fill.literals]
        self._fixed = [finish(encode(chunk, text=True)) for chunk in fixed]
        self._fixed_tails = [chunk[-2:] for chunk in fixed]  # the decoded chunk's last bytes
        self._final_newline = final_newline
        # the fixed pieces with a slot between each two for a field's encoding (b"" when
        # empty), filled per recipient and joined (a join copies; a bytes format of the same
        # 75 KB scans it for "%" too: twice the time); and the same in DKIM's relaxed form
        # (``render_relaxed``), each fixed piece relaxed once
        self._frame = self._framed(self._fixed)
        self._relaxed_frame = self._framed([relaxed_lines(chunk) for chunk in self._fixed])
        self._names = tuple(dict.fromkeys(self._fields))
        # the decoded part's end, walked back from the last piece: (fixed tail, field) pairs
        self._backwards = list(
            zip(reversed(self._fixed_tails[1:]), reversed(self._fields), strict=True)
        )

    def _encoded(self, values: Mapping[str, str]) -> tuple[dict[str, bytes], dict[str, bytes]]:
        """Each distinct field's value (UTF-8) and its quoted-printable piece (b"" when empty):
        a piece starts on a fresh line, so a value's encoding is the same wherever it stands and
        each is made once per recipient (the tracking token fills every link)."""
        value = self._fill.value
        raws = {name: value(name, values).encode("utf-8") for name in self._names}
        encoded = {
            name: finish(encode(raw, text=False)) if raw else b"" for name, raw in raws.items()
        }
        return raws, encoded

    @staticmethod
    def _framed(fixed: list[bytes]) -> list[bytes]:
        frame = [b""] * (2 * len(fixed) - 1)
        frame[0::2] = fixed
        return frame

    def _filled(self, frame: list[bytes], pieces: Mapping[str, bytes], newline: bool) -> bytes:
        out = frame.copy()
        out[1::2] = [pieces[name] for name in self._fields]
        if newline:
            out.append(CRLF)
        return b"".join(out)

    def _needs_newline(self, raws: Mapping[str, bytes]) -> bool:
        return self._final_newline and self._tail(raws) != CRLF

    def render(self, values: Mapping[str, str]) -> bytes:
        """The part for one recipient: the fixed pieces and the fields' pieces joined once (the
        HTML part of a digest has some 40 holes, one tracking token in every link)."""
        raws, encoded = self._encoded(values)
        return self._filled(self._frame, encoded, self._needs_newline(raws))

    def _tail(self, raws: Mapping[str, bytes]) -> bytes:
        """The decoded part's last two bytes."""
        tail = b""
        for fixed_tail, name in self._backwards:
            tail = fixed_tail + tail
            if len(tail) >= 2:
                return tail[-2:]
            tail = raws[name] + tail
            if len(tail) >= 2:
                return tail[-2:]
        return (self._fixed_tails[0] + tail)[-2:]

    def render_relaxed(self, values: Mapping[str, str]) -> tuple[bytes, bytes]:
        """(``render``'s bytes, their lines in DKIM's relaxed form): the fixed pieces' relaxed
        form was made once, per recipient only the personal pieces' is (every piece ends with
        a line break, so the pieces' relaxed forms join into the whole's)."""
        raws, encoded = self._encoded(values)
        relaxed = {name: relaxed_lines(piece) for name, piece in encoded.items()}
        newline = self._needs_newline(raws)
        return (
            self._filled(self._frame, encoded, newline),
            self._filled(self._relaxed_frame, relaxed, newline),
        )
