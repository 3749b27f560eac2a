"""QDataStream's QImage and QPixmap: ``qint32`` marker and a whole PNG file, as Pillow images.

The PNG walk (the stream has no length: the image ends after IEND), the Pillow glue and the fast
decoder of plain PNGs (one inflate with zlib-ng, row filters in ``qshm_compat._codec``), then the
read and write functions side by side (the ``Reader.read_<name>`` / ``Writer.write_<name>``
methods), registered in the codec's table at the end.  Facts: Qt's ``qimage.cpp`` (QImage's
stream operators write PNG) and the PNG specification, which libpng (what Qt reads it with)
follows.
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import TYPE_CHECKING, Any

from ._datastream_base import Codec, TypeId, _corrupt, _truncated, register
from .exceptions import DataStreamError

if TYPE_CHECKING:
    from ._datastream_stream import Reader, Writer

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHUNK_HEAD = struct.Struct(">I4s")   # PNG is big-endian whatever the stream's byte order
_PNG_U32 = struct.Struct(">I")


def _is_pil_image(value: Any) -> bool:
    return type(value).__module__.startswith("PIL.") and hasattr(value, "save")


def _png_end(buf: Any, start: int, size: int, what: str) -> int:
    """Offset just past the IEND chunk of the PNG file at ``start``, found by walking its chunks.

    Qt reads the image with libpng, which stops after IEND and its CRC, so nothing else (no length
    prefix exists) says where the PNG ends.  Critical chunks must have a correct CRC, as libpng
    demands by default.
    """
    if size - start < 8:
        raise _truncated(what, start, 8, size - start)
    if bytes(buf[start:start + 8]) != _PNG_SIGNATURE:
        raise _corrupt(what, start, "the image is not a PNG file (bad signature)")
    mv = memoryview(buf)
    pos = start + 8
    first = True
    while True:
        if size - pos < 12:
            raise _truncated(f"{what} PNG chunk", pos, 12, size - pos)
        length, ctype = _PNG_CHUNK_HEAD.unpack_from(buf, pos)
        length = int(length)
        if length > 0x7FFFFFFF or not ctype.isalpha():
            raise _corrupt(what, pos, f"PNG chunk {ctype!r} of length {length} is invalid")
        if first and ctype != b"IHDR":
            raise _corrupt(what, pos, f"the PNG starts with {ctype!r} instead of IHDR")
        first = False
        end = pos + 12 + length
        if end > size:
            raise _truncated(f"{what} PNG chunk {ctype.decode('ascii')}", pos, 12 + length,
                             size - pos)
        if not ctype[0] & 0x20:  # critical chunk (upper-case first letter)
            (crc,) = _PNG_U32.unpack_from(buf, pos + 8 + length)
            if zlib.crc32(mv[pos + 4:pos + 8 + length]) != crc:
                raise _corrupt(what, pos, f"PNG chunk {ctype.decode('ascii')} has a bad CRC")
        pos = end
        if ctype == b"IEND":
            return pos


def _load_pil() -> Any:
    try:
        from PIL import Image
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("decoding a QImage needs Pillow (pip install pillow); "
                          "pass decode=False to get the PNG bytes instead") from exc
    return Image


def _pillow_available() -> bool:
    try:
        _load_pil()
    except ImportError:  # pragma: no cover - depends on the environment
        return False
    return True


def _decode_png(png: bytes, what: str, pos: int, codec: Any) -> Any:
    """The PNG file ``png`` as a loaded Pillow image; ``codec`` is the C helper or None."""
    Image = _load_pil()
    try:
        img = Image.open(io.BytesIO(png), formats=["PNG"])
        if codec is not None:
            fast = _decode_png_pixels(Image, img, png, codec)
            if fast is not None:
                return fast
        img.load()
    except Exception as exc:  # Pillow raises many types (OSError, SyntaxError, bomb errors...)
        raise _corrupt(what, pos, f"Pillow cannot decode the PNG: {exc}") from exc
    return img


# PNG colour type (8 bits per sample, as Qt writes them) -> (Pillow mode, bytes per pixel).
_PNG_PLAIN_MODES = {6: ("RGBA", 4), 2: ("RGB", 3), 0: ("L", 1), 4: ("LA", 2)}
_PNG_IHDR = struct.Struct(">IIBBBBB")


def _decode_png_pixels(Image: Any, img: Any, png: bytes, codec: Any) -> Any:
    """The pixels of a plain PNG, inflated in one call and unfiltered in C; None otherwise.

    Pillow has parsed the header (``img``: mode, size, info, its size limits), so what is left is
    what Pillow's decoder would do, only faster: one inflate of all IDAT data (zlib-ng when it is
    installed) and the row filters in ``_codec.png_unfilter``.  Only 8-bit, non-interlaced
    RGBA/RGB/L/LA images whose chunks after the first IDAT are IDATs and IEND take this path; for
    anything else, and for any data that does not inflate to exactly the rows the header
    announces, Pillow decodes (and reports the error) as before.
    """
    width, height, depth, ctype, _comp, _filt, interlace = _PNG_IHDR.unpack_from(png, 16)
    plain = _PNG_PLAIN_MODES.get(ctype)
    if (plain is None or depth != 8 or interlace or img.mode != plain[0]
            or "transparency" in img.info or img.size != (width, height) or not width):
        return None
    mode, bpp = plain
    mv = memoryview(png)
    parts: list[memoryview] = []
    pos = 8
    while pos + 12 <= len(png):
        length, ctype_ = _PNG_CHUNK_HEAD.unpack_from(png, pos)
        if ctype_ == b"IDAT":
            parts.append(mv[pos + 8:pos + 8 + length])
        elif ctype_ == b"IEND":
            break
        elif parts:
            return None  # a chunk after the image data: Pillow reads it into info
        pos += 12 + length
    try:
        from zlib_ng import zlib_ng as inflater  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # the stdlib's zlib is no faster than Pillow's decoder
        return None
    error: Any = inflater.error
    rowbytes = width * bpp
    # Inflate a few rows at a time (cache-sized pieces) and unfilter them straight into place.
    step = max(1, (1 << 17) // (rowbytes + 1)) * (rowbytes + 1)
    pixels = codec.new_bytearray(height * rowbytes)
    d = inflater.decompressobj()
    data: Any = b"".join(parts)
    y = 0
    try:
        while y < height:
            raw = d.decompress(data, min(step, (height - y) * (rowbytes + 1)))
            data = d.unconsumed_tail
            if not raw or len(raw) % (rowbytes + 1):
                return None
            y += codec.png_unfilter(raw, pixels, y, rowbytes, bpp)
        if not d.eof and d.decompress(data, 1):
            return None  # more data than the rows
        if not d.eof or d.unused_data:
            return None
    except (error, ValueError):
        return None
    out = Image.frombuffer(mode, (width, height), pixels, "raw", mode, 0, 1)
    out.info = dict(img.info)
    img.close()
    return out


# --------------------------------------------------------------------------------------------
# Read and write


def read_qimage(self: Reader, *, decode: bool | None = None) -> Any:
    """QDataStream::operator>>(QImage&): ``qint32`` marker, then a whole PNG file.

    A null image (marker 0) reads as ``None``.  The PNG's end is found by walking its chunks
    through IEND and its CRC.  ``decode=True`` returns a loaded ``PIL.Image.Image``,
    ``decode=False`` the PNG ``bytes``; ``None`` (the default) uses the reader's
    ``decode_images``, and if that is ``None`` too, a PIL image when Pillow is installed and
    the PNG bytes when it is not.  The image's pixels are always loaded: 8-bit RGBA, RGB, L
    and LA PNGs come back as a plain ``PIL.Image.Image`` decoded by the C path (with
    zlib-ng), others as the ``PngImageFile`` Pillow decoded; mode, size, pixels and
    ``info`` are the same either way.
    """
    pos = self._pos
    (marker,) = self._unpack(self._s.i32, "QImage")
    if marker == 0:
        return None
    start = self._pos
    end = _png_end(self._buf, start, self._size, "QImage")
    png = bytes(self._buf[start:end])
    self._pos = end
    if decode is None:
        decode = self.decode_images
    if decode is None:
        from . import datastream  # its _pillow_available, which a test can replace

        decode = datastream._pillow_available()
    return _decode_png(png, "QImage", pos, self._c) if decode else png


def write_qimage(self: Writer, image: Any) -> None:
    """QDataStream::operator<<(QImage): ``qint32 1`` and a PNG file; ``None`` writes ``0``.

    ``image`` is a ``PIL.Image.Image`` (saved as PNG by Pillow) or the bytes of one complete
    PNG file, which are checked and written unchanged.
    """
    if image is None:
        self._buf += self._s.i32.pack(0)
        return
    if isinstance(image, (bytes, bytearray, memoryview)):
        png = bytes(image)
        if _png_end(png, 0, len(png), "QImage") != len(png):
            raise DataStreamError("QImage: bytes follow the PNG's IEND chunk")
    elif _is_pil_image(image):
        out = io.BytesIO()
        try:
            image.save(out, format="PNG")
        except (OSError, ValueError, KeyError) as exc:
            raise DataStreamError(f"QImage: Pillow cannot save this image as PNG "
                                  f"(mode {getattr(image, 'mode', '?')}): {exc}") from exc
        png = out.getvalue()
    else:
        raise TypeError(f"QImage needs a PIL image or PNG bytes, not {type(image).__name__}")
    self._buf += self._s.i32.pack(1)
    self._buf += png


def read_qpixmap(self: Reader, *, decode: bool | None = None) -> Any:
    """QDataStream::operator>>(QPixmap&): streamed as its QImage."""
    return self.read_qimage(decode=decode)


def write_qpixmap(self: Writer, image: Any) -> None:
    """QDataStream::operator<<(QPixmap): streamed as its QImage."""
    self.write_qimage(image)


register(
    Codec("qimage", (TypeId.QImage,), read_qimage, write_qimage),
    Codec("qpixmap", (TypeId.QPixmap,), read_qpixmap, write_qpixmap),
)
