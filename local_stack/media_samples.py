"""Small, real media files made on the spot, for the demo, the tests and the benchmarks.

A PNG photo (a gradient, encoded with zlib), a PDF with text pages (uncompressed, so
its pages can be counted), and a voice note. The voice note is an Ogg page header
followed by bytes derived from its text: the stand-in model does not decode audio
(it transcribes from a registry keyed by the bytes), and the real API is never asked
to transcribe it by the tests.
"""

from __future__ import annotations

import hashlib
import struct
import zlib


def png(width: int = 64, height: int = 48, seed: int = 0) -> bytes:
    """An RGB PNG: a colour gradient (different for each seed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    rows = b"".join(
        b"\x00"
        + b"".join(
            bytes(((x * 4 + seed) % 256, (y * 5 + seed * 3) % 256, (x + y) % 256)) for x in range(width)
        )
        for y in range(height)
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def pdf(pages: list[str]) -> bytes:
    """A PDF with one line of text per page (Helvetica), uncompressed."""
    count = len(pages)
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids ["
        + " ".join(f"{4 + 2 * i} 0 R" for i in range(count))
        + f"] /Count {count} >>",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for index, text in enumerate(pages):
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 14 Tf 72 720 Td ({escaped}) Tj ET"
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            f"/Contents {5 + 2 * index} 0 R >>"
        )
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream")
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def voice_note(words: str, seconds: int = 4) -> bytes:
    """Bytes standing for a voice note of about `seconds` (2 KB per second, like Opus at 16 kbit/s)."""
    header = b"OggS\x00\x02" + b"\x00" * 20 + b"OpusHead"
    seed = hashlib.sha256(words.encode()).digest()
    body = (seed * (2000 * seconds // len(seed) + 1))[: 2000 * seconds]
    return header + body
