"""Stand-in pictures for emails rendered in a browser: the sample articles' image host does not
exist, so a test or bench serves every story image as one small solid-colour PNG."""

from __future__ import annotations

import struct
import zlib


def png(width: int, height: int, rgb: tuple[int, int, int] = (120, 130, 140)) -> bytes:
    """A solid-colour PNG of ``width`` x ``height`` (RGB, 8 bits)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


#: 16:9, the shape of the sample articles' photos
PHOTO = png(160, 90)
