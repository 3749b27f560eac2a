#!/usr/bin/env python3
"""Regenerate ``qshm_compat/data/qt-example.png``, the picture ``python -m qshm_compat demo`` shows.

Run from the project root::

    .venv/bin/python tests/data/make_example_png.py           # rewrite the file
    .venv/bin/python tests/data/make_example_png.py --check   # exit 1 if the file differs

A 128x96 RGBA picture drawn in pure Python (no Pillow): a rounded green tile with a white "Q" and
its shadow, anti-aliased edges (partly transparent pixels) and fully transparent corners, so that
alpha goes through the demo too.  The PNG has one IDAT (filter 0 on every row, zlib level 9) and no
ancillary chunks.  ``--check`` renders the picture again and compares the file's pixels with it
(not its bytes: another zlib may compress differently).
"""

from __future__ import annotations

import argparse
import math
import struct
import sys
import zlib
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent.parent / "qshm_compat" / "data" / "qt-example.png"
WIDTH, HEIGHT = 128, 96
SAMPLES = 4  # per axis: 16 samples per pixel smooth the edges
QT_GREEN = (0x41, 0xCD, 0x52)
DARK_GREEN = (0x21, 0x7A, 0x2E)
WHITE = (0xFF, 0xFF, 0xFF)


def _rounded_rect(x: float, y: float, x0: float, y0: float, x1: float, y1: float, r: float) -> bool:
    if not (x0 <= x <= x1 and y0 <= y <= y1):
        return False
    cx = min(max(x, x0 + r), x1 - r)
    cy = min(max(y, y0 + r), y1 - r)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r


def _in_q(x: float, y: float, ox: float = 0.0, oy: float = 0.0) -> bool:
    """The letter Q: a ring and a diagonal tail."""
    x, y = x - ox, y - oy
    d = math.hypot(x - 64, y - 46)
    if 20 <= d <= 31:
        return True
    # tail: a thick segment from (70, 54) to (90, 76)
    ax, ay, bx, by = 70.0, 54.0, 90.0, 76.0
    t = ((x - ax) * (bx - ax) + (y - ay) * (by - ay)) / ((bx - ax) ** 2 + (by - ay) ** 2)
    t = min(max(t, 0.0), 1.0)
    return math.hypot(x - (ax + t * (bx - ax)), y - (ay + t * (by - ay))) <= 5.5


def _sample(x: float, y: float) -> tuple[float, float, float, float]:
    """Straight (not premultiplied) RGBA in 0..1 at one sample point."""
    if not _rounded_rect(x, y, 2, 2, WIDTH - 2, HEIGHT - 2, 14):
        return (0.0, 0.0, 0.0, 0.0)
    if _in_q(x, y):
        return tuple(c / 255 for c in WHITE) + (1.0,)  # type: ignore[return-value]
    t = y / HEIGHT  # vertical gradient, Qt green to dark green
    rgb = tuple((a + (b - a) * t) / 255 for a, b in zip(QT_GREEN, DARK_GREEN))
    if _in_q(x, y, -3, -3):  # the shadow darkens the tile
        rgb = tuple(c * 0.6 for c in rgb)
    return rgb + (1.0,)  # type: ignore[return-value]


def render() -> bytes:
    """Raw RGBA8888 rows, averaging SAMPLES x SAMPLES points per pixel (premultiplied mean)."""
    out = bytearray()
    n = SAMPLES * SAMPLES
    for py in range(HEIGHT):
        for px in range(WIDTH):
            r = g = b = a = 0.0
            for sy in range(SAMPLES):
                for sx in range(SAMPLES):
                    sr, sg, sb, sa = _sample(px + (sx + 0.5) / SAMPLES, py + (sy + 0.5) / SAMPLES)
                    r += sr * sa
                    g += sg * sa
                    b += sb * sa
                    a += sa
            if a == 0:
                out += b"\0\0\0\0"
                continue
            out += bytes((round(255 * r / a), round(255 * g / a), round(255 * b / a), round(255 * a / n)))
    return bytes(out)


def png(width: int, height: int, rgba: bytes) -> bytes:
    """A minimal PNG file: IHDR (8-bit RGBA), one IDAT (filter 0 on every row), IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    stride = width * 4
    raw = b"".join(b"\0" + rgba[y * stride:(y + 1) * stride] for y in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def _raw_rows(data: bytes) -> tuple[bytes, bytes]:
    """IHDR and the inflated IDAT data of a PNG file."""
    pos, ihdr, idat = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            ihdr = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return ihdr, zlib.decompress(idat)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the file instead of writing it")
    args = parser.parse_args(argv)
    data = png(WIDTH, HEIGHT, render())
    if args.check:
        same = OUT.exists() and _raw_rows(OUT.read_bytes()) == _raw_rows(data)
        print(f"{OUT}: {'up to date' if same else 'DIFFERS'}")
        return 0 if same else 1
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(data)
    print(f"wrote {OUT} ({len(data)} bytes, {WIDTH}x{HEIGHT} RGBA)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
