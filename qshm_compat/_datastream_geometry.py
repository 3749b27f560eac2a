"""QDataStream's geometry and colour types: QPoint(F), QSize(F), QRect(F), QLine(F) and QColor.

The value classes, then each type's read and write functions side by side (the
``Reader.read_<name>`` / ``Writer.write_<name>`` methods), registered in the codec's table at the
end.  Facts: Qt's ``qpoint.cpp``, ``qsize.cpp``, ``qrect.cpp``, ``qline.cpp`` and ``qcolor.cpp``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._datastream_base import Codec, TypeId, register

if TYPE_CHECKING:
    from ._datastream_stream import Reader, Writer

# --------------------------------------------------------------------------------------------
# Value types


@dataclass(frozen=True)
class QPoint:
    """QPoint: two qint32."""

    x: int = 0
    y: int = 0


@dataclass(frozen=True)
class QPointF:
    """QPointF: two doubles."""

    x: float = 0.0
    y: float = 0.0


@dataclass(frozen=True)
class QSize:
    """QSize: two qint32 (Qt's invalid size is -1 x -1)."""

    width: int = -1
    height: int = -1


@dataclass(frozen=True)
class QSizeF:
    """QSizeF: two doubles."""

    width: float = -1.0
    height: float = -1.0


@dataclass(frozen=True)
class QRect:
    """QRect(x, y, width, height); the stream holds left, top, right, bottom (right = x + w - 1)."""

    x: int = 0
    y: int = 0
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class QRectF:
    """QRectF(x, y, width, height): four doubles, in that order."""

    x: float = 0.0
    y: float = 0.0
    width: float = 0.0
    height: float = 0.0


@dataclass(frozen=True)
class QLine:
    """QLine: four qint32, x1 y1 x2 y2."""

    x1: int = 0
    y1: int = 0
    x2: int = 0
    y2: int = 0


@dataclass(frozen=True)
class QLineF:
    """QLineF: four doubles, x1 y1 x2 y2."""

    x1: float = 0.0
    y1: float = 0.0
    x2: float = 0.0
    y2: float = 0.0


class ColorSpec(enum.IntEnum):
    """QColor::Spec."""

    Invalid = 0
    Rgb = 1
    Hsv = 2
    Cmyk = 3
    Hsl = 4
    ExtendedRgb = 5


@dataclass(frozen=True)
class QColor:
    """QColor as it is streamed: ``qint8 spec`` and five ``quint16`` fields.

    The fields are kept raw so every spec round-trips.  For ``Rgb`` they are alpha, red, green,
    blue, 0, each an 8-bit value times 0x101; ``Hsv``/``Hsl`` keep the hue in centi-degrees;
    ``Cmyk`` uses ``c4`` for black; ``ExtendedRgb`` holds half floats.  Use :meth:`from_rgb` and
    :meth:`rgba` for the common case.
    """

    spec: int = ColorSpec.Invalid
    alpha: int = 0xFFFF
    c1: int = 0
    c2: int = 0
    c3: int = 0
    c4: int = 0

    @classmethod
    def from_rgb(cls, r: int, g: int, b: int, a: int = 255) -> QColor:
        """The same as ``QColor(r, g, b, a)`` with 8-bit channels."""
        _check_8bit(r, g, b, a)
        return cls(ColorSpec.Rgb, a * 0x101, r * 0x101, g * 0x101, b * 0x101, 0)

    @classmethod
    def from_hsv(cls, h: int, s: int, v: int, a: int = 255) -> QColor:
        """The same as ``QColor::fromHsv(h, s, v, a)``: hue in degrees (-1 = achromatic)."""
        return cls(ColorSpec.Hsv, *_hue_fields(h, s, v, a))

    @classmethod
    def from_hsl(cls, h: int, s: int, lightness: int, a: int = 255) -> QColor:
        """The same as ``QColor::fromHsl(h, s, l, a)``: hue in degrees (-1 = achromatic)."""
        return cls(ColorSpec.Hsl, *_hue_fields(h, s, lightness, a))

    @classmethod
    def from_cmyk(cls, c: int, m: int, y: int, k: int, a: int = 255) -> QColor:
        """The same as ``QColor::fromCmyk(c, m, y, k, a)`` with 8-bit components."""
        _check_8bit(c, m, y, k, a)
        return cls(ColorSpec.Cmyk, a * 0x101, c * 0x101, m * 0x101, y * 0x101, k * 0x101)

    @classmethod
    def invalid(cls) -> QColor:
        """The same as ``QColor()``: Qt streams it as spec 0, alpha 0xFFFF and zeros."""
        return cls()

    def is_valid(self) -> bool:
        """QColor::isValid()."""
        return self.spec != ColorSpec.Invalid

    def rgba(self) -> tuple[int, int, int, int]:
        """(red, green, blue, alpha) in 8 bits; only for the Rgb spec."""
        if self.spec != ColorSpec.Rgb:
            raise ValueError(f"rgba() needs an Rgb colour, this one has spec {self.spec}")
        return (_div257(self.c1), _div257(self.c2), _div257(self.c3), _div257(self.alpha))


def _div257(v: int) -> int:
    return (v + 128) // 257


def _check_8bit(*values: int) -> None:
    for v in values:
        if not 0 <= v <= 255:
            raise ValueError(f"colour component {v} is outside 0..255")


def _hue_fields(h: int, s: int, v: int, a: int) -> tuple[int, int, int, int, int]:
    _check_8bit(s, v, a)
    if h < -1:
        raise ValueError(f"hue {h} is below -1")
    # Qt stores the hue in centi-degrees, and an achromatic hue (-1) as 0xFFFF.
    hue = 0xFFFF if h == -1 else (h % 360) * 100
    return (a * 0x101, hue, s * 0x101, v * 0x101, 0)


# --------------------------------------------------------------------------------------------
# Read and write


def read_qpoint(self: Reader) -> QPoint:
    """QDataStream::operator>>(QPoint&)."""
    return QPoint(*self._unpack(self._s.i32x2, "QPoint"))


def write_qpoint(self: Writer, value: QPoint) -> None:
    """QDataStream::operator<<(QPoint)."""
    self._pack_many(self._s.i32x2, (value.x, value.y), "QPoint")


def read_qpointf(self: Reader) -> QPointF:
    """QDataStream::operator>>(QPointF&)."""
    return QPointF(*self._unpack(self._real2, "QPointF"))


def write_qpointf(self: Writer, value: QPointF) -> None:
    """QDataStream::operator<<(QPointF)."""
    self._write_reals((value.x, value.y), "QPointF")


def read_qsize(self: Reader) -> QSize:
    """QDataStream::operator>>(QSize&)."""
    return QSize(*self._unpack(self._s.i32x2, "QSize"))


def write_qsize(self: Writer, value: QSize) -> None:
    """QDataStream::operator<<(QSize)."""
    self._pack_many(self._s.i32x2, (value.width, value.height), "QSize")


def read_qsizef(self: Reader) -> QSizeF:
    """QDataStream::operator>>(QSizeF&)."""
    return QSizeF(*self._unpack(self._real2, "QSizeF"))


def write_qsizef(self: Writer, value: QSizeF) -> None:
    """QDataStream::operator<<(QSizeF)."""
    self._write_reals((value.width, value.height), "QSizeF")


def read_qrect(self: Reader) -> QRect:
    """QDataStream::operator>>(QRect&): left, top, right, bottom."""
    x1, y1, x2, y2 = self._unpack(self._s.i32x4, "QRect")
    return QRect(x1, y1, x2 - x1 + 1, y2 - y1 + 1)


def write_qrect(self: Writer, value: QRect) -> None:
    """QDataStream::operator<<(QRect): left, top, right, bottom."""
    self._pack_many(self._s.i32x4, (value.x, value.y, value.x + value.width - 1,
                                    value.y + value.height - 1), "QRect")


def read_qrectf(self: Reader) -> QRectF:
    """QDataStream::operator>>(QRectF&): x, y, width, height."""
    return QRectF(*self._unpack(self._real4, "QRectF"))


def write_qrectf(self: Writer, value: QRectF) -> None:
    """QDataStream::operator<<(QRectF): x, y, width, height."""
    self._write_reals((value.x, value.y, value.width, value.height), "QRectF")


def read_qline(self: Reader) -> QLine:
    """QDataStream::operator>>(QLine&)."""
    return QLine(*self._unpack(self._s.i32x4, "QLine"))


def write_qline(self: Writer, value: QLine) -> None:
    """QDataStream::operator<<(QLine)."""
    self._pack_many(self._s.i32x4, (value.x1, value.y1, value.x2, value.y2), "QLine")


def read_qlinef(self: Reader) -> QLineF:
    """QDataStream::operator>>(QLineF&)."""
    return QLineF(*self._unpack(self._real4, "QLineF"))


def write_qlinef(self: Writer, value: QLineF) -> None:
    """QDataStream::operator<<(QLineF)."""
    self._write_reals((value.x1, value.y1, value.x2, value.y2), "QLineF")


def read_qcolor(self: Reader) -> QColor:
    """QDataStream::operator>>(QColor&): spec and five raw 16-bit fields."""
    return QColor(*self._unpack(self._s.color, "QColor"))


def write_qcolor(self: Writer, value: QColor) -> None:
    """QDataStream::operator<<(QColor): spec and five raw 16-bit fields."""
    if not isinstance(value, QColor):
        raise TypeError(f"QColor needs a QColor, not {type(value).__name__}")
    self._pack_many(self._s.color, (value.spec, value.alpha, value.c1, value.c2, value.c3,
                                    value.c4), "QColor")


register(
    Codec("qpoint", (TypeId.QPoint,), read_qpoint, write_qpoint),
    Codec("qpointf", (TypeId.QPointF,), read_qpointf, write_qpointf),
    Codec("qsize", (TypeId.QSize,), read_qsize, write_qsize),
    Codec("qsizef", (TypeId.QSizeF,), read_qsizef, write_qsizef),
    Codec("qrect", (TypeId.QRect,), read_qrect, write_qrect),
    Codec("qrectf", (TypeId.QRectF,), read_qrectf, write_qrectf),
    Codec("qline", (TypeId.QLine,), read_qline, write_qline),
    Codec("qlinef", (TypeId.QLineF,), read_qlinef, write_qlinef),
    Codec("qcolor", (TypeId.QColor,), read_qcolor, write_qcolor),
)
